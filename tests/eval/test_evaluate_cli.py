"""`landseg evaluate` on a real scene against its Dynamic World reference."""
import json

import numpy as np
import rasterio

from landsegmenter.cli import main


def test_evaluate_scene_against_reference_writes_reports(shared_data, tmp_path, capsys):
    folder = shared_data / "s2_t33uuu_20170216"
    out = tmp_path / "rep"
    args = ["evaluate", "--model", "spectral-rule", "--scene", str(folder / "s2_l1c_13band_10m.tif"),
            "--reference", str(folder / "dynamic_world_label.tif"), "--reference-legend", "dynamic_world",
            "-o", str(out), "--quiet"]
    assert main(args) == 0
    payload = json.loads((out / "report.json").read_text())
    assert set(payload) == {"model"}
    rep = payload["model"]
    assert rep["class_names"][0] == "water" and 0 < rep["miou"] < 1
    assert (out / "report.md").exists() and (out / "confusion_model.png").exists()
    assert main(args) == 2  # existing report, no --overwrite
    assert "already holds a report" in capsys.readouterr().err


def test_reference_legend_from_a_file(shared_data, tmp_path, capsys):
    folder = shared_data / "s2_t33uuu_20170216"
    base = ["evaluate", "--model", "spectral-rule", "--scene", str(folder / "s2_l1c_13band_10m.tif"),
            "--reference", str(folder / "dynamic_world_label.tif"), "--quiet"]
    out = tmp_path / "rep"
    legend = folder / "dynamic_world_label.legend.json"
    assert main([*base, "--reference-legend", str(legend), "-o", str(out)]) == 0
    by_file = json.loads((out / "report.json").read_text())["model"]
    assert main([*base, "--reference-legend", "dynamic_world", "-o", str(tmp_path / "reg")]) == 0
    by_key = json.loads((tmp_path / "reg" / "report.json").read_text())["model"]
    assert by_file["matrix"] == by_key["matrix"] and by_file["class_names"] == by_key["class_names"]
    capsys.readouterr()
    assert main([*base, "--reference-legend", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == f"landseg: error: legend file not found: {tmp_path / 'missing.yaml'}"
    assert not (tmp_path / "x").exists()


def _evaluate(shared_data, reference, legend, out, scene=None):
    scene = scene or shared_data / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif"
    return main(["evaluate", "--model", "spectral-rule", "--scene", str(scene), "--reference", str(reference),
                 "--reference-legend", legend, "-o", str(out), "--quiet"])


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("landseg: error: "), err
    return err


def test_a_reference_that_does_not_overlap_the_scene_is_refused_before_mapping(shared_data, tmp_path, capsys):
    sao_tome = shared_data / "worldcover_n00e006" / "esa_worldcover_2021_v200_n00e006_saotome.tif"
    out = tmp_path / "rep"
    assert _evaluate(shared_data, sao_tome, "esa_worldcover_2021", out) == 2
    assert "does not overlap the scene" in _one_error_line(capsys)
    assert not out.exists(), "no map was made"


def test_a_reference_covering_little_of_the_scene_warns(shared_data, tmp_path, capsys):
    reference = _sparse_reference(shared_data, tmp_path, np.s_[:16, :16])
    assert _evaluate(shared_data, reference, "dynamic_world", tmp_path / "rep") == 0
    err = capsys.readouterr().err.strip()
    assert err.startswith("landseg: warning: only 0.02% of the scene has pixels of the reference"), err
    assert len(err.splitlines()) == 1, err


def test_no_valid_pixels_in_common_is_refused(shared_data, tmp_path, capsys):
    """The reference has data only where the scene has none: the overlap is seen once the scene is mapped."""
    folder = shared_data / "s2_t33uuu_20170216"
    with rasterio.open(folder / "s2_l1c_13band_10m.tif") as src:
        profile, data, names = src.profile, src.read(), src.descriptions
    data[:, :64, :] = 0  # the scene's nodata
    scene = tmp_path / "scene.tif"
    with rasterio.open(scene, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = names
    reference = _sparse_reference(shared_data, tmp_path, np.s_[:64, :])
    assert _evaluate(shared_data, reference, "dynamic_world", tmp_path / "rep", scene=scene) == 2
    assert "no valid pixels in common" in _one_error_line(capsys)
    assert not (tmp_path / "rep" / "report.json").exists()


def _sparse_reference(shared_data, tmp_path, window):
    """The scene's Dynamic World label with nodata (255) outside ``window``."""
    with rasterio.open(shared_data / "s2_t33uuu_20170216" / "dynamic_world_label.tif") as label:
        profile, data = label.profile, label.read(1)
    kept = np.full_like(data, 255)
    kept[window] = data[window]
    path = tmp_path / "sparse_reference.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(kept, 1)
    return path
