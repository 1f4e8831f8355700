"""`landseg evaluate` on a real scene against its Dynamic World reference."""
import json

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
