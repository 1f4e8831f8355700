"""What self-training would learn from a map: its pseudo-labels per class, scored on a reference.

Domain adaptation by pseudo-labels (``train/dpa.py``) keeps the most certain share ``r`` of a
target's pixels, either over the whole scene (one confidence threshold) or class by class (each
class keeps its own most certain share: class-balanced). Given a map of the target (class and
top-class confidence per pixel) and the target's reference, used for scoring only, this says per
class: how many pixels would be pseudo-labelled, their share of the selection, the confidence
threshold that selects them, and their precision against the reference. Confidence ranking is
the ``confidence`` selection of ``train/dpa.py``; the entropy ranking of the reference protocol
orders pixels nearly alike.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def selected_pixels(classes: np.ndarray, confidence: np.ndarray, ratio: float, num_classes: int,
                    balanced: bool) -> np.ndarray:
    """Bool mask of the pixels kept: the ``floor(ratio * N)`` most confident of the N mapped ones
    (``classes`` in [0, num_classes)), or that share of each class's pixels when ``balanced``."""
    mapped = (classes >= 0) & (classes < num_classes)
    keep = np.zeros(classes.shape, bool)
    groups = [mapped & (classes == k) for k in range(num_classes)] if balanced else [mapped]
    for group in groups:
        where = np.flatnonzero(group)
        n = int(np.floor(round(ratio * where.size, 6)))
        if n:
            order = np.argsort(-confidence.ravel()[where], kind="stable")
            keep.ravel()[where[order[:n]]] = True
    return keep


def pseudo_label_report(classes: np.ndarray, confidence: np.ndarray, reference: np.ndarray, ratio: float,
                        class_names: Sequence[str], balanced: bool = False) -> dict[str, dict]:
    """Per class: ``selected`` pixels, ``share`` of the selection, ``threshold`` (lowest confidence
    kept), ``precision`` against ``reference`` (class indices; values outside [0, K) are unlabelled
    and left out of the precision), and ``reference_share`` (the class's share of the labelled
    reference pixels, what an unbiased selection would give)."""
    k = len(class_names)
    keep = selected_pixels(classes, confidence, ratio, k, balanced)
    labelled = (reference >= 0) & (reference < k)
    total, reference_total = max(int(keep.sum()), 1), max(int(labelled.sum()), 1)
    out = {}
    for i, name in enumerate(class_names):
        mine = keep & (classes == i)
        scored = mine & labelled
        out[name] = {
            "selected": int(mine.sum()),
            "share": round(float(mine.sum()) / total, 4),
            "threshold": round(float(confidence[mine].min()), 4) if mine.any() else None,
            "precision": round(float((reference[scored] == i).mean()), 4) if scored.any() else None,
            "reference_share": round(float((reference[labelled] == i).sum()) / reference_total, 4),
        }
    return out


def selection_precision(classes: np.ndarray, confidence: np.ndarray, reference: np.ndarray, ratio: float,
                        num_classes: int, balanced: bool = False) -> float | None:
    """Share of the selected pixels with a reference class whose pseudo-label is right."""
    keep = selected_pixels(classes, confidence, ratio, num_classes, balanced)
    scored = keep & (reference >= 0) & (reference < num_classes)
    return round(float((classes[scored] == reference[scored]).mean()), 4) if scored.any() else None
