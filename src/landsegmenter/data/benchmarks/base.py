"""Common machinery of the benchmark datasets: tiles, band selection, patches, samples.

A benchmark subclass lists its tiles for a split (:meth:`BenchmarkDataset._scan`)
and decodes one label window (:meth:`BenchmarkDataset._read_label`); this class
reads and normalises the image bands, cuts optional patches and assembles the
sample dictionary shared with the LAS training data::

    image        float32 [C, H, W]  bands normalised with the sensor registry's statistics
    label        int64   [H, W]     contiguous class indices, 255 = ignore
    wavelengths  float32 [C]        centre wavelength of each band (µm), in image order
    class_names  list[str]          names of the label indices, from the taxonomy registry
    sample_id    str                tile name (``@row_col`` appended for patches)
    subset       str                the benchmark's registry name (e.g. ``"loveda"``)
    split        str                the split read
    elevation    float32 [1, H, W]  only with ``with_elevation=True``, where the benchmark has one
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from rasterio.windows import Window
from torch.utils.data import Dataset

from landsegmenter.data.benchmarks.bands import BandLayout, SelectedBands
from landsegmenter.data.benchmarks.decoding import IGNORE_INDEX
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import grid_windows, raster_size, read_raster
from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import Legend, get_legend

Sample = dict[str, Any]


@dataclass(frozen=True)
class Tile:
    """One image file of a benchmark with its reference and optional elevation raster."""

    sample_id: str
    image: Path
    label: Path | None
    elevation: Path | None = None
    elevation_band: int = 1
    label_is_eroded: bool = False


class BenchmarkDataset(Dataset):
    """A LULC benchmark read from its published folder layout (see ``docs/benchmarks.md``).

    Args:
        root: the folder the benchmark was extracted to.
        split: one of :attr:`splits`.
        bands: band names to keep, in the order wanted (default: every spectral
            band of the files, in file order). Names as in the sensor registry
            (``red``, ``green``, ``blue``, ``nir``).
        patch_size: cut each tile into ``patch_size`` px squares (the last row and
            column shifted inwards); ``None`` returns whole tiles.
        with_elevation: add the benchmark's elevation raster as ``sample["elevation"]``.
        transforms: callable applied to each sample dictionary.
    """

    name: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    layout: ClassVar[BandLayout]
    has_elevation: ClassVar[bool] = False
    ignore_index: int = IGNORE_INDEX

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        bands: Sequence[str] | None = None,
        patch_size: int | None = None,
        with_elevation: bool = False,
        transforms: Callable[[Sample], Sample] | None = None,
    ) -> None:
        self.root = _existing_folder(root, self.name)
        self.split = self._check_split(split)
        self.selected: SelectedBands = _select(self.layout, bands, self.name)
        if with_elevation and not self.has_elevation:
            raise LandSegError(f"{self.name} has no elevation data; drop with_elevation")
        self.with_elevation = with_elevation
        self.transforms = transforms
        self.tiles: list[Tile] = self._scan()
        if not self.tiles:
            raise LandSegError(f"{self.name}: no tiles of split '{self.split}' found under {self.root}")
        self._items = _items(self.tiles, patch_size)

    # -- what a subclass provides ------------------------------------------------------

    legend_key: str
    evaluation: Evaluation

    def _scan(self) -> list[Tile]:
        """The tiles of ``self.split``, sorted; raise :class:`LandSegError` on a broken layout."""
        raise NotImplementedError

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        """``uint8 [H, W]`` class indices (255 = ignore) of one tile window."""
        raise NotImplementedError

    # -- public interface ----------------------------------------------------------------

    @property
    def legend(self) -> Legend:
        return get_legend(self.legend_key)

    @property
    def class_names(self) -> list[str]:
        return list(self.legend.names)

    @property
    def band_names(self) -> tuple[str, ...]:
        return self.selected.names

    @property
    def wavelengths(self) -> tuple[float, ...]:
        """Centre wavelength (µm) of each image band, in image order."""
        return self.selected.wavelengths

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Sample:
        tile, window = self._items[index]
        image = self.selected.normalise(read_raster(tile.image, self.selected.indexes, window))
        label = self._read_label(tile, window)
        _check_same_size(image, label, tile)
        sample: Sample = {
            "image": torch.from_numpy(image),
            "label": torch.from_numpy(label.astype(np.int64)),
            "wavelengths": torch.tensor(self.wavelengths, dtype=torch.float32),
            "class_names": self.class_names,
            "sample_id": _sample_id(tile, window),
            "subset": self.name,
            "split": self.split,
        }
        if self.with_elevation:
            sample["elevation"] = torch.from_numpy(self._read_elevation(tile, window, label.shape))
        return self.transforms(sample) if self.transforms else sample

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root='{self.root}', split='{self.split}', samples={len(self)})"

    # -- helpers for subclasses ----------------------------------------------------------

    def _check_split(self, split: str) -> str:
        key = split.strip().lower()
        if key not in self.splits:
            raise LandSegError(f"{self.name}: unknown split '{split}'; choose one of {', '.join(self.splits)}")
        return key

    def _read_elevation(self, tile: Tile, window: Window | None, shape: tuple[int, int]) -> np.ndarray:
        if tile.elevation is None:
            raise LandSegError(f"{self.name}: tile {tile.sample_id} has no elevation raster")
        elevation = read_raster(tile.elevation, [tile.elevation_band], window).astype(np.float32)
        if elevation.shape[1:] != shape:
            raise LandSegError(
                f"{tile.elevation}: elevation is {elevation.shape[2]}x{elevation.shape[1]} px, "
                f"the image {shape[1]}x{shape[0]} px"
            )
        return elevation


def require_files(paths: Iterable[Path], what: str, hint: str = "") -> None:
    """Raise one :class:`LandSegError` counting the missing ``paths`` (with an example and a hint)."""
    paths = list(paths)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        advice = f"; {hint}" if hint else ""
        raise LandSegError(f"{len(missing)} of {len(paths)} {what} are missing (e.g. {missing[0]}){advice}")


def descend(root: Path, marker: str, wrappers: Sequence[str]) -> Path:
    """``root``, or the archive's top folder inside it (one of ``wrappers``) that holds ``marker``."""
    if (root / marker).exists():
        return root
    for wrapper in wrappers:
        if (root / wrapper / marker).exists():
            return root / wrapper
    return root


def _existing_folder(root: str | Path, name: str) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise LandSegError(f"{name}: root folder {path} does not exist or is not a folder")
    return path


def _select(layout: BandLayout, bands: Sequence[str] | None, name: str) -> SelectedBands:
    try:
        return layout.select(bands)
    except LandSegError as err:
        raise LandSegError(f"{name}: {err}") from None


def _items(tiles: list[Tile], patch_size: int | None) -> list[tuple[Tile, Window | None]]:
    if patch_size is None:
        return [(tile, None) for tile in tiles]
    return [(tile, w) for tile in tiles for w in grid_windows(*raster_size(tile.image), patch_size)]


def _sample_id(tile: Tile, window: Window | None) -> str:
    if window is None:
        return tile.sample_id
    return f"{tile.sample_id}@{int(window.row_off)}_{int(window.col_off)}"


def _check_same_size(image: np.ndarray, label: np.ndarray, tile: Tile) -> None:
    if image.shape[1:] != label.shape:
        raise LandSegError(
            f"{tile.label}: reference is {label.shape[1]}x{label.shape[0]} px, "
            f"image {tile.image} is {image.shape[2]}x{image.shape[1]} px"
        )
