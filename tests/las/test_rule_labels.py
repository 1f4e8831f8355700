"""Weak labels from the spectral-index rule: classes of the legend, nodata where the image has none."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from landsegmenter.geo.raster import Scene
from landsegmenter.las import build_las
from landsegmenter.las.rule_labels import RULE_CLASSES, RULE_PRODUCT, write_rule_labels
from landsegmenter.las.store import LASStore
from landsegmenter.taxonomy.legends import load_legend_file

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
PORTO = "s2_l2a_porto_trombetas"
NO_DATA_ROWS = 20


@pytest.fixture()
def porto_with_gap(shared_data: Path, tmp_path: Path) -> Path:
    """The real Porto Trombetas L2A image with its first rows set to a declared nodata value (0)."""
    with rasterio.open(shared_data / PORTO / "s2_l2a_12band_10m.tif") as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    data[:, :NO_DATA_ROWS] = 0
    profile.update(nodata=0)
    path = tmp_path / "porto_gap.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for index, name in enumerate(names, start=1):
            dst.set_band_description(index, name)
    return path


def test_rule_labels_use_the_legend_classes_and_follow_the_image_mask(porto_with_gap, tmp_path):
    out = tmp_path / "porto_rule_label.tif"
    with Scene([str(porto_with_gap)], sensor="sentinel2_l2a_pb04") as scene:
        write_rule_labels(scene, out)
        _, valid = scene.read(rasterio.windows.Window(0, 0, scene.width, scene.height))
    with rasterio.open(out) as src:
        labels = src.read(1)
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
    legend = load_legend_file(out.with_name("porto_rule_label.legend.json"))
    assert list(legend.names) == list(RULE_CLASSES) and 255 in legend.nodata
    assert set(np.unique(labels)) <= set(legend.codes) | {255}
    assert (labels[~valid] == 255).all() and not valid[:NO_DATA_ROWS].any()
    assert (labels[valid] != 255).mean() > 0.95  # only the rule's cloud concept leaves valid pixels unlabelled
    sidecar = json.loads(out.with_name("porto_rule_label.legend.json").read_text())
    assert sidecar["product"] == RULE_PRODUCT
    assert sum(c["pixel_count"] for c in sidecar["classes"]) == int((labels != 255).sum())


def test_cloud_mask_pixels_get_no_label(shared_data, tmp_path):
    folder = shared_data / "s2_betsiboka_madagascar"
    mask_path = folder / "s2cloudless_cloud_mask.tif"
    out = tmp_path / "betsiboka_rule_label.tif"
    with Scene([str(folder / "s2_l1c_13band.tif")], sensor="sentinel2_l1c") as scene:
        write_rule_labels(scene, out, cloud_mask=str(mask_path), cloud_values=(1,))
    with rasterio.open(out) as src, rasterio.open(mask_path) as mask:
        labels, cloudy = src.read(1), mask.read(1) == 1
    assert cloudy.any() and (labels[cloudy] == 255).all()
    assert (labels[~cloudy] != 255).any()


def test_the_builder_accepts_rule_labels_with_their_sidecar_legend(porto_with_gap, tmp_path, write_manifest):
    label = tmp_path / "porto_rule_label.tif"
    with Scene([str(porto_with_gap)], sensor="sentinel2_l2a_pb04") as scene:
        write_rule_labels(scene, label)
    subset = {
        "imagery": {"sensor": "sentinel2_l2a_pb04"},
        "label": {
            "legend": str(label.with_name("porto_rule_label.legend.json")),
            "taxonomy": "spectral_rule_v2",
            "product": RULE_PRODUCT,
        },
        "sampling": {"patch_size": 64, "stride": 32, "samples_per_scene": 3, "min_labelled_fraction": 0.9},
        "scenes": [{"id": "porto", "image": str(porto_with_gap), "label": str(label)}],
    }
    report = build_las(write_manifest({"name": "t", "subsets": {"rule": subset}}), tmp_path / "las", progress=False)
    assert report.written == 3 and not report.subsets[0].unknown_codes
    sub = LASStore.open(tmp_path / "las").subset("rule")
    assert sub.class_names == list(RULE_CLASSES)
    assert sub.info["label_source"] == {"kind": "weak", "product": RULE_PRODUCT, "quality": "ok"}
