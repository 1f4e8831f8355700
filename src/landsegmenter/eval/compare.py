"""Comparing a mapped class raster with a reference land-cover raster, strip by strip."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.eval.metrics import IGNORE_INDEX, ConfusionMatrix, Report, report
from landsegmenter.geo.raster import Grid, open_raster
from landsegmenter.taxonomy.legends import Legend

STRIP = 512
CHECK_SIDE = 1024  # longest side of the coarse grid on which a reference's overlap is checked
MIN_COVERAGE = 0.01  # below this fraction of the scene with reference pixels, warn


def map_class_names(path: str | Path) -> list[str]:
    with open_raster(str(path)) as src:
        tag = src.tags().get("LANDSEG_CLASS_NAMES")
    if tag is None:
        raise LandSegError(f"{path} has no LANDSEG_CLASS_NAMES tag: it was not written by 'landseg map'")
    return json.loads(tag)


def reference_to_map_indices(legend: Legend, class_names: list[str]) -> np.ndarray:
    """A 65536-entry table: reference code -> index of the same-named map class (255 if none)."""
    lut = np.full(65536, IGNORE_INDEX, np.uint8)
    wanted = {n.casefold(): i for i, n in enumerate(class_names)}
    unmatched = [c.name for c in legend.classes if c.name.casefold() not in wanted]
    if unmatched:
        raise LandSegError(
            f"reference classes {', '.join(unmatched)} are not among the mapped classes {', '.join(class_names)}"
        )
    for c in legend.classes:
        lut[c.code] = wanted[c.name.casefold()]
    return lut


def check_reference(reference: str | Path, legend: Legend, grid: Grid) -> float:
    """The fraction of ``grid`` with valid reference pixels, seen on a coarse grid; refuses a reference with none.

    Valid: inside the reference, not masked, and a code of ``legend``. Cheap enough to run
    before mapping, so that a reference that cannot be compared costs no map.
    """
    coarse = _coarse(grid)
    with open_raster(str(reference)) as src:
        codes, inside = _on_grid(src, coarse, reference)
    known = np.zeros(65536, bool)
    known[list(legend.codes)] = True
    valid = inside & known[np.clip(codes, 0, 65535).astype(np.int64)]
    if not valid.any():
        what = "has no pixels inside the scene" if not inside.any() else f"has no {legend.key} codes inside the scene"
        raise LandSegError(f"the reference {reference} does not overlap the scene: it {what}; nothing to compare")
    coverage = float(valid.mean())
    if coverage < MIN_COVERAGE:
        warnings.warn(f"only {coverage:.2%} of the scene has pixels of the reference {reference}; "
                      "the scores rest on few pixels")
    return coverage


def _coarse(grid: Grid) -> Grid:
    scale = max(1.0, max(grid.width, grid.height) / CHECK_SIDE)
    width, height = math.ceil(grid.width / scale), math.ceil(grid.height / scale)
    transform = grid.transform @ Affine.scale(grid.width / width, grid.height / height)
    return Grid(width, height, grid.crs, transform)


def _on_grid(src, grid: Grid, path) -> tuple[np.ndarray, np.ndarray]:
    """The reference's first band on ``grid`` (nearest) and where it has data."""
    if (src.crs is None) != (grid.crs is None):
        raise LandSegError(f"cannot put the reference {path} on the scene's grid: one of them has no CRS")
    if src.crs is None:
        if (src.width, src.height) != (grid.width, grid.height) and src.transform != grid.transform:
            raise LandSegError(f"the reference {path} is not on the scene's grid and has no CRS to reproject it")
        data = src.read(1, out_shape=(grid.height, grid.width), resampling=Resampling.nearest, masked=True)
        return np.asarray(data.data), ~np.ma.getmaskarray(data)
    with WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                   resampling=Resampling.nearest, add_alpha=True) as vrt:
        data = vrt.read(1, masked=True)
        inside = vrt.read(vrt.count) > 0  # the alpha band: 0 outside the reference
    return np.asarray(data.data), inside & ~np.ma.getmaskarray(data)


def compare_maps(prediction: str | Path, reference: str | Path, legend: Legend, *, by_index: bool = False) -> Report:
    """Confusion-matrix report of a ``landseg map`` class raster against a reference in ``legend`` codes.

    Map classes are matched to legend classes by name, or by position with ``by_index``
    (when the map was prompted with other names for the same classes). The reference is
    resampled (nearest) onto the prediction grid when the grids differ; reference nodata and
    codes outside the legend are ignored, and the latter are reported.
    """
    names = map_class_names(prediction)
    if by_index:
        if len(names) != len(legend.classes):
            raise LandSegError(f"the map has {len(names)} classes, legend {legend.key} has {len(legend.classes)}")
        names = list(legend.names)
    lut = reference_to_map_indices(legend, names)
    known = np.zeros(65536, bool)
    known[list(legend.codes)] = True
    known[list(legend.nodata)] = True
    cm = ConfusionMatrix(len(names))
    unknown = 0
    with open_raster(str(prediction)) as pred, open_raster(str(reference)) as ref_src:
        ref = ref_src
        if (ref_src.width, ref_src.height, ref_src.transform) != (pred.width, pred.height, pred.transform):
            ref = WarpedVRT(ref_src, crs=pred.crs, transform=pred.transform, width=pred.width,
                            height=pred.height, resampling=Resampling.nearest)
        for row in range(0, pred.height, STRIP):
            win = Window(0, row, pred.width, min(STRIP, pred.height - row))
            p = pred.read(1, window=win)
            r = ref.read(1, window=win, masked=True)
            codes = np.clip(np.asarray(r.filled(legend.nodata[0] if legend.nodata else 0)), 0, 65535).astype(np.int64)
            target = lut[codes]
            target[np.ma.getmaskarray(r)] = IGNORE_INDEX
            unknown += int((~known[codes] & ~np.ma.getmaskarray(r)).sum())
            cm.update(p, target)
    if not cm.matrix[:, :-1].sum():  # the last column counts reference pixels the map has no class for
        raise LandSegError(f"the map {prediction} and the reference {reference} have no valid pixels in common: "
                           "nothing to compare")
    if unknown:
        warnings.warn(f"{unknown} reference pixels carry codes outside legend {legend.key}; they were ignored")
    return report(cm.matrix, names)
