"""Where to cut patches: candidate windows on a lattice, filtered, then picked in order.

The label product (and cloud mask) of a scene is scanned once, one strip of ``stride``
rows at a time, into per-block class counts; a candidate patch is ``patch / stride``
blocks square, so its class counts are sums over blocks. Candidates failing the cloud,
labelled-fraction or land-only limits are rejected (counted per reason). The rest are
ordered by the strategy (``balanced``: greedily the patch richest in the class picked
least so far; ``random``; ``grid``: raster order), keeping ``min_spacing`` between
patch origins. Everything is deterministic for a given seed and scene id.
"""
from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from rasterio.windows import Window

from landsegmenter.las.manifest import SamplingSpec

LabelReader = Callable[[Window], np.ndarray]  # window -> uint8 indices (255: no label)
MaskReader = Callable[[Window], np.ndarray]  # window -> bool (True: cloud)


@dataclass
class Candidates:
    """Candidate patches: origins on the sample grid and pixel counts per class.

    ``counts[:, :K]`` are class pixels, ``counts[:, K]`` unlabelled and ``counts[:, K + 1]``
    cloud-masked pixels (a cloud-masked pixel is counted as cloud only).
    """

    rows: np.ndarray  # [N] int
    cols: np.ndarray  # [N] int
    counts: np.ndarray  # [N, K + 2] int64
    patch_size: int
    rejected: Counter = field(default_factory=Counter)

    @property
    def num_classes(self) -> int:
        return self.counts.shape[1] - 2

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> "Candidates":
        return Candidates(self.rows[keep], self.cols[keep], self.counts[keep], self.patch_size, self.rejected)


def scene_rng(seed: int, scene_id: str) -> np.random.Generator:
    """A generator that depends on the seed and the scene only (not on scene order)."""
    return np.random.default_rng([seed, zlib.crc32(scene_id.encode())])


def scan_candidates(
    labels: LabelReader,
    roi: Window,
    spec: SamplingSpec,
    num_classes: int,
    rng: np.random.Generator,
    clouds: MaskReader | None = None,
) -> Candidates:
    """Class counts of every lattice patch inside ``roi`` (one pass over the label product)."""
    step, patch = spec.lattice_step, spec.patch_size
    width, height = int(roi.width), int(roi.height)
    oy, ox = (int(v) for v in rng.integers(0, step, size=2))
    oy, ox = (oy if height - oy >= patch else 0), (ox if width - ox >= patch else 0)
    nby, nbx = (height - oy) // step, (width - ox) // step
    m = patch // step
    empty = Candidates(np.zeros(0, int), np.zeros(0, int), np.zeros((0, num_classes + 2), np.int64), patch)
    if nby < m or nbx < m:
        empty.rejected["scene smaller than a patch"] += 1
        return empty
    blocks = np.zeros((nby, nbx, num_classes + 2), dtype=np.int64)
    for by in range(nby):
        strip = Window(roi.col_off + ox, roi.row_off + oy + by * step, nbx * step, step)
        blocks[by] = _block_counts(labels(strip), None if clouds is None else clouds(strip), step, num_classes)
    sums = _window_sums(blocks, m)
    ny, nx = sums.shape[:2]
    grid_y, grid_x = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
    rows = int(roi.row_off) + oy + grid_y.ravel() * step
    cols = int(roi.col_off) + ox + grid_x.ravel() * step
    return Candidates(rows, cols, sums.reshape(ny * nx, -1), patch)


