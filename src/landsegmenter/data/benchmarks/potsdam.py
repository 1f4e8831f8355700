"""ISPRS Potsdam: 5 cm true orthophotos (6000 x 6000 px tiles) with 6 classes.

Layout of the release (ISPRS benchmark data request, one zip per folder)::

    <root>/2_Ortho_RGB/top_potsdam_<r>_<c>_RGB.tif          R, G, B uint8
    <root>/3_Ortho_IRRG/top_potsdam_<r>_<c>_IRRG.tif        NIR, R, G uint8
    <root>/4_Ortho_RGBIR/top_potsdam_<r>_<c>_RGBIR.tif      R, G, B, NIR uint8
    <root>/5_Labels_all/top_potsdam_<r>_<c>_label.tif       RGB colour codes
    <root>/5_Labels_all_noBoundary/top_potsdam_<r>_<c>_label_noBoundary.tif
    <root>/1_DSM_normalisation/dsm_potsdam_<rr>_<cc>_normalized_lastools.jpg   (optional)

Files are found by their published names anywhere under ``<root>``, so both
the folder-per-zip and the flat extraction work.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.isprs import IsprsDataset
from landsegmenter.errors import LandSegError

TRAIN_TILES = (
    "2_10", "2_11", "2_12", "3_10", "3_11", "3_12", "4_10", "4_11", "4_12", "5_10", "5_11", "5_12",
    "6_7", "6_8", "6_9", "6_10", "6_11", "6_12", "7_7", "7_8", "7_9", "7_10", "7_11", "7_12",
)
TEST_TILES = (
    "2_13", "2_14", "3_13", "3_14", "4_13", "4_14", "4_15", "5_13", "5_14", "5_15", "6_13", "6_14", "6_15", "7_13",
)
IMAGERY = {
    "RGB": ("2_Ortho_RGB", BandLayout("rgb", ("red", "green", "blue"))),
    "IRRG": ("3_Ortho_IRRG", BandLayout("rgbn", ("nir", "red", "green"))),
    "RGBIR": ("4_Ortho_RGBIR", BandLayout("rgbn", ("red", "green", "blue", "nir"))),
}


class Potsdam(IsprsDataset):
    """ISPRS Potsdam tiles of the official split (24 train / 14 test tiles).

    Args:
        imagery: ``"RGB"`` (default), ``"IRRG"`` or ``"RGBIR"``: which orthophoto
            product to read; band order and wavelengths follow the product.
        **kwargs: see :class:`IsprsDataset` and :class:`BenchmarkDataset`;
            ``with_elevation=True`` adds the normalised DSM.
    """

    name = "potsdam"
    layout = IMAGERY["RGB"][1]
    tile_ids = {"train": TRAIN_TILES, "test": TEST_TILES}

    def __init__(self, root: str | Path, split: str = "test", imagery: str = "RGB", **kwargs: Any) -> None:
        key = imagery.strip().upper()
        if key not in IMAGERY:
            raise LandSegError(f"potsdam: unknown imagery '{imagery}'; choose one of {', '.join(IMAGERY)}")
        self.imagery = key
        self.image_folders = (IMAGERY[key][0],)
        self.layout = IMAGERY[key][1]
        super().__init__(root, split, **kwargs)

    def _image_name(self, tile_id: str) -> str:
        return f"top_potsdam_{tile_id}_{self.imagery}.tif"

    def _label_names(self, tile_id: str) -> tuple[str, str]:
        return f"top_potsdam_{tile_id}_label.tif", f"top_potsdam_{tile_id}_label_noBoundary.tif"

    def _elevation_names(self, tile_id: str) -> tuple[str, ...]:
        row, col = (int(v) for v in tile_id.split("_"))
        return (f"dsm_potsdam_{row:02d}_{col:02d}_normalized_lastools.jpg",)

    def _sample_id(self, tile_id: str) -> str:
        return f"top_potsdam_{tile_id}"
