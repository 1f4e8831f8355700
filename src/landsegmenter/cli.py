"""The ``landseg`` command line: argument parsing only; the work lives in the library."""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from functools import partial
from typing import Sequence

from landsegmenter.errors import LandSegError, describe_os_error


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers (µm), got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",")]


def _add_map(sub) -> None:
    p = sub.add_parser("map", help="map a scene to a land-cover COG", description="Map a whole scene of any size.")
    p.add_argument("scene", nargs="*", help="raster(s): one multi-band file, or one file per band (any GDAL path); "
                   "or none with --stac / --stac-api")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--classes", help='comma-separated class names, e.g. "water,forest,cropland,built-up" '
                   "(default: the model's own classes, for models with a fixed class list)")
    p.add_argument("--classes-file", help="text file with one class name per line")
    p.add_argument("--model", default="default", help="'default' (bundled), 'spectral-rule' (baseline) or a model directory")
    p.add_argument("--sensor", help="sensor of the scene (see 'landseg sensors'), for band names, wavelengths, scaling")
    p.add_argument("--bands", type=_names, help="bands to use, by name, e.g. B02,B03,B04,B08")
    p.add_argument("--wavelengths", type=_floats, help="centre wavelength (µm) of each band used, instead of --sensor")
    p.add_argument("--normalise", default="auto", choices=["auto", "sensor", "scene", "reflectance"],
                   help="per-band statistics: the sensor's, sampled from the scene, or the global reflectance ones "
                   "(auto: as the model was trained, else the sensor's when known)")
    p.add_argument("--fusion", choices=["on", "off", "similarity", "knowledge"],
                   help="confidence-guided fusion of the decoder with the similarity head and the spectral-knowledge "
                   "expert: on (every expert the model can use), off (decoder alone), or one expert (default: as saved)")
    p.add_argument("--tile-size", type=int, default=512, help="tile edge in pixels (multiple of 32)")
    p.add_argument("--overlap", type=int, default=32, help="overlap between neighbouring tiles in pixels")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--no-confidence", action="store_true", help="do not write confidence.tif")
    p.add_argument("--no-preview", action="store_true", help="do not write preview.png")
    p.add_argument("--overwrite", action="store_true", help="replace results already in the output directory")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in the output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_map_scale_out(p)
    p.set_defaults(func=_run_map)


def _bbox(text: str) -> list[float]:
    values = _floats(text)
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"expected west,south,east,north in degrees, got {text!r}")
    return values


def _add_map_scale_out(p: argparse.ArgumentParser) -> None:
    dask = p.add_argument_group("large areas (Dask; see docs/large-area.md)")
    dask.add_argument("--workers", type=int, help="map blocks on a local Dask cluster of N worker processes")
    dask.add_argument("--scheduler", help="map blocks on a running Dask cluster, e.g. tcp://10.0.0.5:8786")
    dask.add_argument("--block-tiles", type=int, default=8, help="tile rows and columns per Dask task (default: 8)")
    stac = p.add_argument_group("STAC inputs and mosaics")
    stac.add_argument("--stac", nargs="+", metavar="FILE",
                      help="STAC ItemCollection, item or static catalogue (JSON) file(s); several items make a mosaic")
    stac.add_argument("--stac-api", metavar="URL", help="search a STAC API (needs --collection and --bbox)")
    stac.add_argument("--collection", action="append", default=[], help="STAC collection (repeatable)")
    stac.add_argument("--bbox", type=_bbox, help="west,south,east,north in degrees")
    stac.add_argument("--datetime", help="ISO 8601 date or interval, e.g. 2024-06-01/2024-08-31")
    stac.add_argument("--max-items", type=int, help="use at most N items")
    stac.add_argument("--crs", help="CRS of the mosaic (default: the first item's), e.g. EPSG:32633")
    stac.add_argument("--resolution", type=float, help="pixel size of the map (or mosaic) in CRS units, e.g. the GSD a model was adapted at "
                      "(default: finest input)")


