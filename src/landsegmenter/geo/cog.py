"""Writing single-band uint8 rasters strip by strip, then publishing them as COGs atomically."""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from landsegmenter.geo.raster import Grid

BLOCK = 512


def create_partial(
    path: Path,
    grid: Grid,
    *,
    nodata: int,
    tags: dict[str, str],
    colormap: dict[int, tuple[int, int, int, int]] | None = None,
    description: str = "",
) -> None:
    """An empty tiled, compressed uint8 GeoTIFF on the scene grid, filled later strip by strip."""
    profile = dict(
        driver="GTiff",
        width=grid.width,
        height=grid.height,
        count=1,
        dtype="uint8",
        crs=grid.crs,
        transform=grid.transform,
        nodata=nodata,
        tiled=True,
        blockxsize=BLOCK,
        blockysize=BLOCK,
        compress="deflate",
        sparse_ok=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.update_tags(**tags)
            if description:
                dst.set_band_description(1, description)
            if colormap:
                dst.write_colormap(1, colormap)


def write_strip(path: Path, row: int, strip: np.ndarray) -> None:
    """Write rows ``[row, row + len(strip))`` and close, so they are on disk when this returns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "r+") as dst:
            dst.write(strip, 1, window=Window(0, row, strip.shape[1], strip.shape[0]))


def publish_cog(partial: Path, final: Path, *, overview_resampling: str = "mode") -> None:
    """Copy a finished partial raster to a Cloud-Optimised GeoTIFF with overviews, atomically.

    The COG is written next to ``final`` under a temporary name and renamed into place, so
    ``final`` is either the old file or the complete new one.
    """
    tmp = final.with_name(f".{final.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        rasterio.shutil.copy(
            partial,
            tmp,
            driver="COG",
            compress="DEFLATE",
            blocksize=BLOCK,
            overviews="AUTO",
            overview_resampling=overview_resampling,
            bigtiff="IF_SAFER",
        )
    os.replace(tmp, final)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
