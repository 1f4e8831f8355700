"""Shared parts of the ISPRS 2D semantic labelling benchmarks (Potsdam, Vaihingen).

References are RGB colour-coded label images; the official evaluation ignores a
3 px eroded band around class boundaries (the ``*_noBoundary`` references, with
the removed pixels in black). ``boundary`` chooses the reference:

* ``"full"``: the complete reference (default for ``train``);
* ``"eroded"``: the official eroded reference where present, otherwise the full
  one eroded here by the same 3 px disc (default for ``test``);
* ``"eroded_computed"``: always erode the full reference here.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile
from landsegmenter.data.benchmarks.boundary import ISPRS_EROSION_RADIUS, erode_boundaries
from landsegmenter.data.benchmarks.decoding import decode_colors
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import expand_window, raster_size, read_raster
from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend

LEGEND = "isprs_potsdam_vaihingen"
BOUNDARY_COLOR = (0, 0, 0)
BOUNDARY_MODES = ("full", "eroded", "eroded_computed")

EVALUATION = Evaluation.per_class(
    "ISPRS 2D semantic labelling: per-class F1, overall accuracy and IoU on the references with "
    "3 px eroded boundaries; the mean is taken over the 5 classes without clutter/background",
    get_legend(LEGEND).names,
    mean_over=range(5),
    metrics=("OA", "F1", "mIoU"),
    ignored="boundary pixels (black in the *_noBoundary references)",
    boundary_erosion_px=ISPRS_EROSION_RADIUS,
)


class IsprsDataset(BenchmarkDataset):
    """A 2D semantic labelling benchmark: named tiles per split, colour-coded references."""

    splits = ("train", "test")
    legend_key = LEGEND
    evaluation = EVALUATION
    has_elevation = True
    tile_ids: ClassVar[Mapping[str, Sequence[str]]]

    def __init__(self, root: str | Path, split: str = "test", boundary: str | None = None, **kwargs: Any) -> None:
        default = "eroded" if str(split).strip().lower() == "test" else "full"
        self.boundary = _check_boundary(boundary or default, self.name)
        super().__init__(root, split, **kwargs)

    # -- per benchmark -------------------------------------------------------------------

    def _image_name(self, tile_id: str) -> str:
        raise NotImplementedError

    def _label_names(self, tile_id: str) -> tuple[str, str]:
        """File names of the full and of the eroded reference."""
        raise NotImplementedError

    def _elevation_names(self, tile_id: str) -> tuple[str, ...]:
        """Candidate elevation file names, preferred first."""
        raise NotImplementedError

    def _sample_id(self, tile_id: str) -> str:
        raise NotImplementedError

    image_folders: ClassVar[tuple[str, ...]] = ()

    # -- shared --------------------------------------------------------------------------

    def _scan(self) -> list[Tile]:
        files = _index_files(self.root)
        return [self._tile(files, tile_id) for tile_id in self.tile_ids[self.split]]

    def _tile(self, files: Mapping[str, list[Path]], tile_id: str) -> Tile:
        image = self._find(files, self._image_name(tile_id), "image", in_folders=self.image_folders)
        full_name, eroded_name = self._label_names(tile_id)
        full = _first(files, full_name, exclude_folders=self.image_folders)
        eroded = _first(files, eroded_name)
        use_eroded = self.boundary == "eroded" and eroded is not None
        label = eroded if use_eroded else full
        if label is None:
            wanted = eroded_name if self.boundary == "eroded" else full_name
            raise LandSegError(f"{self.name}: reference {wanted} of tile {tile_id} not found under {self.root}")
        elevation = next((p for n in self._elevation_names(tile_id) if (p := _first(files, n))), None)
        if self.with_elevation and elevation is None:
            names = " or ".join(self._elevation_names(tile_id))
            raise LandSegError(f"{self.name}: elevation {names} of tile {tile_id} not found under {self.root}")
        return Tile(self._sample_id(tile_id), image, label, elevation, label_is_eroded=use_eroded)

    def _find(self, files: Mapping[str, list[Path]], name: str, what: str, in_folders: Sequence[str]) -> Path:
        found = [p for p in files.get(name, []) if not in_folders or p.parent.name in in_folders]
        if not found:
            where = f" (in a folder named {' or '.join(in_folders)})" if in_folders else ""
            raise LandSegError(f"{self.name}: {what} {name}{where} not found under {self.root}")
        return found[0]

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        erode = self.boundary != "full" and not tile.label_is_eroded
        if not erode:
            return self._decode(tile.label, window)
        if window is None:
            return erode_boundaries(self._decode(tile.label, None))
        grown, (dy, dx) = expand_window(window, ISPRS_EROSION_RADIUS, *raster_size(tile.label))
        eroded = erode_boundaries(self._decode(tile.label, grown))
        return eroded[dy : dy + int(window.height), dx : dx + int(window.width)]

    def _decode(self, path: Path, window: Window | None) -> np.ndarray:
        rgb = read_raster(path, [1, 2, 3], window)
        return decode_colors(rgb, self.legend.colors, str(path), ignore_colors=[BOUNDARY_COLOR])


def _check_boundary(boundary: str, name: str) -> str:
    if boundary not in BOUNDARY_MODES:
        raise LandSegError(f"{name}: unknown boundary mode '{boundary}'; choose one of {', '.join(BOUNDARY_MODES)}")
    return boundary


def _index_files(root: Path) -> dict[str, list[Path]]:
    """File name -> every path with that name under ``root`` (the releases are a few hundred files)."""
    files: dict[str, list[Path]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            files.setdefault(name, []).append(Path(folder) / name)
    for paths in files.values():
        paths.sort()
    return files


def _first(files: Mapping[str, list[Path]], name: str, exclude_folders: Sequence[str] = ()) -> Path | None:
    return next((p for p in files.get(name, []) if p.parent.name not in exclude_folders), None)
