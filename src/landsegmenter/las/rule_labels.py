"""Weak labels from the spectral-index rule, written as a label raster with a legend sidecar.

The classes are the rule's land-cover concepts except ``cloud``: a pixel that the rule
finds closest to cloud, that the image marks as nodata, or that a cloud mask flags, gets
no label (255), so a cloud never becomes training signal for a land-cover class.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene, open_raster
from landsegmenter.model.spectral_rule import CONCEPTS, SpectralIndexRule
from landsegmenter.taxonomy.legends import UNKNOWN

RULE_PRODUCT = f"spectral-index rule (landsegmenter {SpectralIndexRule.fingerprint})"
RULE_CLASSES = tuple(name for name in CONCEPTS if name != "cloud")
RULE_COLORS = {
    "water": "#419BDF",
    "flooded vegetation": "#7A87C6",
    "snow": "#B39FE1",
    "trees": "#397D49",
    "shrub": "#DFC35A",
    "crops": "#E49635",
    "grass": "#88B053",
    "built": "#C4281B",
    "bare": "#A59B8F",
}
ROWS_PER_BLOCK = 256


def rule_legend(counts: Sequence[int] | None = None) -> dict:
    """The legend sidecar (``value``, ``name``, ``color``; nodata 255) of a rule label raster."""
    classes = []
    for value, name in enumerate(RULE_CLASSES):
        entry = {"value": value, "name": name, "color": RULE_COLORS[name]}
        if counts is not None:
            entry["pixel_count"] = int(counts[value])
        classes.append(entry)
    return {
        "product": RULE_PRODUCT,
        "nodata": UNKNOWN,
        "nodata_meaning": "no label: image nodata, cloud or shadow (mask), or nearest to the rule's cloud concept",
        "classes": classes,
    }


def write_rule_labels(
    scene: Scene,
    out: str | Path,
    *,
    cloud_mask: str | None = None,
    cloud_values: Sequence[int] = (),
) -> Path:
    """Classify ``scene`` (physical reflectance) with the rule; write ``out`` and ``<out stem>.legend.json``.

    ``cloud_mask`` is a raster on the scene's grid; pixels holding one of ``cloud_values``
    get no label.
    """
    out = Path(out)
    grid = scene.grid
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "uint8",
        "nodata": UNKNOWN,
        "crs": grid.crs,
        "transform": grid.transform,
        "compress": "deflate",
    }
    if cloud_mask is not None:
        _check_same_grid(cloud_mask, grid)
    counts = np.zeros(len(RULE_CLASSES), dtype=np.int64)
    out.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(out, "w", **profile) as dst:
        for window in _row_blocks(grid.width, grid.height):
            labels = classify_window(scene, window)
            if cloud_mask is not None:
                labels[_masked(cloud_mask, window, cloud_values)] = UNKNOWN
            counts += np.bincount(labels[labels != UNKNOWN], minlength=len(RULE_CLASSES))[: len(RULE_CLASSES)]
            dst.write(labels, 1, window=window)
        dst.write_colormap(1, _colormap())
    legend_path = out.with_name(out.name.removesuffix(".tif") + ".legend.json")
    legend_path.write_text(json.dumps({"raster": out.name, **rule_legend(counts)}, indent=1), encoding="utf-8")
    return out


def classify_window(scene: Scene, window: Window) -> np.ndarray:
    """Legend values ``uint8 [h, w]`` of one window; 255 where the image has no data or the rule says cloud."""
    data, valid = scene.read(window)
    concepts = list(CONCEPTS)
    with torch.no_grad():
        scores = SpectralIndexRule()(torch.from_numpy(data)[None], torch.tensor(scene.wavelengths), concepts)
    best = scores[0].argmax(dim=0).numpy()
    to_value = np.array([RULE_CLASSES.index(c) if c in RULE_CLASSES else UNKNOWN for c in concepts], dtype=np.uint8)
    labels = to_value[best]
    labels[~valid] = UNKNOWN
    return labels


def _masked(path: str, window: Window, values: Sequence[int]) -> np.ndarray:
    with open_raster(path) as src:
        return np.isin(src.read(1, window=window), np.asarray(values))


def _check_same_grid(path: str, grid) -> None:
    with open_raster(path) as src:
        if (src.width, src.height) != (grid.width, grid.height) or not src.transform.almost_equals(grid.transform):
            raise LandSegError(f"cloud mask {path} is not on the image grid ({grid.width} x {grid.height} px)")


def _row_blocks(width: int, height: int):
    for row in range(0, height, ROWS_PER_BLOCK):
        yield Window(0, row, width, min(ROWS_PER_BLOCK, height - row))


def _colormap() -> dict[int, tuple[int, int, int, int]]:
    def rgb(hex_color: str) -> tuple[int, int, int, int]:
        return int(hex_color[1:3], 16), int(hex_color[3:5], 16), int(hex_color[5:7], 16), 255

    return {value: rgb(RULE_COLORS[name]) for value, name in enumerate(RULE_CLASSES)}
