"""Each fusion expert, and the fusion threshold, measured on the held-out split of a LAS store.

    python benchmarks/fusion_validation.py --model runs/default/model --store build/las-wide \
        [--split val] [--thresholds 0.5 0.7 0.9 1.0]

For every subset of the split (its own band set and taxonomy): the model maps each patch with
its class names, and the confusion matrix is summed over the subset's patches; the table shows
the mean over subsets of the subset mIoU (the training validation metric) and the pixel
accuracy, for the decoder alone, with the similarity head, and with the spectral-knowledge
expert too, at each threshold θ of the class-wise confidence-guided fusion: the numbers behind the
threshold that `trainer.calibrate` chooses (`train/fusion_selection.py`); zero-shot scenes never choose it.
For a model with a measured knowledge precision, the spectral-knowledge row is given both ways:
precision-guided (`model/precision_fusion.py`) with each measure of the decoder's doubt, and by
the class-wise rule.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from landsegmenter.data.las_dataset import LASDataset
from landsegmenter.las.store import LASStore
from landsegmenter.model.precision_fusion import DOUBTS
from landsegmenter.model.zoo import load_segmenter
from landsegmenter.train.fusion_selection import mean_scores, subset_scores

MODES = ("off", "similarity", "on")


def split_samples(store: Path, split: str, normalisation: str) -> list[dict]:
    """Every sample of ``split``, subset by subset."""
    samples = []
    for name in LASStore.open(store).subsets:
        data = LASDataset(store, subsets=[name], splits=[split], normalisation=normalisation)
        samples.extend(data[i] for i in range(len(data)))
    return samples


def knowledge_rows(model, samples: list[dict], precision: dict) -> list[tuple[str, dict, str]]:
    """The spectral-knowledge row each way: precision-guided with each doubt, and class-wise."""
    chosen, rows = model.config.knowledge_doubt, []
    for doubt in DOUBTS:
        model.config.knowledge_doubt = doubt
        rows.append((f"on (knowledge precision-guided, {doubt} doubt)", subset_scores(model, samples, ("on",)), "on"))
    model.config.knowledge_doubt, model.config.knowledge_precision = chosen, None
    rows.append(("on (knowledge class-wise)", subset_scores(model, samples, ("on",)), "on"))
    model.config.knowledge_precision = precision
    return rows


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
    samples = split_samples(args.store, args.split, model.normalisation)
    precision = getattr(model.config, "knowledge_precision", None)
    for threshold in args.thresholds:
        model.fusion_threshold = threshold
        guided = precision is not None and model.knowledge
        modes = MODES[:-1] if guided else MODES
        results = subset_scores(model, samples, modes)
        rows = [(mode, results, mode) for mode in modes] + (knowledge_rows(model, samples, precision) if guided else [])
        for label, scores, mode in rows:
            miou, acc = mean_scores(scores, mode)
            print(f"| {threshold:g} | {label} | {100 * miou:.1f} | {100 * acc:.1f} | {len(scores)} |")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
