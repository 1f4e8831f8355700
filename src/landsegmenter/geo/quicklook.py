"""A small colour composite of a band stack, for previews: true colour, else false colour.

Bands are picked by centre wavelength: red, green and blue when the stack has all three
(true colour), else near-infrared, red and green (false colour), else the first three
bands (or one, grey). Each band is read decimated onto the map's grid and stretched from
its 2nd to its 98th percentile.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from rasterio.enums import Resampling

from landsegmenter.geo.bands import BandSpec
from landsegmenter.geo.raster import Grid, on_grid, open_raster

TRUE_COLOUR = (0.665, 0.560, 0.490)  # µm: red, green, blue
FALSE_COLOUR = (0.842, 0.665, 0.560)  # near infrared, red, green
TOLERANCE_UM = 0.05


def composite_bands(bands: Sequence[BandSpec]) -> tuple[list[BandSpec], str]:
    """The three (or one) bands to show and what the composite is (``true colour``...)."""
    for centres, kind in ((TRUE_COLOUR, "true colour"), (FALSE_COLOUR, "false colour (NIR, red, green)")):
        picked = [_nearest(bands, c) for c in centres]
        if all(b is not None for b in picked):
            return picked, kind
    if len(bands) >= 3:
        return list(bands[:3]), "bands " + ", ".join(b.name for b in bands[:3])
    return [bands[0]], f"band {bands[0].name}"


def _nearest(bands: Sequence[BandSpec], centre: float) -> BandSpec | None:
    best = min(bands, key=lambda b: abs(b.wavelength - centre), default=None)
    return best if best is not None and abs(best.wavelength - centre) <= TOLERANCE_UM else None


def quicklook(bands: Sequence[BandSpec], grid: Grid, shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """``float [h, w, 3]`` in 0..1 (NaN where there is no data) of the stack on ``grid``, and its kind."""
    picked, kind = composite_bands(bands)
    layers = [_stretched(_read(band, grid, shape)) for band in picked]
    rgb = np.stack(layers * 3 if len(layers) == 1 else layers, axis=-1)
    return rgb, kind


def _read(band: BandSpec, grid: Grid, shape: tuple[int, int]) -> np.ma.MaskedArray:
    with open_raster(band.source.path) as src:
        reader = on_grid(src, grid, Resampling.bilinear)
        try:
            return reader.read(band.source.index, out_shape=shape, resampling=Resampling.average, masked=True)
        finally:
            if reader is not src:
                reader.close()


def _stretched(values: np.ma.MaskedArray) -> np.ndarray:
    data = np.ma.filled(values.astype(np.float64), np.nan)
    valid = np.isfinite(data)
    if not valid.any():
        return data
    lo, hi = np.percentile(data[valid], [2, 98])
    return np.clip((data - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
