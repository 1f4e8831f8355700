"""Writing single-band uint8 rasters strip by strip, then copying them to checked COGs."""
from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from rasterio._err import CPLE_BaseError
from rasterio.errors import NotGeoreferencedWarning, RasterioError
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
    window = Window(0, row, strip.shape[1], strip.shape[0])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path, "r+") as dst:
                dst.write(strip, 1, window=window)
            with rasterio.open(path) as src:  # GDAL reports some failed writes only on stderr
                written = src.read(1, window=window)
    except (RasterioError, CPLE_BaseError) as exc:
        raise OSError(errno.EIO, f"writing the raster failed ({_first_line(exc)})", str(path)) from None
    if not np.array_equal(written, strip):
        raise OSError(errno.EIO, "the raster read back differs from what was written", str(path))


def publish_cog(partial: Path, final: Path, *, overview_resampling: str = "mode") -> None:
    """Copy a finished partial raster to a Cloud-Optimised GeoTIFF with overviews, and check it.

    GDAL reports some write errors (e.g. a full disk while the file is closed) only on
    stderr, so the COG is read back and compared with ``partial`` before this returns; a
    failed write raises :class:`OSError` and leaves no file at ``final``.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            rasterio.shutil.copy(
                partial,
                final,
                driver="COG",
                compress="DEFLATE",
                blocksize=BLOCK,
                overviews="AUTO",
                overview_resampling=overview_resampling,
                bigtiff="IF_SAFER",
            )
        verify_copy(partial, final)
    except BaseException as exc:
        final.unlink(missing_ok=True)
        if isinstance(exc, (RasterioError, CPLE_BaseError)):
            raise OSError(errno.EIO, f"writing the raster failed ({_first_line(exc)})", str(final)) from None
        raise


def verify_copy(source: Path, copy: Path) -> None:
    """Raise :class:`OSError` unless ``copy`` reads back pixel for pixel as ``source``, strip by strip."""
    with rasterio.open(source) as src, rasterio.open(copy) as dst:
        if (dst.width, dst.height, dst.count) != (src.width, src.height, src.count):
            raise OSError(errno.EIO, "the raster read back has another size", str(copy))
        for row in range(0, src.height, BLOCK):
            window = Window(0, row, src.width, min(BLOCK, src.height - row))
            if not np.array_equal(src.read(window=window), dst.read(window=window)):
                raise OSError(errno.EIO, "the raster read back differs from what was written", str(copy))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` under a temporary name, check its size and rename it to ``path``; nothing is left on failure."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        if tmp.stat().st_size != len(data):
            raise OSError(errno.EIO, "the file on disk is shorter than what was written", str(tmp))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
