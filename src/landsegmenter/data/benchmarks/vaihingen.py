"""ISPRS Vaihingen: 9 cm true orthophotos (about 2000 x 2500 px per area) with 6 classes.

Layout of the release (ISPRS benchmark data request)::

    <root>/ISPRS_semantic_labeling_Vaihingen/top/top_mosaic_09cm_area<n>.tif       NIR, R, G uint8
    <root>/ISPRS_semantic_labeling_Vaihingen/dsm/dsm_09cm_matching_area<n>.tif     (optional)
    <root>/ISPRS_semantic_labeling_Vaihingen/gts_for_participants/top_mosaic_09cm_area<n>.tif   (train areas)
    <root>/ISPRS_semantic_labeling_Vaihingen_ground_truth_COMPLETE/top_mosaic_09cm_area<n>.tif
    <root>/ISPRS_semantic_labeling_Vaihingen_ground_truth_eroded_COMPLETE/top_mosaic_09cm_area<n>_noBoundary.tif

Images and full references share their file names; images are the ones in a
folder named ``top``.
"""
from __future__ import annotations

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.isprs import IsprsDataset

TRAIN_AREAS = (1, 3, 5, 7, 11, 13, 15, 17, 21, 23, 26, 28, 30, 32, 34, 37)
TEST_AREAS = (2, 4, 6, 8, 10, 12, 14, 16, 20, 22, 24, 27, 29, 31, 33, 35, 38)


class Vaihingen(IsprsDataset):
    """ISPRS Vaihingen areas of the official split (16 train / 17 test areas), IRRG imagery.

    Args: see :class:`IsprsDataset` and :class:`BenchmarkDataset`; ``with_elevation=True``
    adds the DSM (metres above sea level, float32).
    """

    name = "vaihingen"
    layout = BandLayout("rgbn", ("nir", "red", "green"))
    tile_ids = {"train": tuple(f"area{n}" for n in TRAIN_AREAS), "test": tuple(f"area{n}" for n in TEST_AREAS)}
    image_folders = ("top",)

    def _image_name(self, tile_id: str) -> str:
        return f"top_mosaic_09cm_{tile_id}.tif"

    def _label_names(self, tile_id: str) -> tuple[str, str]:
        return f"top_mosaic_09cm_{tile_id}.tif", f"top_mosaic_09cm_{tile_id}_noBoundary.tif"

    def _elevation_names(self, tile_id: str) -> tuple[str, ...]:
        return (f"dsm_09cm_matching_{tile_id}.tif",)

    def _sample_id(self, tile_id: str) -> str:
        return tile_id
