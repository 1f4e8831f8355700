"""Building LAS stores from real imagery and products: content, resume, bad patches, modalities."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.las import build as build_module
from landsegmenter.las import build_las
from landsegmenter.las.store import LASStore, SubsetStore

BEN = "bigearthnet_v2_mock"
pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def _ids(sub: SubsetStore) -> list[str]:
    return [sub.metadata(i)["sample_id"] for i in range(sub.count)]


def test_build_stores_the_source_pixels_with_their_georeference(shared_data, tmp_path, write_manifest, dw_subset):
    manifest = write_manifest({"name": "t", "subsets": {"dw": dw_subset(shared_data, samples=3)}})
    report = build_las(manifest, tmp_path / "las", progress=False)
    assert report.written == 6 and report.subsets[0].status == "built"
    sub = LASStore.open(tmp_path / "las").subset("dw")
    folder = shared_data / "s2_t33uuu_20170216"
    with (
        rasterio.open(folder / "s2_l1c_13band_10m.tif") as img,
        rasterio.open(folder / "dynamic_world_label.tif") as lab,
    ):
        for i in range(sub.count):
            meta = sub.metadata(i)
            window = Window(meta["col"], meta["row"], 64, 64)
            image, valid, label = sub.read(i)
            assert np.array_equal(image, img.read([2, 3, 4, 8], window=window))
            assert np.array_equal(label, lab.read(1, window=window))
            x0, y0 = img.transform @ (meta["col"], meta["row"])
            assert meta["transform"] == [10.0, 0.0, x0, 0.0, -10.0, y0]
            assert "UTM zone 33N" in meta["crs_wkt"]
            assert meta["split"] == ("train" if meta["scene"] == "west" else "val")
            assert (meta["col"] < 768) if meta["scene"] == "west" else (meta["col"] >= 1152)
            assert meta["wavelengths"] == [0.49, 0.56, 0.665, 0.842]
            assert meta["time_gap_days"] == 0 and meta["label_source"]["kind"] == "weak"


def test_rebuild_resumes_and_keeps_finished_work(shared_data, tmp_path, write_manifest, dw_subset):
    manifest = write_manifest({"name": "t", "subsets": {"dw": dw_subset(shared_data, samples=3)}})
    build_las(manifest, tmp_path / "clean", progress=False)

    again = build_las(manifest, tmp_path / "clean", progress=False)
    assert again.written == 0 and again.subsets[0].status == "already complete"


def test_interrupted_build_resumes_mid_scene(shared_data, tmp_path, write_manifest, dw_subset, monkeypatch):
    manifest = write_manifest({"name": "t", "subsets": {"dw": dw_subset(shared_data, samples=3)}})
    build_las(manifest, tmp_path / "clean", progress=False)
    clean = _ids(LASStore.open(tmp_path / "clean").subset("dw"))

    monkeypatch.setattr(build_module, "BATCH", 1)
    original = SubsetStore.append
    calls = {"n": 0}

    def failing_append(self, samples):
        calls["n"] += 1
        if calls["n"] == 5:  # scene 1 done (3 samples), scene 2 has one committed sample
            raise KeyboardInterrupt
        return original(self, samples)

    monkeypatch.setattr(SubsetStore, "append", failing_append)
    with pytest.raises(KeyboardInterrupt):
        build_las(manifest, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(SubsetStore, "append", original)
    partial = LASStore.open(tmp_path / "resumed").subset("dw")
    assert partial.count == 4 and not partial.attrs["complete"]

    report = build_las(manifest, tmp_path / "resumed", progress=False).subsets[0]
    assert (report.scenes_resumed, report.kept, report.written) == (1, 1, 2)
    assert _ids(LASStore.open(tmp_path / "resumed").subset("dw")) == clean


def test_changed_definition_needs_overwrite(shared_data, tmp_path, write_manifest, dw_subset):
    build_las(write_manifest({"subsets": {"dw": dw_subset(shared_data, samples=1)}}), tmp_path / "las", progress=False)
    changed = write_manifest({"subsets": {"dw": dw_subset(shared_data, samples=2)}}, name="changed.yaml")
    with pytest.raises(LandSegError, match="built from a different definition; rebuild with --overwrite"):
        build_las(changed, tmp_path / "las", progress=False)
    assert build_las(changed, tmp_path / "las", overwrite=True, progress=False).written == 4


def test_nodata_patches_are_skipped_and_counted(shared_data, tmp_path, write_manifest, dw_subset):
    folder = shared_data / "s2_t33uuu_20170216"
    with rasterio.open(folder / "s2_l1c_13band_10m.tif") as src:
        data = src.read([2, 3, 4, 8])
        profile = src.profile
    data[:, :, :384] = 0  # the western half of the west window has no data (nodata = 0)
    profile.update(count=4)
    holed = tmp_path / "holed.tif"
    with rasterio.open(holed, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = ("B02", "B03", "B04", "B08")
    subset = dw_subset(shared_data, samples=40, strategy="grid")
    subset["imagery"]["bands"] = None
    subset["scenes"] = [
        {
            "id": "holed",
            "image": str(holed),
            "label": str(folder / "dynamic_world_label.tif"),
            "window": [0, 0, 768, 768],
        }
    ]
    report = build_las(write_manifest({"subsets": {"dw": subset}}), tmp_path / "las", progress=False).subsets[0]
    assert report.skipped["nodata"] >= 30  # 6 columns x 12 rows of patches lie in the hole
    sub = LASStore.open(tmp_path / "las").subset("dw")
    assert sub.attrs["stats"]["skipped"]["nodata"] == report.skipped["nodata"]
    assert all(sub.metadata(i)["col"] >= 384 - 64 * 0.1 for i in range(sub.count))
    assert sub.array("valid_fraction")[: sub.count].min() >= 0.9


def test_clouds_are_masked_and_cloudy_patches_counted(shared_data, tmp_path, write_manifest):
    folder = shared_data / "s2_betsiboka_madagascar"
    doc = {
        "subsets": {
            "betsiboka": {
                "imagery": {"sensor": "sentinel2_l1c", "gsd": 100},
                "label": {"legend": "dynamic_world", "quality": "low"},
                "cloud_mask": {"values": [1]},
                "sampling": {"patch_size": 64, "samples_per_scene": 6, "max_cloud_fraction": 0.3},
                "scenes": [
                    {
                        "id": "b",
                        "image": str(folder / "s2_l1c_13band.tif"),
                        "label": str(folder / "dynamic_world_label.tif"),
                        "cloud_mask": str(folder / "s2cloudless_cloud_mask.tif"),
                        "location": [46.3, -15.7],
                    }
                ],
            }
        }
    }
    report = build_las(write_manifest(doc), tmp_path / "las", progress=False).subsets[0]
    assert report.rejected["cloud"] > 10 and report.written == 6
    sub = LASStore.open(tmp_path / "las").subset("betsiboka")
    with rasterio.open(folder / "s2cloudless_cloud_mask.tif") as src:
        cloud = src.read(1) == 1
    for i in range(sub.count):
        meta = sub.metadata(i)
        patch_cloud = cloud[meta["row"] : meta["row"] + 64, meta["col"] : meta["col"] + 64]
        assert patch_cloud.mean() <= 0.3
        assert (sub.read(i)[2][patch_cloud] == 255).all()
        assert meta["transform"] is None and meta["crs_wkt"] is None and meta["center_lonlat"] == [46.3, -15.7]
    assert sub.info["label_source"]["quality"] == "low"


def test_sentinel1_and_sentinel2_share_the_dynamic_world_labels(shared_data, tmp_path, write_manifest):
    table = {
        "path": str(shared_data / BEN / "labels.csv"),
        "id": "patch_id",
        "label": "dw_label_file",
        "label_date": "s2_date",
        "split": "split",
        "split_map": {"validation": "val"},
    }
    sampling = {"patch_size": 120, "stride": 60, "samples_per_scene": 1, "min_labelled_fraction": 0.9}
    label = {"legend": "dynamic_world"}
    doc = {
        "subsets": {
            "s2": {
                "imagery": {"sensor": "sentinel2_l2a", "gsd": 10},
                "label": label,
                "sampling": sampling,
                "scenes_csv": {**table, "image": "s2_file", "date": "s2_date"},
            },
            "s1": {
                "imagery": {"sensor": "sentinel1_grd", "gsd": 10},
                "label": label,
                "sampling": sampling,
                "scenes_csv": {**table, "image": "s1_file", "date": "s1_name"},
            },
        }
    }
    build_las(write_manifest(doc), tmp_path / "las", progress=False)
    store = LASStore.open(tmp_path / "las")
    s1, s2 = store.subset("s1"), store.subset("s2")
    assert s1.count == s2.count == 24
    assert s1.info["bands"]["names"] == ["VV", "VH"] and s1.info["bands"]["dtype"] == "float32"
    assert len(s2.info["bands"]["names"]) == 12
    for i in range(s1.count):
        assert np.array_equal(s1.read(i)[2], s2.read(i)[2])
    first = s1.metadata(0)
    assert first["time_gap_days"] == 1 and first["transform"] is None
    with rasterio.open(shared_data / BEN / "s1" / "S1B_IW_GRDH_1SDV_20170612T165809_33UUP_37_88.tif") as src:
        assert np.allclose(s1.read(0)[0], src.read())  # dB values kept as float32
    splits = s2.array("split")[:24]
    assert sorted(np.bincount(splits).tolist()) == [8, 8, 8]


def test_resampled_gsd_averages_the_imagery(shared_data, tmp_path, write_manifest, dw_subset):
    subset = dw_subset(shared_data, samples=2, gsd=20)
    subset["scenes"] = subset["scenes"][:1]
    build_las(write_manifest({"subsets": {"dw": subset}}), tmp_path / "las", progress=False)
    sub = LASStore.open(tmp_path / "las").subset("dw")
    meta = sub.metadata(0)
    assert meta["gsd_m"] == 20 and meta["transform"][0] == 20.0
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif") as src:
        native = src.read([2, 3, 4, 8], window=Window(meta["col"] * 2, meta["row"] * 2, 128, 128)).astype(np.float64)
    expected = native.reshape(4, 64, 2, 64, 2).mean(axis=(2, 4)) * 1e-4
    image = sub.read(0)[0]
    assert image.dtype == np.float32 and np.allclose(image, expected, atol=1e-6)


def test_polygon_labels_build(shared_data, tmp_path, write_manifest):
    folder = shared_data / "landsat5_tm_19880814_para"
    doc = {
        "subsets": {
            "polygons": {
                "imagery": {"sensor": "landsat5_dn", "date": "1988-08-14"},
                "label": {
                    "legend": str(folder / "training_polygons_label.legend.json"),
                    "taxonomy": "lt5_polygons",
                    "kind": "precise",
                    "field": "class",
                },
                "sampling": {"patch_size": 64, "stride": 16, "samples_per_scene": 5, "min_labelled_fraction": 0.02},
                "scenes": [
                    {
                        "id": "lt5",
                        "image": str(folder / "landsat5_tm_7band_30m.tif"),
                        "label": str(folder / "training_polygons.geojson"),
                    }
                ],
            }
        }
    }
    report = build_las(write_manifest(doc), tmp_path / "las", progress=False).subsets[0]
    assert report.written == 5 and not report.unknown_codes
    sub = LASStore.open(tmp_path / "las").subset("polygons")
    assert sub.info["taxonomy"]["key"] == "lt5_polygons" and sub.info["label_source"]["kind"] == "precise"
    counts = sub.array("class_counts")[:5].sum(axis=0)
    assert (counts > 0).sum() == 4  # balanced sampling reaches every class


def test_unknown_codes_are_reported_by_the_build(shared_data, tmp_path, write_manifest, dw_subset):
    subset = dw_subset(shared_data, samples=2)
    dw = [
        {"code": c, "name": n, "color": "#000000"}
        for c, n in enumerate(
            ["water", "trees", "grass", "flooded vegetation", "crops", "shrub and scrub", "built", "bare"]
        )
    ]
    subset["label"]["legend"] = {"key": "dw_without_snow", "nodata": [255], "classes": dw}
    subset["sampling"]["min_labelled_fraction"] = 0.5
    report = build_las(write_manifest({"subsets": {"dw": subset}}), tmp_path / "las", progress=False).subsets[0]
    assert report.unknown_codes["8"] > 1000  # clouds labelled snow and ice by Dynamic World
    assert "label codes not in the legend (pixels): 8 " in report.line()
    stats = LASStore.open(tmp_path / "las").subset("dw").attrs["stats"]
    assert stats["unknown_codes"] == {"8": report.unknown_codes["8"]}


def test_land_only_needs_water_classes(shared_data, tmp_path, write_manifest):
    folder = shared_data / "landsat5_tm_19880814_para"
    doc = {
        "subsets": {
            "p": {
                "imagery": {"sensor": "landsat5_dn"},
                "label": {"legend": str(folder / "training_polygons_label.legend.json"), "taxonomy": "lt5"},
                "sampling": {
                    "patch_size": 64,
                    "land_only": True,
                    "water_classes": ["forest"],
                    "min_labelled_fraction": 0.0,
                },
                "scenes": [
                    {
                        "image": str(folder / "landsat5_tm_7band_30m.tif"),
                        "label": str(folder / "training_polygons_label.tif"),
                    }
                ],
            }
        }
    }
    report = build_las(write_manifest(doc), tmp_path / "a", progress=False).subsets[0]
    assert report.rejected["water"] > 0  # 'forest' declared as the class to avoid
    doc["subsets"]["p"]["sampling"]["water_classes"] = None
    doc["subsets"]["p"]["label"]["legend"] = str(
        shared_data / "s2_betsiboka_madagascar" / "s2cloudless_cloud_mask.legend.json"
    )
    with pytest.raises(LandSegError, match="land_only needs water classes"):
        build_las(write_manifest(doc, name="b.yaml"), tmp_path / "b", progress=False)