def filter_candidates(cands: Candidates, spec: SamplingSpec, water: list[int]) -> Candidates:
    """Drop candidates over the cloud / labelled / water limits; count each drop by its first reason."""
    area = float(cands.patch_size**2)
    k = cands.num_classes
    labelled = cands.counts[:, :k].sum(axis=1)
    tests = [
        ("cloud", cands.counts[:, k + 1] / area > spec.max_cloud_fraction),
        ("unlabelled", labelled / area < spec.min_labelled_fraction),
    ]
    if spec.land_only:
        water_px = cands.counts[:, water].sum(axis=1) if water else np.zeros(len(cands))
        tests.append(("water", water_px / np.maximum(labelled, 1) > spec.max_water_fraction))
    keep = np.ones(len(cands), dtype=bool)
    for reason, failed in tests:
        newly = keep & failed
        if newly.any():
            cands.rejected[reason] += int(newly.sum())
        keep &= ~failed
    return cands.subset(keep)


def order_candidates(cands: Candidates, spec: SamplingSpec, limit: int | None, rng: np.random.Generator) -> list[int]:
    """Indices of candidates in the order to try them, at least ``min_spacing`` apart, at most ``limit``."""
    if not len(cands):
        return []
    limit = len(cands) if limit is None else min(limit, len(cands))
    if spec.strategy == "balanced":
        return _balanced(cands, spec.spacing, limit, rng)
    order = rng.permutation(len(cands)) if spec.strategy == "random" else np.lexsort((cands.cols, cands.rows))
    return _spaced(cands, order, spec.spacing, limit)


def _block_counts(index: np.ndarray, cloud: np.ndarray | None, step: int, k: int) -> np.ndarray:
    """``[nbx, K + 2]`` pixel counts per class of each ``step x step`` block of a strip."""
    values = np.where(index == 255, k, np.minimum(index, k)).astype(np.int64)
    if cloud is not None:
        values[cloud] = k + 1
    nbx = index.shape[1] // step
    block = np.arange(index.shape[1]) // step
    flat = (block[None, :] * (k + 2) + values).ravel()
    return np.bincount(flat, minlength=nbx * (k + 2)).reshape(nbx, k + 2)


def _window_sums(blocks: np.ndarray, m: int) -> np.ndarray:
    """Sums over every ``m x m`` window of blocks (integral image)."""
    integral = np.zeros((blocks.shape[0] + 1, blocks.shape[1] + 1, blocks.shape[2]), dtype=np.int64)
    integral[1:, 1:] = blocks.cumsum(0).cumsum(1)
    return integral[m:, m:] - integral[:-m, m:] - integral[m:, :-m] + integral[:-m, :-m]


def _spaced(cands: Candidates, order: np.ndarray, spacing: int, limit: int) -> list[int]:
    free = np.ones(len(cands), dtype=bool)
    chosen: list[int] = []
    for i in order:
        if not free[i]:
            continue
        chosen.append(int(i))
        if len(chosen) == limit:
            break
        free &= ~_too_close(cands, i, spacing)
    return chosen


def _balanced(cands: Candidates, spacing: int, limit: int, rng: np.random.Generator) -> list[int]:
    """Greedy class balance: next, the free patch with the largest share of the rarest class so far."""
    k = cands.num_classes
    share = cands.counts[:, :k] / float(cands.patch_size**2)
    tiebreak = rng.random(len(cands)) * 1e-9
    free = np.ones(len(cands), dtype=bool)
    taken = np.zeros(k)
    chosen: list[int] = []
    while len(chosen) < limit and free.any():
        present = share[free].max(axis=0) > 0
        if not present.any():
            break
        rarest = int(np.argmin(np.where(present, taken, np.inf)))
        score = np.where(free, share[:, rarest] + tiebreak, -np.inf)
        i = int(np.argmax(score))
        chosen.append(i)
        taken += cands.counts[i, :k]
        free &= ~_too_close(cands, i, spacing)
    return chosen


def _too_close(cands: Candidates, i: int, spacing: int) -> np.ndarray:
    """Candidates whose origin is closer than ``spacing`` to candidate ``i`` in both x and y (``i`` included)."""
    return (np.abs(cands.rows - cands.rows[i]) < max(spacing, 1)) & (
        np.abs(cands.cols - cands.cols[i]) < max(spacing, 1)
    )
