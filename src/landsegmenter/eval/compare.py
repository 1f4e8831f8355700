"""Comparing a mapped class raster with a reference land-cover raster, strip by strip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.eval.metrics import IGNORE_INDEX, ConfusionMatrix, Report, report
from landsegmenter.geo.raster import open_raster
from landsegmenter.taxonomy.legends import Legend

STRIP = 512


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
    if unknown:
        import warnings

        warnings.warn(f"{unknown} reference pixels carry codes outside legend {legend.key}; they were ignored")
    return report(cm.matrix, names)
