"""Reading benchmark rasters (GeoTIFF, PNG, JPEG) window by window through rasterio."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import open_raster


def read_raster(path: Path, bands: Sequence[int] | None = None, window: Window | None = None) -> np.ndarray:
    """Bands ``bands`` (1-based, file order; all when ``None``) of ``path`` -> ``[C, h, w]`` native dtype."""
    with open_raster(str(path)) as src:
        wanted = list(bands) if bands is not None else list(range(1, src.count + 1))
        if max(wanted) > src.count:
            raise LandSegError(f"{path}: has {src.count} band(s), expected at least {max(wanted)}")
        return src.read(wanted, window=window)


def raster_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a raster, read from its header only."""
    with open_raster(str(path)) as src:
        return src.height, src.width


def grid_windows(height: int, width: int, size: int) -> list[Window]:
    """Non-overlapping ``size`` x ``size`` windows covering the raster, row-major.

    The last row and column are shifted inwards so that every window lies inside
    the raster (they then overlap their neighbour); a raster smaller than ``size``
    gives one window covering it.
    """
    if size <= 0:
        raise LandSegError(f"patch size must be a positive number of pixels, got {size}")
    rows = _starts(height, size)
    cols = _starts(width, size)
    return [Window(c, r, min(size, width), min(size, height)) for r in rows for c in cols]


def _starts(length: int, size: int) -> list[int]:
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, size))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def expand_window(window: Window, margin: int, height: int, width: int) -> tuple[Window, tuple[int, int]]:
    """``window`` grown by ``margin`` px per side, clipped to the raster; and the original's offset inside it."""
    row0 = max(0, int(window.row_off) - margin)
    col0 = max(0, int(window.col_off) - margin)
    row1 = min(height, int(window.row_off + window.height) + margin)
    col1 = min(width, int(window.col_off + window.width) + margin)
    grown = Window(col0, row0, col1 - col0, row1 - row0)
    return grown, (int(window.row_off) - row0, int(window.col_off) - col0)
