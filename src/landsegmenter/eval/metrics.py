"""Accuracy assessment of class maps: the confusion matrix and the metrics the field reports."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torchmetrics.classification import MulticlassConfusionMatrix

IGNORE_INDEX = 255


class ConfusionMatrix:
    """Streaming confusion matrix ``[K, K]`` (rows: reference, columns: prediction).

    Pixels whose reference is ``ignore_index`` are skipped; predictions outside
    ``[0, K)`` (e.g. nodata) count as wrong for the reference class.
    """

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self._metric = MulticlassConfusionMatrix(num_classes + 1, ignore_index=ignore_index)

    def update(self, prediction: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor) -> None:
        pred = torch.as_tensor(np.asarray(prediction)).long().flatten()
        ref = torch.as_tensor(np.asarray(reference)).long().flatten()
        pred = torch.where((pred >= 0) & (pred < self.num_classes), pred, self.num_classes)
        self._metric.update(pred, ref)

    @property
    def matrix(self) -> np.ndarray:
        return self._metric.compute().numpy().astype(np.int64)[: self.num_classes, :]


@dataclass
class Report:
    class_names: list[str]
    matrix: list[list[int]]  # [K, K+1]: last column = predicted nodata / out of range
    overall_accuracy: float
    kappa: float
    miou: float  # over classes present in the reference
    macro_f1: float
    iou: dict[str, float | None]
    users_accuracy: dict[str, float | None]  # precision, per predicted class
    producers_accuracy: dict[str, float | None]  # recall, per reference class
    f1: dict[str, float | None]
    omitted_classes: list[str]  # in the reference, never predicted
    reference_pixels: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return self.__dict__.copy()


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def report(matrix: np.ndarray, class_names: Sequence[str], mean_over: Sequence[int] | None = None) -> Report:
    """Metrics from a ``[K, K(+1)]`` confusion matrix (rows reference, columns prediction).

    mIoU and macro-F1 average over classes present in the reference (the usual protocol),
    restricted to ``mean_over`` when a benchmark's protocol says so; kappa is Cohen's kappa
    over all counted pixels.
    """
    m = np.asarray(matrix, dtype=np.float64)
    k = len(class_names)
    square = m[:, :k]
    tp = np.diag(square)
    ref_total = m.sum(axis=1)
    pred_total = square.sum(axis=0)
    n = m.sum()
    present = ref_total > 0
    if mean_over is not None:
        present &= np.isin(np.arange(k), list(mean_over))
    iou = [_ratio(tp[i], ref_total[i] + pred_total[i] - tp[i]) for i in range(k)]
    ua = [_ratio(tp[i], pred_total[i]) for i in range(k)]
    pa = [_ratio(tp[i], ref_total[i]) for i in range(k)]
    f1 = [_ratio(2 * tp[i], ref_total[i] + pred_total[i]) for i in range(k)]
    oa = float(tp.sum() / n) if n else 0.0
    expected = float((ref_total * pred_total).sum() / n**2) if n else 0.0
    kappa = (oa - expected) / (1 - expected) if expected < 1 else 0.0
    names = list(class_names)
    return Report(
        class_names=names,
        matrix=m.astype(np.int64).tolist(),
        overall_accuracy=oa,
        kappa=float(kappa),
        miou=float(np.mean([iou[i] or 0.0 for i in range(k) if present[i]])) if present.any() else 0.0,
        macro_f1=float(np.mean([f1[i] or 0.0 for i in range(k) if present[i]])) if present.any() else 0.0,
        iou=dict(zip(names, iou)),
        users_accuracy=dict(zip(names, ua)),
        producers_accuracy=dict(zip(names, pa)),
        f1=dict(zip(names, f1)),
        omitted_classes=[names[i] for i in range(k) if ref_total[i] > 0 and pred_total[i] == 0],
        reference_pixels={names[i]: int(ref_total[i]) for i in range(k)},
    )
