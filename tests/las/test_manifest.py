"""Manifest parsing: strict keys, path expansion, scene sources and their errors."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from landsegmenter.errors import LandSegError
from landsegmenter.las.manifest import load_manifest, parse_date
from landsegmenter.las.rule_labels import RULE_PRODUCT
from landsegmenter.las.sources import resolve_scenes


def test_valid_manifest_resolves_paths_and_defaults(shared_data, write_manifest, monkeypatch):
    monkeypatch.setenv("LAS_TEST_DATA", str(shared_data))
    doc = {
        "name": "t",
        "paths": {"data": "${LAS_TEST_DATA}", "scene": "${data}/s2_t33uuu_20170216"},
        "defaults": {"sampling": {"seed": 5, "patch_size": 32}},
        "subsets": {
            "dw": {
                "imagery": {"sensor": "s2"},
                "label": {"legend": "dw", "date": "2017-02-16"},
                "sampling": {"patch_size": 64},
                "scenes": [{"image": "${scene}/s2_l1c_13band_10m.tif", "label": "${scene}/dynamic_world_label.tif"}],
            }
        },
    }
    manifest = load_manifest(write_manifest(doc))
    subset = manifest.subset("dw")
    assert subset.sampling.seed == 5 and subset.sampling.patch_size == 64  # subset overrides defaults
    scene = subset.scenes[0]
    assert scene.id == "s2_l1c_13band_10m"
    assert Path(scene.image[0]) == shared_data / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif"
    assert scene.label_date == dt.date(2017, 2, 16)


@pytest.mark.parametrize(
    "where, patch, message",
    [
        ("top", {"subsetz": {}}, "unknown key(s) 'subsetz'"),
        ("subset", {"imagry": {}}, "unknown key(s) 'imagry'"),
        ("sampling", {"patch_sise": 64}, "sampling: unknown key(s) 'patch_sise'"),
        ("label", {"legnd": "dw"}, "label: unknown key(s) 'legnd'"),
        ("scene", {"windw": [0, 0, 1, 1]}, "scenes[0]: unknown key(s) 'windw'"),
    ],
)
def test_unknown_keys_are_errors(shared_data, write_manifest, where, patch, message, dw_subset):
    subset = dw_subset(shared_data)
    doc = {"name": "t", "subsets": {"dw": subset}}
    if where == "top":
        doc.update(patch)
    elif where == "subset":
        subset.update(patch)
    elif where == "scene":
        subset["scenes"][0].update(patch)
    else:
        subset[where].update(patch)
    with pytest.raises(LandSegError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_manifest(write_manifest(doc))


def test_bad_values_are_one_line_errors(shared_data, write_manifest, dw_subset):
    subset = dw_subset(shared_data)
    subset["sampling"]["min_valid_fraction"] = 1.5
    with pytest.raises(LandSegError, match="min_valid_fraction: expected a fraction") as err:
        load_manifest(write_manifest({"subsets": {"dw": subset}}))
    assert "\n" not in str(err.value)
    subset = dw_subset(shared_data, stride=48)
    with pytest.raises(LandSegError, match="multiple of stride 48"):
        load_manifest(write_manifest({"subsets": {"dw": subset}}))


def test_duplicate_scene_ids_are_rejected(shared_data, write_manifest, dw_subset):
    subset = dw_subset(shared_data)
    subset["scenes"][1]["id"] = "west"
    with pytest.raises(LandSegError, match="duplicate scene id 'west'"):
        load_manifest(write_manifest({"subsets": {"dw": subset}}))


def test_missing_variable_is_reported(shared_data, write_manifest, monkeypatch, dw_subset):
    monkeypatch.delenv("LAS_SURELY_UNSET", raising=False)
    subset = dw_subset(shared_data)
    subset["scenes"][0]["image"] = "${LAS_SURELY_UNSET}/x.tif"
    with pytest.raises(LandSegError, match="LAS_SURELY_UNSET"):
        load_manifest(write_manifest({"subsets": {"dw": subset}}))


def test_scenes_from_csv_with_split_map_and_dates_in_names(shared_data, write_manifest):
    doc = {
        "subsets": {
            "s1": {
                "imagery": {"sensor": "sentinel1_grd", "gsd": 10},
                "label": {"legend": "dynamic_world"},
                "scenes_csv": {
                    "path": str(shared_data / "bigearthnet_v2_mock" / "labels.csv"),
                    "id": "patch_id",
                    "image": "s1_file",
                    "label": "dw_label_file",
                    "date": "s1_name",
                    "label_date": "s2_date",
                    "split": "split",
                    "split_map": {"validation": "val"},
                },
            }
        }
    }
    scenes = resolve_scenes(load_manifest(write_manifest(doc)).subset("s1"))
    assert len(scenes) == 24
    assert {s.split for s in scenes} == {"train", "val", "test"}
    first = scenes[0]
    assert Path(first.image[0]).is_file() and Path(first.label).is_file()
    assert first.date == dt.date(2017, 6, 12) and first.label_date == dt.date(2017, 6, 13)


def test_csv_with_unmapped_split_is_an_error(shared_data, write_manifest):
    doc = {
        "subsets": {
            "s2": {
                "imagery": {"sensor": "sentinel2_l2a", "gsd": 10},
                "label": {"legend": "dynamic_world"},
                "scenes_csv": {
                    "path": str(shared_data / "bigearthnet_v2_mock" / "labels.csv"),
                    "id": "patch_id",
                    "image": "s2_file",
                    "split": "split",
                },
            }
        }
    }
    with pytest.raises(LandSegError, match="'validation' is not train, val or test"):
        resolve_scenes(load_manifest(write_manifest(doc)).subset("s2"))


def test_parse_date_forms():
    assert parse_date("2017-02-16") == dt.date(2017, 2, 16)
    assert parse_date("20170613") == dt.date(2017, 6, 13)
    assert parse_date("S1B_IW_GRDH_1SDV_20170612T165809_33UUP_37_88") == dt.date(2017, 6, 12)
    with pytest.raises(LandSegError, match="cannot read 'soon' as a date"):
        parse_date("soon")


REPO = Path(__file__).resolve().parents[2]
HELD_OUT = {
    "s2_t33uuu_dw": {"t33uuu_east"},
    "s2_t33uuu_osm": {"t33uuu_east"},
    "s2_dsen2_dw": {"t33uub_zealand_scania"},
    "s2_aberystwyth_dw": {"aberystwyth_east"},
    "s2_t33uuu_dw_etm30": {"t33uuu_east"},
    "s2_t33uuu_dw_oli30": {"t33uuu_east"},
    "s2_t33uuu_osm_etm30": {"t33uuu_east"},
    "s2_dsen2_dw_etm30": {"t33uub_zealand_scania"},
    "s2_dsen2_dw_oli30": {"t33uub_zealand_scania"},
    "s2_aberystwyth_dw_etm30": {"aberystwyth_east"},
}


def test_las_wide_manifest_parses_and_keeps_las_mini_with_its_splits(shared_data, monkeypatch):
    monkeypatch.setenv("LANDSEG_DATA", str(shared_data))
    mini = load_manifest(REPO / "manifests" / "las-mini.yaml")
    wide = load_manifest(REPO / "manifests" / "las-wide.yaml")
    for subset in mini.subsets:
        assert wide.subset(subset.name).digest() == subset.digest()  # the same definition, so the same patches
    for name, held_out in HELD_OUT.items():
        assert {s.id for s in wide.subset(name).scenes if s.split == "val"} == held_out
    simulated = [s for s in wide.subsets if s.imagery.simulated_from]
    assert {s.imagery.sensor for s in simulated} == {"landsat7", "landsat8"} and len(simulated) == 9
    assert all(s.sampling.gsd == 30 and s.label.resampling == "mode" for s in simulated)
    rule = [s for s in wide.subsets if s.label.taxonomy == "spectral_rule_v2"]
    assert {s.name for s in rule} == {"landsat5_lsts_rule", "landsat7_lsts_rule", "landsat5_para_rule"}
    assert all(s.label.kind == "weak" and s.label.product == RULE_PRODUCT for s in rule)


def test_the_sensor_simulated_from_must_be_registered(shared_data, write_manifest, dw_subset):
    subset = dw_subset(shared_data)
    subset["imagery"]["simulated_from"] = "sentinel9"
    with pytest.raises(LandSegError, match="imagery: simulated_from: "):
        load_manifest(write_manifest({"name": "t", "subsets": {"dw": subset}}))


def test_las_wide_subsets_pair_each_image_with_the_label_of_its_legend(shared_data, monkeypatch):
    monkeypatch.setenv("LANDSEG_DATA", str(shared_data))
    wide = load_manifest(REPO / "manifests" / "las-wide.yaml")
    for subset in wide.subsets:
        if isinstance(subset.label.legend, str) and subset.label.legend.endswith(".legend.json"):
            stem = Path(subset.label.legend).name.removesuffix(".legend.json")
            if stem != "spectral_rule_v2":
                assert all(Path(s.label).stem == stem for s in subset.scenes), subset.name
