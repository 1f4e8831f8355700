"""The dataset card's counts: patches, places, sensors (simulated ones too), label products, classes."""
from __future__ import annotations

from pathlib import Path

import rasterio

from landsegmenter.las import build_las
from landsegmenter.las.card import count_places, dataset_card
from landsegmenter.las.store import LASStore

ETM_FROM_MSI = {"B1": 2, "B2": 3, "B3": 4, "B4": 8, "B5": 12, "B7": 13}  # ETM+ band: MSI file band (B02 ... B12)


def _landsat7_like(s2_image: Path, out: Path) -> Path:
    """The MSI bands nearest to ETM+ bands 1-5, 7 of a real scene, named and scaled as a Landsat 7 stack."""
    with rasterio.open(s2_image) as src:
        profile, data = src.profile, src.read(list(ETM_FROM_MSI.values()))
    profile.update(count=len(ETM_FROM_MSI))
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        for index, name in enumerate(ETM_FROM_MSI, start=1):
            dst.set_band_description(index, name)
        dst.scales, dst.offsets = (1e-4,) * len(ETM_FROM_MSI), (0.0,) * len(ETM_FROM_MSI)
    return out


def test_card_counts_patches_places_sensors_products_and_classes(
    shared_data, s2_scene, tmp_path, write_manifest, dw_subset
):
    simulated = dw_subset(shared_data, samples=2, patch=32, gsd=30)
    image = str(_landsat7_like(s2_scene, tmp_path / "etm_like.tif"))
    simulated["imagery"] = {"sensor": "landsat7", "simulated_from": "sentinel2_l1c", "date": "2017-02-16"}
    simulated["label"]["resampling"] = "mode"
    for scene in simulated["scenes"]:
        scene["image"] = image
    doc = {"name": "t", "subsets": {"dw": dw_subset(shared_data, samples=2), "dw_etm30": simulated}}
    build_las(write_manifest(doc), tmp_path / "las", progress=False)
    card = dataset_card(LASStore.open(tmp_path / "las"))
    assert "* **8 patches** in 2 subsets" in card
    assert "* **1 place** (scene centres more than 25 km apart)" in card  # both windows of one 15 km scene
    assert "* **1 sensor**: sentinel2_l1c; **1 simulated**: landsat7 (from sentinel2_l1c)" in card
    assert "* **1 label product** (one legend each): dynamic_world (weak, 2 subsets)" in card
    assert "* **9 class names** over those legends" in card
    assert "| dw_etm30 | landsat7 (simulated from sentinel2_l1c) | 6 | 32 | 30 |" in card
    assert "### dynamic_world (dw, dw_etm30)" in card  # the class histogram adds both subsets up


def test_places_merge_scene_centres_closer_than_the_radius():
    brandenburg, nearby, denmark = (12.6, 52.49), (12.8, 52.5), (12.7, 55.5)
    assert count_places([brandenburg, nearby, denmark]) == 2
    assert count_places([]) == 0