def _run_map(args: argparse.Namespace) -> int:
    from landsegmenter.infer.mapper import map_scene

    inputs = [bool(args.scene), bool(args.stac), bool(args.stac_api)]
    if sum(inputs) != 1:
        raise LandSegError("give the scene as raster file(s), --stac FILE or --stac-api URL (exactly one of them)")
    scaled_out = args.stac or args.stac_api or args.workers is not None or args.scheduler or args.crs
    mapper = partial(_map_scaled_out, args=args) if scaled_out else partial(map_scene, resolution=args.resolution)
    result = mapper(
        args.scene,
        args.classes,
        args.output,
        classes_file=args.classes_file,
        model=args.model,
        sensor=args.sensor,
        bands=args.bands,
        wavelengths=args.wavelengths,
        tile_size=args.tile_size,
        overlap=args.overlap,
        batch_size=args.batch_size,
        device=args.device,
        normalise=args.normalise,
        fusion=args.fusion,
        confidence=not args.no_confidence,
        preview=not args.no_preview,
        overwrite=args.overwrite,
        resume=args.resume,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(f"wrote {result.classes} ({result.tiles_run} tiles, {result.seconds:.1f} s)")
        if getattr(result, "blocks", 0):
            print(f"  {result.blocks_run} of {result.blocks} blocks computed on {result.workers or 'no'} Dask workers"
                  + (f"; {len(result.items)} scenes composited" if len(result.items) > 1 else ""))
        for row in result.areas:
            ha = "" if row["hectares"] is None else f"{row['hectares']:>14,.1f} ha"
            print(f"  {row['class']:<24} {row['percent']:6.2f} %{ha}")
    return 0


def _map_scaled_out(scene: list[str], classes, output, *, args: argparse.Namespace, fusion: str | None, **options):
    """``landseg map`` with --workers/--scheduler, STAC inputs or a target grid: blocks as Dask tasks."""
    from landsegmenter.geo.stac import SourceScene
    from landsegmenter.infer.mosaic import map_sources, stac_sources
    from landsegmenter.model.landsegmenter import set_fusion_mode
    from landsegmenter.model.zoo import load_segmenter, resolve_device

    if fusion is not None:  # the workers get the model with its fusion set
        options["model"] = load_segmenter(options["model"], resolve_device(options["device"]))
        if not hasattr(options["model"], "fusion"):
            raise LandSegError(f"model {args.model} has no fusion to switch")
        set_fusion_mode(options["model"], fusion)

    if scene:
        sources = [SourceScene(id=scene[0], paths=tuple(scene))]
    else:
        sources = stac_sources(args.stac or (), api=args.stac_api, collections=args.collection, bbox=args.bbox,
                               datetime=args.datetime, max_items=args.max_items, sensor=args.sensor, bands=args.bands)
    return map_sources(sources, classes, output, crs=args.crs, resolution=args.resolution, workers=args.workers,
                       scheduler=args.scheduler, block_tiles=args.block_tiles, **options)


def _add_sensors(sub) -> None:
    p = sub.add_parser("sensors", help="list known sensors and their bands")
    p.set_defaults(func=_run_sensors)


def _run_sensors(args: argparse.Namespace) -> int:
    from landsegmenter.geo.sensors import list_sensors

    for sensor in list_sensors():
        bands = ", ".join(f"{b.name} ({b.wavelength:g})" for b in sensor.bands)
        print(f"{sensor.name:<22} {sensor.title}\n{'':<22} {bands}")
    return 0


def _add_las(sub) -> None:
    p = sub.add_parser(
        "las", help="build and describe LAS training sets", description="LAS training sets from land-cover products."
    )
    las = p.add_subparsers(dest="las_command", required=True)
    b = las.add_parser("build", help="build (or resume) a training set from a manifest")
    b.add_argument("manifest", help="YAML manifest of subsets (imagery, label product, sampling)")
    b.add_argument("-o", "--output", required=True, help="store directory (created, or resumed when it exists)")
    b.add_argument("--subset", action="append", help="build only this subset (repeatable)")
    b.add_argument("--overwrite", action="store_true", help="delete the store and build it again")
    b.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    b.set_defaults(func=_run_las_build)
    i = las.add_parser("info", help="print the dataset card of a store and draw its sample locations")
    i.add_argument("store", help="store directory")
    i.add_argument("--png", help="map of sample locations (default: STORE/sample_locations.png)")
    i.add_argument("--markdown", help="also write the card to this file (the map is linked relative to it)")
    i.set_defaults(func=_run_las_info)


def _run_las_build(args: argparse.Namespace) -> int:
    from landsegmenter.las import build_las

    report = build_las(
        args.manifest, args.output, subsets=args.subset, overwrite=args.overwrite, progress=not args.quiet
    )
    if not args.quiet:
        print("\n".join(report.lines()))
    return 0


def _run_las_info(args: argparse.Namespace) -> int:
    from landsegmenter.las import describe_store

    print(describe_store(args.store, png=args.png, markdown=args.markdown))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="accuracy of a model on a benchmark or on a scene with a reference map")
    p.add_argument("--model", default="default", help="'default', 'spectral-rule' or a model directory")
    p.add_argument("--data", help="benchmark as NAME:PATH, e.g. loveda:/data/LoveDA (see docs/benchmarks.md)")
    p.add_argument("--split", default="test", help="benchmark split (default: test)")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples")
    p.add_argument("--scene", nargs="+", help="scene raster(s) to map, instead of --data")
    p.add_argument("--reference", help="reference land-cover raster for --scene")
    p.add_argument("--reference-legend", help="legend of the reference: a registry key (e.g. esa_worldcover_2021), a "
                   "legend JSON (value, name, color per class) or a legend YAML in the registry's schema")
    p.add_argument("--classes", type=_names, help="class prompts, one per reference class in legend order")
    p.add_argument("--sensor")
    p.add_argument("--bands", type=_names)
    p.add_argument("--wavelengths", type=_floats)
    p.add_argument("--resolution", type=float, help="map --scene at this pixel size, e.g. the GSD a model was adapted at")
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", "--output", required=True, help="report directory")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from landsegmenter.eval.evaluate import evaluate_dataset, evaluate_scene, fusion_set, variants
    from landsegmenter.eval.reports import markdown, write_report
    from landsegmenter.model.zoo import load_segmenter, resolve_device

    if bool(args.data) == bool(args.scene):
        raise LandSegError("give either --data NAME:PATH or --scene with --reference")
    out = Path(args.output)
    if (out / "report.json").exists() and not args.overwrite:
        raise LandSegError(f"{out} already holds a report; pass --overwrite to replace it")
    device = resolve_device(args.device)
    segmenter = load_segmenter(args.model, device)
    reports = {}
    if args.data:
        from landsegmenter.data.benchmarks import open_benchmark

        dataset = open_benchmark(args.data, args.split)
        for name, fusion in variants(segmenter).items():
            with fusion_set(segmenter, fusion):
                reports[name] = evaluate_dataset(segmenter, dataset, prompts=args.classes, device=device,
                                                 limit=args.limit, progress=not args.quiet)
        title = f"{args.model} on {args.data} ({args.split})"
    else:
        from landsegmenter.taxonomy.legends import legend_from_spec

        if not (args.reference and args.reference_legend):
            raise LandSegError("--scene needs --reference and --reference-legend")
        legend = legend_from_spec(args.reference_legend)
        for name, fusion in variants(segmenter).items():
            reports[name] = evaluate_scene(segmenter, args.scene, args.reference, legend, out / f"map_{name}",
                                           prompts=args.classes, fusion=fusion, sensor=args.sensor, bands=args.bands,
                                           wavelengths=args.wavelengths, resolution=args.resolution,
                                           device=str(device), progress=not args.quiet)
        title = f"{args.model} on {Path(args.scene[0]).name} vs {Path(args.reference).name}"
    write_report(reports, out, title)
    if not args.quiet:
        print("".join(markdown(r, f"{title} — {name}") for name, r in reports.items()))
    return 0


