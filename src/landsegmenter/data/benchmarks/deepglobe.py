"""DeepGlobe 2018 land cover: 50 cm DigitalGlobe RGB, 2448 x 2448 px, 7 colour-coded classes.

Two published layouts are read:

* the challenge release (CVPR 2018 DeepGlobe, also the Kaggle mirror)::

      <root>/train/<id>_sat.jpg, <root>/train/<id>_mask.png
      <root>/valid/<id>_sat.jpg, <root>/test/<id>_sat.jpg      (masks withheld)

* the labelled re-split of the 803 training images used by torchgeo::

      <root>/data/training_data/images/<id>_sat.jpg, .../masks/<id>_mask.png
      <root>/data/test_data/images/<id>_sat.jpg,     .../masks/<id>_mask.png

Masks are RGB; as the challenge notes, their values are not exactly 0/255 and
are binarised at 128 before the colours are matched. Black is "unknown" and is
not scored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, require_files
from landsegmenter.data.benchmarks.decoding import binarize_colors, decode_colors
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import read_raster
from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend

_LEGEND = "deepglobe_land_cover"
UNKNOWN_COLOR = (0, 0, 0)
CHALLENGE_FOLDERS = {"train": "train", "val": "valid", "test": "test"}
RESPLIT_FOLDERS = {"train": "training_data", "test": "test_data"}


class DeepGlobeLandCover(BenchmarkDataset):
    """DeepGlobe land cover tiles of one split, from either published layout."""

    name = "deepglobe"
    splits = ("train", "val", "test")
    layout = BandLayout("rgb", ("red", "green", "blue"))
    legend_key = _LEGEND
    evaluation = Evaluation.per_class(
        "DeepGlobe 2018 land cover challenge: IoU of each of the 6 classes and their mean; "
        "unknown (black) pixels are not scored",
        get_legend(_LEGEND).names,
        ignored="black (0, 0, 0) unknown pixels",
    )

    def _scan(self) -> list[Tile]:
        folder, masks, layout = self._split_folders()
        images = sorted(folder.glob("*_sat.jpg"))
        tiles = [_tile(image, masks) for image in images]
        hint = (
            "the challenge withheld the valid/test masks; use the labelled re-split layout "
            "(data/training_data, data/test_data) to evaluate"
            if layout == "challenge" and self.split != "train"
            else ""
        )
        require_files((t.label for t in tiles), f"DeepGlobe {self.split} masks", hint)
        return tiles

    def _split_folders(self) -> tuple[Path, Path, str]:
        """(image folder, mask folder, layout name) of ``self.split``."""
        for base in (self.root / "data", self.root):
            if (base / "training_data").is_dir():
                if self.split not in RESPLIT_FOLDERS:
                    raise LandSegError("deepglobe: the re-split layout has splits train and test only")
                split_dir = base / RESPLIT_FOLDERS[self.split]
                return split_dir / "images", split_dir / "masks", "resplit"
        if (self.root / "train").is_dir():
            split_dir = self.root / CHALLENGE_FOLDERS[self.split]
            return split_dir, split_dir, "challenge"
        raise LandSegError(
            f"deepglobe: {self.root} holds neither the challenge layout (train/, valid/, test/) "
            "nor the re-split layout (data/training_data, data/test_data)"
        )

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        rgb = binarize_colors(read_raster(tile.label, [1, 2, 3], window))
        return decode_colors(rgb, self.legend.colors, str(tile.label), ignore_colors=[UNKNOWN_COLOR])


def _tile(image: Path, mask_dir: Path) -> Tile:
    tile_id = image.name.removesuffix("_sat.jpg")
    return Tile(sample_id=tile_id, image=image, label=mask_dir / f"{tile_id}_mask.png")
