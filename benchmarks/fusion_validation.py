"""Each fusion expert, and the fusion threshold, measured on the held-out split of a LAS store.

    python benchmarks/fusion_validation.py --model runs/default/model --store build/las-wide \
        [--split val] [--thresholds 0.5 0.7 0.9 1.0]

For every subset of the split (its own band set and taxonomy): the model maps each patch with
its class names, and the confusion matrix is summed over the subset's patches; the table shows
the mean over subsets of the subset mIoU (the training validation metric) and the pixel
accuracy, for the decoder alone, with the similarity head, and with the spectral-knowledge
expert too, at each threshold θ of the class-wise confidence-guided fusion. This is where a
threshold may be chosen: the zero-shot benchmark scenes are never used for it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from landsegmenter.data.las_dataset import LASDataset
from landsegmenter.eval.metrics import ConfusionMatrix, report
from landsegmenter.las.store import LASStore
from landsegmenter.model.landsegmenter import fusion_set
from landsegmenter.model.zoo import load_segmenter

MODES = ("off", "similarity", "on")


def subset_reports(model, store: Path, split: str) -> dict[str, dict[str, list]]:
    """Per subset and fusion mode: (mIoU, pixel accuracy) for each threshold already set on the model."""
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for name in LASStore.open(store).subsets:
        data = LASDataset(store, subsets=[name], splits=[split], normalisation=model.normalisation)
        if len(data) == 0:
            continue
        names = data[0]["class_names"]
        matrices = {mode: ConfusionMatrix(len(names)) for mode in MODES}
        for i in range(len(data)):
            item = data[i]
            for mode in MODES:
                with fusion_set(model, mode), torch.inference_mode():
                    logits = model(item["image"][None], item["wavelengths"], names)
                matrices[mode].update(logits.argmax(1)[0], item["label"])
        results[name] = {mode: _scores(m.matrix, names) for mode, m in matrices.items()}
    return results


def _scores(matrix: np.ndarray, names: list[str]) -> tuple[float, float]:
    r = report(matrix, names)
    return r.miou or 0.0, r.overall_accuracy or 0.0


def set_threshold(model, threshold: float) -> None:
    model.fusion_rule.threshold = threshold
    model.knowledge_rule.threshold = threshold


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--store", type=Path, default=Path("build/las-wide"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.7])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_segmenter(args.model, "cpu")
    print("| θ | fusion | mean subset mIoU % | mean pixel accuracy % | subsets |")
    print("|---|---|---:|---:|---:|")
    for threshold in args.thresholds:
        set_threshold(model, threshold)
        results = subset_reports(model, args.store, args.split)
        for mode in MODES:
            miou = np.mean([r[mode][0] for r in results.values()])
            acc = np.mean([r[mode][1] for r in results.values()])
            print(f"| {threshold:g} | {mode} | {100 * miou:.1f} | {100 * acc:.1f} | {len(results)} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
