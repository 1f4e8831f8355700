"""The scene mapper runs a saved LandSegmenter model end to end on a real scene."""
import hashlib
import json

import rasterio
import torch

from landsegmenter.cli import main
from landsegmenter.model.io import WEIGHTS_FILE, save_model
from landsegmenter.model.presets import build_model


def test_map_with_a_saved_tiny_model(s2_scene, tmp_path):
    torch.manual_seed(0)
    model_dir = tmp_path / "tiny-model"
    save_model(build_model("tiny"), model_dir)
    out = tmp_path / "out"
    args = ["map", str(s2_scene), "--classes", "water,trees,crops,built area", "--model", str(model_dir),
            "--bands", "B02,B03,B04,B08,B11,B12", "--tile-size", "256", "-o", str(out), "--quiet"]
    assert main(args) == 0
    with rasterio.open(out / "classes.tif") as src:
        classes = src.read(1)
    assert set(classes.ravel().tolist()) <= {0, 1, 2, 3, 255}
    run = json.loads((out / "run.json").read_text())
    assert run["bands"] == ["B02", "B03", "B04", "B08", "B11", "B12"] and run["model"] != "spectral-rule-v2"
    item = json.loads((out / "item.json").read_text())
    weights = hashlib.sha256((model_dir / WEIGHTS_FILE).read_bytes()).hexdigest()
    assert item["properties"]["landseg:model_sha256"] == weights
    assert item["properties"]["landseg:model"] == run["model"] and run["model"].endswith(weights[:16])


def test_fusion_switch_and_reflectance_model(s2_scene, tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model("tiny", knowledge=True)
    model.normalisation = "reflectance"
    model_dir = save_model(model, tmp_path / "tiny-reflectance")
    common = ["--classes", "water,trees,crops,built area", "--model", str(model_dir),
              "--bands", "B02,B03,B04,B08,B11,B12", "--tile-size", "256", "--quiet", "--no-preview"]
    maps = {}
    for mode in ("off", "on"):
        out = tmp_path / mode
        assert main(["map", str(s2_scene), *common, "--fusion", mode, "-o", str(out)]) == 0
        run = json.loads((out / "run.json").read_text())
        assert run["fusion"] == {"similarity": mode == "on", "knowledge": mode == "on"}
        with rasterio.open(out / "classes.tif") as src:
            maps[mode] = src.read(1)
    assert (maps["off"] != maps["on"]).mean() > 0.01
    # DN statistics cannot give the expert reflectance: it is switched off, and the user is told
    out = tmp_path / "dn"
    assert main(["map", str(s2_scene), *common, "--fusion", "on", "--normalise", "sensor", "-o", str(out)]) == 0
    assert "spectral-knowledge expert needs reflectance inputs" in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["fusion"]["knowledge"] is False


def test_fusion_switch_needs_a_model_with_fusion(s2_scene, tmp_path, capsys):
    args = ["map", str(s2_scene), "--classes", "water,trees", "--model", "spectral-rule", "--fusion", "off",
            "-o", str(tmp_path / "out"), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["landseg: error: model spectral-rule has no fusion to switch"]
    assert not (tmp_path / "out" / "classes.tif").exists()
