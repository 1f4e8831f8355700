"""The fusion threshold θ chosen on held-out samples, each subset in its own taxonomy.

θ decides how much of a class the decoder hands to the other experts (``model/fusion.py``). It is
chosen like the decoder temperature: on the validation split of the training data, never on a
benchmark scene. The score is the training validation metric: the mean over subsets (band set
and taxonomy) of the subset mIoU, from confusion matrices summed over each subset's samples.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_confusion_matrix

from landsegmenter.model.landsegmenter import LandSegmenter, fusion_set
from landsegmenter.train.losses import IGNORE_INDEX
from landsegmenter.train.module import mean_iou

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)
TIE = 0.001  # 0.1 point of mIoU


@torch.inference_mode()
def subset_scores(
    model: LandSegmenter, samples: Iterable[dict], modes: Sequence[str] = ("on",)
) -> dict[str, dict[str, tuple[float, float]]]:
    """Per subset and fusion mode: (mIoU, pixel accuracy) of the model's maps of ``samples``
    (LAS dataset items: image, label, wavelengths, class_names, subset)."""
    matrices: dict[str, dict[str, torch.Tensor]] = {}
    for item in samples:
        per_mode = matrices.setdefault(item["subset"], {})
        for mode in modes:
            with fusion_set(model, mode):
                logits = model(item["image"][None], item["wavelengths"], item["class_names"])
            matrix = multiclass_confusion_matrix(logits.argmax(1)[0], item["label"], len(item["class_names"]),
                                                 ignore_index=IGNORE_INDEX)
            per_mode[mode] = per_mode.get(mode, 0) + matrix
    return {subset: {mode: _scores(m) for mode, m in per_mode.items()} for subset, per_mode in matrices.items()}


def mean_scores(scores: dict[str, dict[str, tuple[float, float]]], mode: str) -> tuple[float, float]:
    """(mean subset mIoU, mean subset pixel accuracy) of one fusion mode, over the subsets with labels."""
    values = np.array([per_mode[mode] for per_mode in scores.values()]).reshape(-1, 2)
    labelled = ~np.isnan(values[:, 0])
    return (float(values[labelled, 0].mean()), float(values[labelled, 1].mean())) if labelled.any() else (0.0, 0.0)


def select_fusion_threshold(
    model: LandSegmenter, samples: Sequence[dict], thresholds: Sequence[float] = THRESHOLDS,
    doubts: Sequence[str] | None = None,
) -> tuple[float, dict[str, float]]:
    """The θ of highest mean subset mIoU with every expert on, and each θ's score; leaves the model at it.
    With ``doubts`` (a model whose knowledge expert is precision-guided), each θ with each measure of
    the decoder's doubt (``model/precision_fusion.py``), scored as ``"θ doubt"``; the model is left
    at the best pair. Scores within ``TIE`` of the best are equals (differences below what a
    validation split tells apart), and of equals the setting nearest the model's own is kept: a
    change needs a measured gain."""
    prior = (model.fusion_threshold, model.config.knowledge_doubt)
    scores = {}
    for threshold in thresholds:
        for doubt in doubts or (prior[1],):
            model.fusion_threshold, model.config.knowledge_doubt = threshold, doubt
            scores[threshold, doubt] = mean_scores(subset_scores(model, samples), "on")[0]
    top = max(scores.values())
    best = min((s for s, v in scores.items() if v >= top - TIE),
               key=lambda s: (abs(s[0] - prior[0]), s[1] != prior[1], s[0]))
    model.fusion_threshold, model.config.knowledge_doubt = best
    key = (lambda s: f"{s[0]:g} {s[1]}") if doubts else (lambda s: f"{s[0]:g}")
    return float(best[0]), {key(s): round(v, 4) for s, v in scores.items()}


def _scores(matrix: torch.Tensor) -> tuple[float, float]:
    """(mIoU over the classes present, pixel accuracy); NaN for a subset with no labelled pixel."""
    total = float(matrix.sum())
    return mean_iou(matrix), (float(matrix.diagonal().sum()) / total if total else float("nan"))
