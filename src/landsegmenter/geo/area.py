"""Pixel areas on the ground, for projected and geographic grids."""
from __future__ import annotations

import numpy as np

from landsegmenter.geo.raster import Grid

EARTH_AUTHALIC_RADIUS_M = 6371007.2


def row_pixel_areas_ha(grid: Grid, row0: int, row1: int) -> np.ndarray | None:
    """Area in hectares of one pixel in each row ``[row0, row1)``; None if the grid has no CRS.

    Projected grids: the pixel parallelogram times the CRS unit squared. Geographic grids:
    the exact area of a lat/lon cell on a sphere of the authalic radius (error < 0.3 %).
    """
    t = grid.transform
    if grid.crs is None:
        return None
    if grid.crs.is_geographic:
        lat_top = t.f + t.e * np.arange(row0, row1)
        lat_bottom = lat_top + t.e
        band = np.abs(np.sin(np.radians(lat_top)) - np.sin(np.radians(lat_bottom)))
        return EARTH_AUTHALIC_RADIUS_M**2 * np.radians(abs(t.a)) * band / 1e4
    unit = grid.crs.linear_units_factor[1]
    pixel = abs(t.a * t.e - t.b * t.d) * unit**2 / 1e4
    return np.full(row1 - row0, pixel)