def _add_sample(sub) -> None:
    p = sub.add_parser("sample", help="draw a stratified random sample of a class map to label",
                       description="Stratified random sample of a class map (strata: its classes) for accuracy "
                       "assessment and area estimation; see 'landseg areas'.")
    p.add_argument("map", help="classes.tif written by 'landseg map'")
    p.add_argument("-o", "--output", required=True, help="GeoPackage to write (a .csv twin is written beside it)")
    p.add_argument("--n", type=int, default=500, help="number of points (default: 500)")
    p.add_argument("--allocation", default="proportional", choices=["proportional", "equal", "neyman"],
                   help="points per class: by mapped area, equal, or Neyman with the map's confidence as "
                   "anticipated user's accuracy (needs confidence.tif beside the map)")
    p.add_argument("--min-per-class", type=int,
                   help="points every class gets first (default: 50, or fewer when --n cannot give 50 to all)")
    p.add_argument("--seed", type=int, help="random seed, for a reproducible sample")
    p.add_argument("--overwrite", action="store_true", help="replace an existing sample file")
    p.set_defaults(func=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    from landsegmenter.eval.sample_files import write_sample
    from landsegmenter.eval.sampling import allocate, draw_sample, read_strata

    strata = read_strata(args.map, with_confidence=args.allocation == "neyman")
    allocation = allocate(args.n, strata, args.allocation, args.min_per_class)
    points = draw_sample(args.map, strata, allocation, args.seed)
    gpkg, twin = write_sample(points, strata, allocation, args.output, overwrite=args.overwrite)
    print(f"wrote {gpkg} and {twin}: {len(points.ids)} points; label the 'reference' column, then run "
          f"landseg areas {args.map} --reference-sample {gpkg} -o REPORT_DIR")
    for name, n in zip(strata.class_names, allocation):
        print(f"  {name:<24} {int(n):6d}")
    return 0


def _add_areas(sub) -> None:
    p = sub.add_parser("areas", help="error-adjusted areas with confidence intervals from a labelled sample",
                       description="Area estimates and accuracy with 95 % confidence intervals from a labelled "
                       "stratified sample (Olofsson et al. 2014).")
    p.add_argument("map", help="classes.tif written by 'landseg map'")
    p.add_argument("--reference-sample", required=True, help="labelled sample (.gpkg or its .csv twin)")
    p.add_argument("--column", default="reference", help="column with the reference labels (default: reference)")
    p.add_argument("-o", "--output", required=True, help="report directory (areas.json, areas.md, areas.png)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_areas)


def _run_areas(args: argparse.Namespace) -> int:
    from pathlib import Path

    from landsegmenter.eval.area_report import estimate_map_areas, markdown, write_area_report

    estimate, unit = estimate_map_areas(args.map, args.reference_sample, args.column)
    title = f"Areas of {Path(args.map).name} from {Path(args.reference_sample).name}"
    write_area_report(estimate, unit, args.output, title, overwrite=args.overwrite)
    if not args.quiet:
        print(markdown(estimate, unit, title))
    return 0


def _add_train(sub) -> None:
    for name, text in (("train", "train a model on a LAS store as a YAML config describes"),
                       ("finetune", "fine-tune a trained model (--init) on a LAS store or a labelled scene")):
        p = sub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("--config", required=True, help="training config (YAML), e.g. configs/train-default.yaml")
        if name == "finetune":
            p.add_argument("--init", help="model to start from: 'default' (bundled) or a model directory")
        p.add_argument("-o", "--output", help="run directory (default: 'output' in the config)")
        p.add_argument("--max-steps", type=int, help="train for this many steps (overrides trainer.max_steps)")
        p.add_argument("--device", help="cpu, cuda, cuda:N or auto (overrides trainer.device)")
        p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in the run directory")
        p.add_argument("--overwrite", action="store_true", help="replace a run already in the run directory")
        p.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
        p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from landsegmenter.train import finetune, train

    options = dict(output=args.output, resume=args.resume, overwrite=args.overwrite, max_steps=args.max_steps,
                   device=args.device, quiet=args.quiet)
    if args.command == "finetune":
        result = finetune(args.config, init=args.init, **options)
    else:
        result = train(args.config, **options)
    import os

    first_process = os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) == "0"  # one summary under DDP
    if not args.quiet and first_process:
        scores = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items())
                           if k.startswith(("train/", "val/")) and k.count("/") == 1)
        print(f"trained {result.steps} steps; model: {result.model_dir}" + (f"\n  {scores}" if scores else ""))
    return 0


