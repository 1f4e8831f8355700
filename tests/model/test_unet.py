"""The U-Net baseline: shapes, band and class checks, saving and loading, what the mapper sees."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene
from landsegmenter.infer.mapper import normalisation_stats
from landsegmenter.model.io import load_model, read_model_config, save_model
from landsegmenter.model.unet import UNet, UNetConfig, UNetSegmenter

TM = [0.485, 0.56, 0.66, 0.83, 1.65, 2.215]
NAMES = ["water", "forest", "built-up"]


def segmenter(**kw) -> UNetSegmenter:
    torch.manual_seed(0)
    return UNetSegmenter(UNetConfig(wavelengths=TM, class_names=NAMES, width=4, depth=2, **kw)).eval()


def test_unet_keeps_the_input_size_at_any_shape():
    net = UNet(6, 3, width=4, depth=3)
    assert net(torch.zeros(2, 6, 64, 48)).shape == (2, 3, 64, 48)
    model = segmenter()
    assert model(torch.zeros(1, 6, 37, 50), TM, NAMES).shape == (1, 3, 37, 50)


def test_requested_classes_are_selected_by_name_in_any_order():
    model = segmenter()
    x = torch.randn(1, 6, 32, 32)
    full = model.logits(x)
    picked = model(x, TM, ["Built-up", "water"])
    assert torch.allclose(picked, full[:, [2, 0]])
    with pytest.raises(LandSegError, match="trained on"):
        model(x, TM, ["cropland"])


def test_bands_must_match_the_trained_wavelengths_in_order():
    model = segmenter()
    sentinel2 = [0.49, 0.56, 0.665, 0.842, 1.61, 2.19]  # the same bands on another sensor: accepted
    model.validate(sentinel2, NAMES)
    with pytest.raises(LandSegError, match="trained on 6 bands"):
        model.validate(TM[:5], NAMES)
    with pytest.raises(LandSegError, match="trained on 6 bands"):
        model.validate(list(reversed(TM)), NAMES)


def test_saved_unet_loads_with_the_same_outputs_and_normalisation(tmp_path: Path):
    model = segmenter(band_names=["B1", "B2", "B3", "B4", "B5", "B7"])
    model.normalisation = "scene"
    save_model(model, tmp_path / "m", provenance={"made_by": "test"})
    meta = read_model_config(tmp_path / "m")
    assert meta["architecture"] == "unet" and meta["provenance"] == {"made_by": "test"}
    loaded = load_model(tmp_path / "m")
    x = torch.randn(1, 6, 32, 32)
    assert torch.allclose(loaded(x, TM, NAMES), model(x, TM, NAMES))
    assert loaded.normalisation == "scene" and loaded.config.band_names[-1] == "B7"


def test_a_model_adapted_with_scene_statistics_gets_them_from_the_mapper(s2_scene: Path):
    with Scene(str(s2_scene), sensor="sentinel2_l1c", bands=["B02", "B03", "B04", "B08", "B11", "B12"]) as stack:
        model = segmenter()
        sensor_mean, _ = normalisation_stats(stack, model, "auto")
        assert np.allclose(sensor_mean, [b.mean for b in stack.bands])
        model.normalisation = "scene"
        scene_mean, _ = normalisation_stats(stack, model, "auto")
        assert np.allclose(scene_mean, stack.sample_statistics()[0])
        assert np.allclose(normalisation_stats(stack, model, "sensor")[0], sensor_mean)  # explicit choice wins
