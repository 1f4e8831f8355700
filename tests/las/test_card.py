"""The dataset card's counts: patches, places, sensors (simulated ones too), label products, classes."""
from __future__ import annotations

from landsegmenter.las import build_las
from landsegmenter.las.card import count_places, dataset_card
from landsegmenter.las.store import LASStore

ETM_FROM_S2 = {
    "bands": ["B02", "B03", "B04", "B08", "B11", "B12"],
    "wavelengths": [0.485, 0.56, 0.66, 0.835, 1.65, 2.22],
}


def test_card_counts_patches_places_sensors_products_and_classes(shared_data, tmp_path, write_manifest, dw_subset):
    at_30m = dw_subset(shared_data, samples=2, patch=32, gsd=30)
    at_30m["imagery"].update(simulates="landsat7", **ETM_FROM_S2)
    at_30m["label"]["resampling"] = "mode"
    doc = {"name": "t", "subsets": {"dw": dw_subset(shared_data, samples=2), "dw_etm30": at_30m}}
    build_las(write_manifest(doc), tmp_path / "las", progress=False)
    card = dataset_card(LASStore.open(tmp_path / "las"))
    assert "* **8 patches** in 2 subsets" in card
    assert "* **1 place** (scene centres more than 25 km apart)" in card  # both windows of one 15 km scene
    assert "* **1 sensor**: sentinel2_l1c; **1 simulated**: landsat7 (from sentinel2_l1c)" in card
    assert "* **1 label product** (one legend each): dynamic_world (weak, 2 subsets)" in card
    assert "* **9 class names** over those legends" in card
    assert "| dw_etm30 | sentinel2_l1c as landsat7 | 6 | 32 | 30 |" in card
    assert "### dynamic_world (dw, dw_etm30)" in card  # the class histogram adds both subsets up


def test_places_merge_scene_centres_closer_than_the_radius():
    brandenburg, nearby, denmark = (12.6, 52.49), (12.8, 52.5), (12.7, 55.5)
    assert count_places([brandenburg, nearby, denmark]) == 2
    assert count_places([]) == 0
