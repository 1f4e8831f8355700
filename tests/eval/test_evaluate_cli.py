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
