"""Stratified random sampling of a class map for accuracy assessment and area estimation.

The strata are the map classes (nodata excluded); within a stratum every pixel has the
same chance. Allocation of the ``n`` points follows Olofsson et al. (2014, Section 4.1):

* ``proportional``: to the mapped area of each class;
* ``equal``: the same number per class;
* ``neyman``: to ``W[h] * S[h]``, ``S[h] = sqrt(U[h] * (1 - U[h]))`` with ``U[h]`` the
  anticipated user's accuracy, taken from the run's ``confidence.tif`` (the class map's
  mean confidence in each class).

``min_per_class`` points go to each class first (all its pixels if it has fewer), the rest
by the allocation rule, so rare classes get enough points for their accuracy.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.eval.compare import map_class_names
from landsegmenter.geo.cog import BLOCK
from landsegmenter.geo.raster import open_raster

ALLOCATIONS = ("proportional", "equal", "neyman")
DEFAULT_MIN_PER_CLASS = 50


@dataclass(frozen=True)
class Strata:
    """The classes of a map as strata: pixel counts and mean confidence (percent) per class."""

    class_names: list[str]
    pixels: np.ndarray  # [K] int64
    mean_confidence: np.ndarray | None  # [K] percent, NaN for an empty class; None without confidence.tif

    @property
    def weights(self) -> np.ndarray:
        return self.pixels / self.pixels.sum()


@dataclass(frozen=True)
class SamplePoints:
    """Points at pixel centres, in the map's CRS."""

    ids: np.ndarray  # [n] int, 1..n in random order (labellers see no strata order)
    x: np.ndarray  # [n] float64
    y: np.ndarray
    map_value: np.ndarray  # [n] class index of the map at the point
    crs: rasterio.crs.CRS | None


def read_strata(class_map: str | Path, with_confidence: bool = False) -> Strata:
    """Count the pixels per class of a ``landseg map`` raster, strip by strip."""
    names = map_class_names(class_map)
    k = len(names)
    confidence_path = Path(class_map).with_name("confidence.tif")
    if with_confidence and not confidence_path.is_file():
        raise LandSegError(f"neyman allocation needs the run's confidence.tif beside {class_map} "
                           "(map without --no-confidence), or use --allocation proportional")
    pixels = np.zeros(k, np.int64)
    confidence = np.zeros(k, np.float64)
    with open_raster(str(class_map)) as src:
        conf_src = open_raster(str(confidence_path)) if with_confidence else None
        try:
            for window in _strips(src):
                strip = src.read(1, window=window).ravel()
                valid = strip < k
                pixels += np.bincount(strip[valid], minlength=k)[:k]
                if conf_src is not None:
                    conf = conf_src.read(1, window=window).ravel()
                    confidence += np.bincount(strip[valid], weights=conf[valid], minlength=k)[:k]
        finally:
            if conf_src is not None:
                conf_src.close()
    if pixels.sum() == 0:
        raise LandSegError(f"{class_map} has no mapped pixels (all nodata): nothing to sample")
    mean = np.divide(confidence, pixels, out=np.full(k, np.nan), where=pixels > 0) if with_confidence else None
    return Strata(names, pixels, mean)


def allocate(n: int, strata: Strata, method: str = "proportional", min_per_class: int | None = None) -> np.ndarray:
    """Points per class ``[K]``, summing to ``n`` (fewer only when the map has fewer pixels)."""
    if method not in ALLOCATIONS:
        raise LandSegError(f"unknown allocation {method!r}: use {', '.join(ALLOCATIONS)}")
    if n < 1:
        raise LandSegError(f"the sample size must be at least 1, got {n}")
    caps = strata.pixels
    present = caps > 0
    if min_per_class is None:
        min_per_class = min(DEFAULT_MIN_PER_CLASS, n // int(present.sum()))
    if min_per_class < 0:
        raise LandSegError(f"--min-per-class must be 0 or more, got {min_per_class}")
    floor = np.minimum(caps, min_per_class)
    if floor.sum() > n:
        raise LandSegError(f"{int(present.sum())} classes x {min_per_class} points per class is more than "
                           f"--n {n}: raise --n or lower --min-per-class")
    return _apportion(n, _shares(strata, method), caps, floor)


def _shares(strata: Strata, method: str) -> np.ndarray:
    w = strata.weights
    if method == "equal":
        return (strata.pixels > 0).astype(float)
    if method == "neyman":
        if strata.mean_confidence is None:
            raise LandSegError("neyman allocation needs the map's confidence (read the strata with_confidence)")
        u = np.clip(np.nan_to_num(strata.mean_confidence) / 100.0, 0.0, 1.0)
        s = w * np.sqrt(u * (1 - u))
        return s if s.sum() > 0 else w
    return w


def _apportion(n: int, shares: np.ndarray, caps: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """``floor`` plus the rest of ``n`` in proportion to ``shares``, never above ``caps``."""
    alloc = floor.astype(np.int64).copy()
    target = min(n, int(caps.sum()))
    while (remaining := target - int(alloc.sum())) > 0:
        open_ = alloc < caps
        weights = np.where(open_, shares, 0.0)
        if weights.sum() <= 0:
            weights = open_.astype(float)
        exact = remaining * weights / weights.sum()
        extra = np.minimum(np.floor(exact).astype(np.int64), caps - alloc)
        if extra.sum() == 0:  # what is left is under one point everywhere: the largest share first
            extra[np.argmax(np.where(open_, exact, -1.0))] = 1
        alloc += extra
    return alloc


def draw_sample(class_map: str | Path, strata: Strata, allocation: np.ndarray, seed: int | None = None) -> SamplePoints:
    """``allocation[k]`` distinct random pixels of each class ``k`` of the map ``strata`` was read from."""
    rng = np.random.default_rng(seed)
    ranks = [np.sort(rng.choice(int(n_pixels), int(n), replace=False))
             for n_pixels, n in zip(strata.pixels, allocation)]
    with open_raster(str(class_map)) as src:
        rows, cols, values = _locate(src, ranks)
        xs, ys = rasterio.transform.xy(src.transform, rows, cols, offset="center")
        crs = src.crs
    ids = rng.permutation(len(rows)) + 1
    order = np.argsort(ids)
    return SamplePoints(ids[order], np.asarray(xs, float)[order], np.asarray(ys, float)[order],
                        values[order], crs)


def _locate(src, ranks: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and classes of the ``ranks[c]``-th pixels (in raster order) of each class ``c``."""
    k = len(ranks)
    seen = np.zeros(k, np.int64)
    rows, cols, values = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for window in _strips(src):
        strip = src.read(1, window=window)
        flat = strip.ravel()
        counts = np.bincount(flat[flat < k], minlength=k)[:k]
        for c in range(k):
            lo, hi = np.searchsorted(ranks[c], [seen[c], seen[c] + counts[c]])
            if hi > lo:
                picked = np.flatnonzero(flat == c)[ranks[c][lo:hi] - seen[c]]
                rows.append(picked // strip.shape[1] + int(window.row_off))
                cols.append(picked % strip.shape[1])
                values.append(np.full(len(picked), c))
            seen[c] += counts[c]
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(values)


def _strips(src) -> list[Window]:
    return [Window(0, row, src.width, min(BLOCK, src.height - row)) for row in range(0, src.height, BLOCK)]

