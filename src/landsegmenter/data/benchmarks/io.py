"""Reading benchmark rasters (GeoTIFF, PNG, JPEG) window by window through rasterio.

CMYK-tagged TIFFs are read as their stored bands (see :func:`~landsegmenter.geo.raster.open_raster`).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import open_raster

TIFF_SUFFIXES = (".tif", ".tiff")


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


# -- finding files of a release ---------------------------------------------------------------


def find_folder(parent: Path, name: str) -> Path | None:
    """The sub-folder of ``parent`` called ``name``, ignoring case, spaces, ``_`` and ``-``; ``None`` if absent.

    Releases re-packed by mirrors respell folders (``Image__8bit_NirRGB`` /
    ``Image_8bit_NirRGB``, ``Large-scale Classification_5classes`` /
    ``Large-scale_Classification_5classes``); all spellings are one folder here.
    """
    if (parent / name).is_dir():
        return parent / name
    if not parent.is_dir():
        return None
    key = _folder_key(name)
    return next((p for p in sorted(parent.iterdir()) if p.is_dir() and _folder_key(p.name) == key), None)


def _folder_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.lower())


def tiff_files(folder: Path) -> dict[str, Path]:
    """File stem -> path of every ``.tif`` / ``.tiff`` (any case) in ``folder``, sorted by stem."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in TIFF_SUFFIXES:
            continue
        if path.stem in found:
            raise LandSegError(f"{folder}: both {found[path.stem].name} and {path.name} exist; keep one")
        found[path.stem] = path
    return dict(sorted(found.items()))


def tiff_path(folder: Path, stem: str) -> Path:
    """``folder/<stem>.tif`` or ``.tiff``, whichever exists (``.tif`` when neither does)."""
    for suffix in TIFF_SUFFIXES:
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return folder / f"{stem}{TIFF_SUFFIXES[0]}"


def require_same_size(image: Path, label: Path) -> None:
    """Raise :class:`LandSegError` unless ``image`` and ``label`` have the same width and height."""
    (ih, iw), (lh, lw) = raster_size(image), raster_size(label)
    if (ih, iw) != (lh, lw):
        raise LandSegError(f"{label}: label is {lw}x{lh} px, image {image} is {iw}x{ih} px")


def pick_stems(available: Sequence[str], wanted: Sequence[str], where: str | Path, dataset: str) -> list[str]:
    """``wanted`` file stems (names with a ``.tif``/``.tiff`` suffix accepted), each one of ``available``."""
    names = [n.strip() for n in ([wanted] if isinstance(wanted, str) else wanted)]
    stems = [Path(n).stem if Path(n).suffix.lower() in TIFF_SUFFIXES else n for n in names]
    if not stems:
        raise LandSegError(f"{dataset}: scenes= lists no scene")
    missing = [s for s in stems if s not in set(available)]
    if missing:
        raise LandSegError(
            f"{dataset}: {len(missing)} of {len(stems)} scene(s) not found in {where} (e.g. {missing[0]})"
        )
    return list(dict.fromkeys(stems))