def _add_adapt(sub) -> None:
    text = "adapt a model to unlabelled imagery of another sensor or region (DPA self-training)"
    p = sub.add_parser("adapt", help=text, description=text[0].upper() + text[1:] + "; see docs/domain-adaptation.md.")
    p.add_argument("--source", help="labelled source: a LAS store directory or a benchmark as NAME:PATH")
    p.add_argument("--target", nargs="+", help="unlabelled target scene: one multi-band raster or one file per band")
    p.add_argument("--config", help="adaptation config (YAML), e.g. configs/adapt-example.yaml")
    p.add_argument("--classes", help="output legend key (e.g. nc_landsat7_strata); source labels are crosswalked")
    p.add_argument("-o", "--output", help="model directory to write (default: 'output' in the config)")
    p.add_argument("--sensor", help="sensor of the target scene (see landseg sensors)")
    p.add_argument("--bands", type=_names, help="target band names, comma-separated")
    p.add_argument("--architecture", choices=["unet", "landsegmenter"])
    p.add_argument("--init", help="LandSegmenter to start from: 'default' or a model directory")
    p.add_argument("--method", choices=["dpa", "source_only"])
    p.add_argument("--selection", choices=["entropy", "class_balanced", "confidence"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps-per-epoch", type=int)
    p.add_argument("--batch-size", type=int, help="patches per domain and step")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int)
    p.add_argument("--overwrite", action="store_true", help="replace a model already in the output directory")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_run_adapt)


