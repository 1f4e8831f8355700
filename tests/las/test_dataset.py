"""The PyTorch side: items, normalisation, collation of mixed subsets, grouped batches, workers."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
import yaml
from rasterio.windows import Window
from torch.utils.data import DataLoader

from landsegmenter.data.las_dataset import IGNORE_INDEX, LASDataset, collate_las
from landsegmenter.data.samplers import GroupedBatchSampler
from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import get_sensor
from landsegmenter.las import build_las

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


@pytest.fixture(scope="module")
def store(shared_data, tmp_path_factory, dw_subset):
    """Three subsets: S2 4 bands / 64 px / Dynamic World, OSM 13 bands / 128 px, S1 2 bands / 120 px."""
    root = tmp_path_factory.mktemp("las")
    folder = shared_data / "s2_t33uuu_20170216"
    osm = {
        "imagery": {"sensor": "sentinel2_l1c"},
        "label": {"legend": str(folder / "osm_landuse_label.legend.json"), "taxonomy": "osm_landuse"},
        "sampling": {"patch_size": 128, "samples_per_scene": 3, "min_labelled_fraction": 0.3},
        "scenes": [
            {
                "id": "t33uuu",
                "image": str(folder / "s2_l1c_13band_10m.tif"),
                "label": str(folder / "osm_landuse_label.tif"),
            }
        ],
    }
    s1 = {
        "imagery": {"sensor": "sentinel1_grd", "gsd": 10},
        "label": {"legend": "dynamic_world"},
        "sampling": {"patch_size": 120, "stride": 60, "samples_per_scene": 1},
        "scenes_csv": {
            "path": str(shared_data / "bigearthnet_v2_mock" / "labels.csv"),
            "id": "patch_id",
            "image": "s1_file",
            "label": "dw_label_file",
            "split": "split",
            "split_map": {"validation": "val"},
        },
    }
    lowq = dw_subset(shared_data, samples=1)
    lowq["label"]["quality"] = "low"
    doc = {"name": "mixed", "subsets": {"dw": dw_subset(shared_data, samples=4), "osm": osm, "s1": s1, "lowq": lowq}}
    manifest = root / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(doc))
    build_las(manifest, root / "store", progress=False)
    return root / "store"


def test_items_are_normalised_with_the_sensor_statistics(store, shared_data):
    data = LASDataset(store, subsets=["dw"])
    assert len(data) == 4  # the train split: 4 patches of the western scene
    item = data[0]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (4, 64, 64)
    assert item["label"].dtype == torch.int64 and item["label"].shape == (64, 64)
    assert item["class_names"][0] == "water" and len(item["class_names"]) == 9
    assert torch.allclose(item["wavelengths"], torch.tensor([0.49, 0.56, 0.665, 0.842]))
    meta = data.metadata(0)
    assert item["sample_id"] == meta["sample_id"] and item["split"] == "train"
    sensor = get_sensor("sentinel2_l1c")
    bands = sensor.select(["B02", "B03", "B04", "B08"])
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif") as src:
        dn = src.read([2, 3, 4, 8], window=Window(meta["col"], meta["row"], 64, 64)).astype(np.float64)
    mean = np.array([b.mean for b in bands])[:, None, None]
    std = np.array([b.std for b in bands])[:, None, None]
    assert np.allclose(item["image"].numpy(), (dn * 1e-4 - mean) / std, atol=1e-4)


def test_reflectance_normalisation_is_global_for_reflective_bands_only(store, shared_data):
    from landsegmenter.geo.reflectance import reflectance_stats

    data = LASDataset(store, subsets=["dw"], normalisation="reflectance")
    item, meta = data[0], data.metadata(0)
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif") as src:
        dn = src.read([2, 3, 4, 8], window=Window(meta["col"], meta["row"], 64, 64)).astype(np.float64)
    mean, std = (v[:, None, None] for v in reflectance_stats([0.49, 0.56, 0.665, 0.842]))
    assert np.allclose(item["image"].numpy(), (dn * 1e-4 - mean) / std, atol=1e-4)
    radar = LASDataset(store, subsets=["s1"], normalisation="reflectance")[0]["image"]
    assert torch.equal(radar, LASDataset(store, subsets=["s1"])[0]["image"])  # dB keeps its statistics
    with pytest.raises(LandSegError, match="auto or reflectance"):
        LASDataset(store, subsets=["dw"], normalisation="scene")


def test_splits_and_low_quality_filtering(store):
    everything = LASDataset(store, splits=("train", "val", "test"))
    assert "lowq" not in everything.subsets
    assert len(LASDataset(store, splits=("train", "val", "test"), include_low_quality=True)) == len(everything) + 2
    val = LASDataset(store, splits=("val",))
    assert {val[i]["split"] for i in range(len(val))} == {"val"}
    assert sorted(val.subsets) == ["dw", "s1"]
    with pytest.raises(LandSegError, match="unknown split"):
        LASDataset(store, splits=("validation",))


def test_collate_pads_bands_sizes_and_classes(store):
    data = LASDataset(store)
    first = {
        name: next(i for i in range(len(data)) if data.group_ids[i] == data.subsets.index(name))
        for name in ("dw", "osm", "s1")
    }
    batch = collate_las([data[first["dw"]], data[first["osm"]], data[first["s1"]]])
    assert batch["image"].shape == (3, 13, 128, 128)
    assert batch["band_mask"].sum(dim=1).tolist() == [4, 13, 2]
    assert (
        batch["wavelengths"][2, :2].tolist() == pytest.approx([5.405, 5.405])
        and batch["wavelengths"][2, 2:].eq(0).all()
    )
    assert batch["class_mask"].sum(dim=1).tolist() == [9, 8, 9]
    assert batch["class_names"][1][0] == "farm"
    assert (batch["label"][0, 64:, :] == IGNORE_INDEX).all() and (batch["label"][2, 120:, :] == IGNORE_INDEX).all()
    assert (batch["image"][0, 4:] == 0).all() and (batch["image"][0, :, 64:] == 0).all()
    labels = batch["label"][batch["label"] != IGNORE_INDEX]
    assert labels.max() < 9


def test_grouped_batches_and_worker_loading(store):
    data = LASDataset(store)
    sampler = GroupedBatchSampler(data.group_ids, batch_size=3, seed=1)
    loader = DataLoader(data, batch_sampler=sampler, collate_fn=collate_las, num_workers=2)
    seen = []
    for batch in loader:
        assert len(set(batch["subset"])) == 1
        assert batch["band_mask"].all()  # one subset per batch: nothing padded
        seen += batch["sample_id"]
    assert sorted(seen) == sorted(data[i]["sample_id"] for i in range(len(data)))
    assert len(sampler) == len(list(sampler))
    first = list(GroupedBatchSampler(data.group_ids, 3, seed=1))
    assert first == list(GroupedBatchSampler(data.group_ids, 3, seed=1))
    sampler.set_epoch(1)
    assert list(sampler) != first
