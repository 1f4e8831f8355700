"""Writing single-band uint8 rasters strip by strip, then copying them to checked COGs."""
from __future__ import annotations

import errno
import logging
import os
import sys
import threading
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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
    """Write rows ``[row, row + len(strip))`` and close, so they are on disk (and checked) when this returns."""
    window = Window(0, row, strip.shape[1], strip.shape[0])
    with checked_gdal_write(path):
        with rasterio.open(path, "r+") as dst:
            dst.write(strip, 1, window=window)
        with rasterio.open(path) as src:
            written = src.read(1, window=window)
    if not np.array_equal(written, strip):
        raise OSError(errno.EIO, "the raster read back differs from what was written", str(path))


def publish_cog(partial: Path, final: Path, *, overview_resampling: str = "mode") -> None:
    """Copy a finished partial raster to a Cloud-Optimised GeoTIFF with overviews, and check it.

    The COG is read back and compared with ``partial`` before this returns; a failed write
    raises :class:`OSError` and leaves no file at ``final``.
    """
    try:
        with checked_gdal_write(final):
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
    except BaseException:
        final.unlink(missing_ok=True)
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


@contextmanager
def checked_gdal_write(path: Path) -> Iterator[None]:
    """GDAL errors while writing ``path`` as one :class:`OSError` naming it.

    GDAL reports some failed writes (a full disk while a file is closed) only as messages,
    which rasterio logs; they are collected here, not printed, and raised too.
    """
    messages: list[logging.LogRecord] = []
    handler = _Collect(messages)
    logger = logging.getLogger("rasterio")
    logger.addHandler(handler)
    printed = bytearray()  # libtiff prints its errors straight to stderr
    try:
        with warnings.catch_warnings(), _stderr_held(printed):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            yield
    except (RasterioError, CPLE_BaseError) as exc:
        raise _write_error(path, [_first_line(exc)], messages, printed) from None
    finally:
        logger.removeHandler(handler)
    errors = [m for m in messages if m.levelno >= logging.ERROR]
    if errors:
        raise _write_error(path, [errors[0].getMessage()], messages, printed)
    if printed:
        os.write(2, bytes(printed))  # a write that worked: whatever was printed is passed on


@contextmanager
def _stderr_held(into: bytearray) -> Iterator[None]:
    """What C code writes to file descriptor 2 meanwhile, kept in ``into`` instead of printed."""
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    saved = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    reader = threading.Thread(target=_drain, args=(read_end, into), daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        reader.join()
        os.close(read_end)


def _drain(fd: int, into: bytearray) -> None:
    while chunk := os.read(fd, 65536):
        into.extend(chunk)


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _write_error(path: Path, details: list[str], messages: list[logging.LogRecord], printed: bytes) -> OSError:
    texts = details + [m.getMessage() for m in messages] + [printed.decode(errors="replace")]
    if any("No space left on device" in t for t in texts):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
    return OSError(errno.EIO, f"writing the raster failed ({details[0].strip().rstrip('.')})", str(path))


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
