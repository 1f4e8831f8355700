"""The Zarr store: round trips, mixed subsets, duplicate ids, interrupted batches."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.las.store import LASStore, Sample


def _patches(shared_data, n: int, size: int = 32) -> list[tuple[np.ndarray, np.ndarray]]:
    folder = shared_data / "s2_t33uuu_20170216"
    with (
        rasterio.open(folder / "s2_l1c_13band_10m.tif") as img,
        rasterio.open(folder / "dynamic_world_label.tif") as lab,
    ):
        return [
            (img.read(window=Window(i * size, 0, size, size)), lab.read(1, window=Window(i * size, 0, size, size)))
            for i in range(n)
        ]


def _sample(scene: str, row: int, col: int, image: np.ndarray, label: np.ndarray, k: int = 9) -> Sample:
    return Sample(
        scene_id=scene,
        row=row,
        col=col,
        split="train",
        image=image,
        valid=np.ones(label.shape, bool),
        label=label,
        transform=(10.0, 0.0, 330000.0 + col * 10, 0.0, -10.0, 5822040.0 - row * 10),
        center_lonlat=(12.5, 52.5),
        class_counts=np.bincount(label.ravel(), minlength=k)[:k],
    )


def _new_subset(store: LASStore, name: str = "s2", shape=(13, 32, 32), dtype="uint16", k: int = 9):
    info = {
        "sensor": "sentinel2_l1c",
        "bands": {"names": [f"b{i}" for i in range(shape[0])], "wavelengths": [0.5] * shape[0]},
        "taxonomy": {"key": "dynamic_world", "class_names": [f"c{i}" for i in range(k)]},
        "label_source": {"kind": "weak", "product": "test", "quality": "ok"},
        "gsd_m": 10.0,
    }
    sub = store.create_subset(name, info, shape, dtype, k)
    sub.scene_index({"id": "scene", "crs_wkt": "EPSG:32633", "date": "2017-02-16"})
    return sub


def test_round_trip_and_metadata(shared_data, tmp_path):
    store = LASStore.create_or_open(tmp_path / "las", "t")
    sub = _new_subset(store)
    patches = _patches(shared_data, 3)
    sub.append([_sample("scene", 0, 32 * i, image, label) for i, (image, label) in enumerate(patches)])
    reopened = LASStore.open(tmp_path / "las").subset("s2")
    assert reopened.count == 3
    for i, (image, label) in enumerate(patches):
        got_image, got_valid, got_label = reopened.read(i)
        assert got_image.dtype == np.uint16 and np.array_equal(got_image, image)
        assert np.array_equal(got_label, label) and got_valid.all()
    meta = reopened.metadata(2)
    assert meta["sample_id"] == "s2/scene/r0c64"
    assert meta["transform"] == [10.0, 0.0, 330640.0, 0.0, -10.0, 5822040.0]
    assert meta["crs_wkt"] == "EPSG:32633" and meta["date"] == "2017-02-16" and meta["split"] == "train"
    assert reopened.array("image").chunks == (1, 13, 32, 32)  # one chunk per sample


def test_subsets_with_different_bands_sizes_and_taxonomies(shared_data, tmp_path):
    store = LASStore.create_or_open(tmp_path / "las", "t")
    ((image, label),) = _patches(shared_data, 1, size=48)
    a = _new_subset(store, "a", (13, 48, 48), "uint16", 9)
    b = _new_subset(store, "b", (2, 24, 24), "float32", 4)
    a.append([_sample("scene", 0, 0, image, label)])
    small = np.minimum(label[:24, :24], 3)
    b.append([_sample("scene", 0, 0, image[:2, :24, :24].astype(np.float32) / 7, small, k=4)])
    store = LASStore.open(tmp_path / "las")
    assert store.subsets == ["a", "b"]
    assert store.subset("a").read(0)[0].shape == (13, 48, 48)
    b_image = store.subset("b").read(0)[0]
    assert b_image.dtype == np.float32 and b_image.shape == (2, 24, 24)
    assert store.subset("b").class_names == ["c0", "c1", "c2", "c3"]


def test_duplicate_sample_ids_are_refused(shared_data, tmp_path):
    store = LASStore.create_or_open(tmp_path / "las", "t")
    sub = _new_subset(store)
    ((image, label),) = _patches(shared_data, 1)
    sub.append([_sample("scene", 0, 0, image, label)])
    with pytest.raises(LandSegError, match="duplicate sample id 's2/scene/r0c0'"):
        sub.append([_sample("scene", 0, 0, image, label)])
    with pytest.raises(LandSegError, match="duplicate sample id 's2/scene/r5c5'"):
        sub.append([_sample("scene", 5, 5, image, label), _sample("scene", 5, 5, image, label)])
    assert sub.count == 1


def test_uncommitted_rows_are_truncated(shared_data, tmp_path):
    store = LASStore.create_or_open(tmp_path / "las", "t")
    sub = _new_subset(store)
    patches = _patches(shared_data, 2)
    sub.append([_sample("scene", 0, 0, *patches[0])])
    image = sub.array("image")
    image.resize((2,) + image.shape[1:])  # a batch written but never committed (killed before 'count')
    image[1] = patches[1][0]
    reopened = LASStore.open(tmp_path / "las", mode="a").subset("s2")
    reopened.truncate_to_committed()
    assert reopened.array("image").shape[0] == 1
    reopened.append([_sample("scene", 0, 32, *patches[1])])
    assert reopened.count == 2 and np.array_equal(reopened.read(1)[0], patches[1][0])


def test_not_a_store(tmp_path):
    with pytest.raises(LandSegError, match="is not a LAS store"):
        LASStore.open(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(LandSegError, match="exists and is not a LAS store"):
        LASStore.create_or_open(tmp_path / "other", "t")
    with pytest.raises(LandSegError, match="is not a LAS store"):
        LASStore.create_or_open(tmp_path / "other", "t", overwrite=True)
    assert (tmp_path / "other" / "file.txt").is_file()  # never deleted
