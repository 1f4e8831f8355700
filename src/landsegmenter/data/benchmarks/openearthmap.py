"""OpenEarthMap: 8-class land cover at 0.25-0.5 m GSD from 97 regions of 44 countries.

Layout of the release (Zenodo record 7223446, ``OpenEarthMap_wo_xBD``)::

    <root>/train.txt, val.txt, test.txt        file names, e.g. "aachen_11.tif"
    <root>/<region>/images/<region>_<n>.tif    RGB uint8 GeoTIFF
    <root>/<region>/labels/<region>_<n>.tif    uint8 codes 0 (unknown) and 1..8

The xBD regions ship without images (compile them with the benchmark's
``compile_xbd.py``); test labels are withheld by the organisers.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, descend, require_files
from landsegmenter.data.benchmarks.decoding import decode_codes
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import read_raster
from landsegmenter.data.benchmarks.splits import read_name_list
from landsegmenter.taxonomy.legends import get_legend

_LEGEND = "openearthmap"


class OpenEarthMap(BenchmarkDataset):
    """OpenEarthMap tiles of one official split (``train.txt``/``val.txt``/``test.txt``).

    Args:
        skip_missing_images: leave out listed tiles whose image is absent (the xBD
            regions of ``OpenEarthMap_wo_xBD``) instead of raising; their number
            is kept in :attr:`skipped`.
        **kwargs: see :class:`BenchmarkDataset`.
    """

    name = "openearthmap"
    splits = ("train", "val", "test")
    layout = BandLayout("rgb", ("red", "green", "blue"))
    legend_key = _LEGEND
    evaluation = Evaluation.per_class(
        "OpenEarthMap benchmark: IoU of each of the 8 classes and their mean; "
        "unknown (0) pixels are not scored; test labels are scored by the organisers",
        get_legend(_LEGEND).names,
        ignored="label code 0 (unknown)",
    )

    def __init__(self, root: str | Path, split: str = "test", skip_missing_images: bool = False, **kwargs: Any) -> None:
        self.skip_missing_images = skip_missing_images
        self.skipped = 0
        super().__init__(root, split, **kwargs)

    def _scan(self) -> list[Tile]:
        root = descend(self.root, "train.txt", ("OpenEarthMap_wo_xBD", "OpenEarthMap"))
        names = read_name_list(root / f"{self.split}.txt", self.name)
        tiles = [_tile(root, name) for name in names]
        if self.skip_missing_images:
            kept = [t for t in tiles if t.image.is_file()]
            self.skipped = len(tiles) - len(kept)
            tiles = kept
        require_files((t.image for t in tiles), f"OpenEarthMap images listed in {self.split}.txt",
                      "xBD images are distributed separately: compile them into the region folders "
                      "(see docs/benchmarks.md) or pass skip_missing_images=True")
        require_files((t.label for t in tiles), f"OpenEarthMap labels listed in {self.split}.txt",
                      "the test labels are not public; evaluate on 'val'" if self.split == "test" else "")
        return tiles

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        raw = read_raster(tile.label, [1], window)[0]
        return decode_codes(raw, self.legend, str(tile.label))


def _tile(root: Path, name: str) -> Tile:
    file_name = Path(name).name
    stem = Path(file_name).stem
    region = stem.rsplit("_", 1)[0]
    return Tile(
        sample_id=stem,
        image=root / region / "images" / file_name,
        label=root / region / "labels" / file_name,
    )
