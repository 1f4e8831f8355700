"""Comparing mapped class rasters with real reference products."""
import numpy as np
import pytest
import rasterio

from landsegmenter import map_scene
from landsegmenter.errors import LandSegError
from landsegmenter.eval.compare import compare_maps
from landsegmenter.eval.reports import write_report
from landsegmenter.taxonomy.legends import get_legend

DW = get_legend("dynamic_world")


@pytest.fixture(scope="module")
def dw_map(s2_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("dw") / "out"
    return map_scene(s2_scene, list(DW.names), out, model="spectral-rule", progress=False, preview=False)


def test_a_map_compared_with_itself_is_perfect(dw_map, tmp_path):
    with rasterio.open(dw_map.classes) as src:
        classes, profile = src.read(1), src.profile
    codes = np.array(DW.codes, np.uint8)[np.minimum(classes, len(DW.codes) - 1)]
    codes[classes == 255] = 255
    ref = tmp_path / "ref.tif"
    with rasterio.open(ref, "w", **(profile | {"driver": "GTiff"})) as dst:
        dst.write(codes, 1)
    r = compare_maps(dw_map.classes, ref, DW)
    assert r.overall_accuracy == 1.0 and r.kappa == pytest.approx(1.0) and not r.omitted_classes


def test_baseline_against_dynamic_world_reports_every_metric(dw_map, shared_data, tmp_path):
    ref = shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif"
    r = compare_maps(dw_map.classes, ref, DW)
    with rasterio.open(ref) as src:
        labels = src.read(1)
    with rasterio.open(dw_map.classes) as src:
        pred = src.read(1)
    valid = labels != 255  # nodata predictions count as errors
    assert r.overall_accuracy == pytest.approx((pred[valid] == labels[valid]).mean(), abs=1e-9)
    assert sum(r.reference_pixels.values()) == (labels != 255).sum()
    assert 0.0 < r.miou < 1.0
    write_report({"fusion_off": r}, tmp_path / "rep", "spectral rule vs Dynamic World")
    assert (tmp_path / "rep" / "report.md").read_text().count("|") > 50
    assert (tmp_path / "rep" / "confusion_fusion_off.png").read_bytes()[:4] == b"\x89PNG"


def test_reference_classes_must_be_mapped(dw_map, shared_data):
    with pytest.raises(LandSegError, match="not among the mapped classes"):
        compare_maps(dw_map.classes, shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif",
                     get_legend("nc_landsat7_strata"))