def _run_adapt(args: argparse.Namespace) -> int:
    from landsegmenter.train.adapt import adapt
    from landsegmenter.train.adapt_config import load_adapt_config, with_overrides

    cfg = with_overrides(
        load_adapt_config(args.config), source=args.source, target=args.target, sensor=args.sensor,
        bands=args.bands, classes=args.classes, output=args.output, architecture=args.architecture, init=args.init,
        method=args.method, selection=args.selection, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size, device=args.device, seed=args.seed,
    )
    if not cfg.output:
        raise LandSegError("no output directory: pass -o DIR or set 'output' in the config")
    result = adapt(cfg, overwrite=args.overwrite, progress=not args.quiet)
    if not args.quiet:
        last = result.history[-1]
        print(f"adapted in {result.seconds:.0f} s; model: {result.model_dir} (final loss {last['loss']:.3f})")
        if result.dropped_labels:
            dropped = ", ".join(f"{k} ({v} px)" for k, v in result.dropped_labels.items())
            print(f"  source labels without an output class, ignored: {dropped}")
    return 0


def _error(message: str) -> int:
    print(f"landseg: error: {message}", file=sys.stderr)
    return 2


@contextmanager
def one_line_warnings():
    """Our warnings as ``landseg: warning: ...`` lines, without the source line Python adds."""
    import warnings

    before = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if category is not UserWarning or "landsegmenter" not in str(filename):
            return before(message, category, filename, lineno, file, line)
        print(f"landseg: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = before


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="landseg", description="Land-use / land-cover mapping from any sensor.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_map(sub)
    _add_sensors(sub)
    _add_evaluate(sub)
    _add_sample(sub)
    _add_areas(sub)
    _add_las(sub)
    _add_train(sub)
    _add_adapt(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with one_line_warnings():
            return args.func(args)
    except LandSegError as exc:
        return _error(str(exc))
    except OSError as exc:  # e.g. a full disk or a lost network share, anywhere
        return _error(describe_os_error(exc))
    except MemoryError:
        return _error("out of memory: try a smaller --tile-size or --batch-size")
    except KeyboardInterrupt:
        print("landseg: interrupted (use --resume to continue)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
