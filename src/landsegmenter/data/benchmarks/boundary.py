"""Boundary erosion of reference labels, as in the ISPRS 2D semantic labelling benchmark.

The official ``*_noBoundary`` references of Potsdam and Vaihingen ignore the
pixels near class boundaries: every class region is eroded by a circular disc
of 3 px radius and the removed pixels are not scored. :func:`erode_boundaries`
reproduces this for references that come without the eroded version.
"""
from __future__ import annotations

import numpy as np

from landsegmenter.data.benchmarks.decoding import IGNORE_INDEX

ISPRS_EROSION_RADIUS = 3
"""Radius (px) of the disc that erodes class boundaries in the official ISPRS references."""


def disc_offsets(radius: int) -> list[tuple[int, int]]:
    """``(dy, dx)`` of the pixels within Euclidean distance ``radius`` of a pixel, itself excluded."""
    span = range(-radius, radius + 1)
    return [(dy, dx) for dy in span for dx in span if 0 < dy * dy + dx * dx <= radius * radius]


def erode_boundaries(
    label: np.ndarray, radius: int = ISPRS_EROSION_RADIUS, ignore_index: int = IGNORE_INDEX
) -> np.ndarray:
    """``[H, W]`` labels with every pixel that has another class within ``radius`` px set to ``ignore_index``.

    A pixel survives only if the disc of ``radius`` around it lies inside its own
    class region (morphological erosion of each class with that disc). Pixels
    outside the raster and ``ignore_index`` pixels never erode their neighbours.
    """
    if radius <= 0:
        return label.copy()
    padded = np.pad(label, radius, mode="edge")
    height, width = label.shape
    eroded = np.zeros(label.shape, dtype=bool)
    for dy, dx in disc_offsets(radius):
        neighbour = padded[radius + dy : radius + dy + height, radius + dx : radius + dx + width]
        eroded |= (neighbour != label) & (neighbour != ignore_index)
    out = label.copy()
    out[eroded] = ignore_index
    return out
