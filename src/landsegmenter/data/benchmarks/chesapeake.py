"""Chesapeake Land Cover (LILA release of the CVPR 2019 data): 1 m NAIP over six states.

Layout of ``cvpr_chesapeake_landcover.zip`` (https://lila.science/datasets/chesapeakelandcover)::

    <root>/<state>_1m_<year>_extended-debuffered-<split>_tiles/<tile>_naip-new.tif   R, G, B, NIR uint8
    <root>/<state>_1m_<year>_extended-debuffered-<split>_tiles/<tile>_lc.tif         uint8 land cover
    (plus _naip-old, _landsat-leaf-on/off, _nlcd, _buildings layers that are not read)

``<state>`` is de, md, ny, pa (2013) or va, wv (2014); ``<split>`` train, val or test.

* 7-class labels (default): the ``_lc`` layer, Chesapeake Conservancy codes
  1 water, 2 tree canopy and shrubs, 3 low vegetation, 4 barren, 5 impervious
  surfaces, 6 impervious roads; 0 and 15 are no-data.
* 13-class labels: the release has no 13-class layer. Put the Conservancy's
  13-class raster ``Baywide_13Class_20132014.tif`` (same 2013/14 epoch) in
  ``<root>`` or ``<root>/BAYWIDE``; it is read onto each NAIP tile's grid
  (nearest neighbour, any CRS).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, descend, require_files
from landsegmenter.data.benchmarks.decoding import decode_codes
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import read_raster
from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import open_raster
from landsegmenter.taxonomy.legends import get_legend

STATES = ("de", "md", "va", "wv", "pa", "ny")
LEGENDS = {7: "chesapeake_7", 13: "chesapeake_13"}
BAYWIDE_13 = "Baywide_13Class_20132014.tif"


class Chesapeake(BenchmarkDataset):
    """NAIP tiles of the LILA Chesapeake Land Cover release, one split, chosen states.

    Args:
        states: state codes to include (default: all six).
        num_classes: 7 (the release's ``_lc`` layer) or 13 (the Conservancy's
            13-class raster, see the module documentation).
        **kwargs: see :class:`BenchmarkDataset`.
    """

    name = "chesapeake"
    splits = ("train", "val", "test")
    layout = BandLayout("naip", ("red", "green", "blue", "nir"))

    def __init__(
        self, root: str | Path, split: str = "test", states: Sequence[str] = STATES, num_classes: int = 7, **kwargs: Any
    ) -> None:
        if num_classes not in LEGENDS:
            raise LandSegError(f"chesapeake: num_classes must be 7 or 13, got {num_classes}")
        self.states = _check_states(states)
        self.num_classes = num_classes
        self.legend_key = LEGENDS[num_classes]
        self.evaluation = _evaluation(num_classes)
        super().__init__(root, split, **kwargs)

    def _scan(self) -> list[Tile]:
        root = descend(self.root, "spatial_index.geojson", ("cvpr_chesapeake_landcover",))
        baywide = _baywide_13(root) if self.num_classes == 13 else None
        tiles = [t for state in self.states for t in _state_tiles(root, state, self.split, baywide)]
        if not tiles:
            raise LandSegError(
                f"chesapeake: no <state>_1m_<year>_extended-debuffered-{self.split}_tiles folders with "
                f"*_naip-new.tif for states {', '.join(self.states)} under {root}"
            )
        require_files((t.label for t in tiles), f"Chesapeake {self.split} land-cover tiles")
        return tiles

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        if self.num_classes == 13:
            raw = _read_on_grid(tile.label, tile.image, window)
        else:
            raw = read_raster(tile.label, [1], window)[0]
        return decode_codes(raw, self.legend, str(tile.label))


def _evaluation(num_classes: int) -> Evaluation:
    names = get_legend(LEGENDS[num_classes]).names
    if num_classes == 13:
        return Evaluation.per_class(
            "per-class IoU of the Chesapeake Conservancy 13 classes; mean without the Aberdeen Proving "
            "Ground mask class",
            names, mean_over=range(12), ignored="code 0 (no data)",
        )
    scored = ("water", "tree canopy and shrubs", "low vegetation", "impervious")
    groups = ((0,), (1,), (2,), (3, 4, 5))
    return Evaluation(
        "CVPR 2019 Chesapeake Land Cover: accuracy and IoU over 4 classes (barren, impervious surfaces "
        "and impervious roads merged); no-data and Aberdeen Proving Ground not scored",
        scored, groups, mean_over=(0, 1, 2, 3), metrics=("OA", "mIoU"), ignored="codes 0 and 15 (no data)",
    )


def _check_states(states: Sequence[str]) -> tuple[str, ...]:
    chosen = (states,) if isinstance(states, str) else tuple(states)
    chosen = tuple(s.strip().lower() for s in chosen)
    unknown = [s for s in chosen if s not in STATES]
    if not chosen or unknown:
        raise LandSegError(f"chesapeake: unknown state(s) {unknown or chosen}; choose from {', '.join(STATES)}")
    return tuple(dict.fromkeys(chosen))


def _state_tiles(root: Path, state: str, split: str, baywide: Path | None) -> list[Tile]:
    tiles = []
    for folder in sorted(root.glob(f"{state}_1m_*_extended-debuffered-{split}_tiles")):
        for image in sorted(folder.glob("*_naip-new.tif")):
            tile_id = image.name.removesuffix("_naip-new.tif")
            label = baywide or folder / f"{tile_id}_lc.tif"
            tiles.append(Tile(sample_id=f"{state}/{tile_id}", image=image, label=label))
    return tiles


def _baywide_13(root: Path) -> Path:
    for candidate in (root / BAYWIDE_13, root / "BAYWIDE" / BAYWIDE_13, root.parent / BAYWIDE_13):
        if candidate.is_file():
            return candidate
    raise LandSegError(
        f"chesapeake: 13-class labels need the Chesapeake Conservancy raster {BAYWIDE_13} "
        f"in {root} or {root / 'BAYWIDE'} (the LILA release ships 7-class labels only)"
    )


def _read_on_grid(source: Path, reference: Path, window: Window | None) -> np.ndarray:
    """Band 1 of ``source`` resampled (nearest) onto the grid of ``reference``; outside -> 0 (no data)."""
    with open_raster(str(reference)) as ref, open_raster(str(source)) as src:
        if ref.crs is None or src.crs is None:
            raise LandSegError(f"{source} and {reference} must both be georeferenced to align the 13-class labels")
        with WarpedVRT(
            src, crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height,
            resampling=Resampling.nearest, src_nodata=src.nodata, nodata=0,
        ) as vrt:
            return vrt.read(1, window=window)
