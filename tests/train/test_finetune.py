"""``finetune_on_labels``: the transfer protocol on a real scene with sparse labels."""
from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch

from landsegmenter.errors import LandSegError
from landsegmenter.infer.mapper import map_scene
from landsegmenter.model.presets import build_model
from landsegmenter.train.finetune import finetune_on_labels

from .conftest import PORTO

CLASSES = ["dryout", "forest", "village", "water"]
SENSOR = "sentinel2_l2a_pb04"


@pytest.fixture(scope="module")
def porto(shared_data):
    folder = shared_data / PORTO
    return str(folder / "s2_l2a_12band_10m.tif"), folder / "training_polygons_label.tif"


@pytest.fixture(scope="module")
def untuned():
    torch.manual_seed(0)
    return build_model("tiny").eval()


def labelled_accuracy(model, scene, labels, out) -> float:
    """Accuracy of the mapper's output (sensor normalisation, tiling) on the labelled pixels."""
    map_scene(scene, CLASSES, out, model=model, sensor=SENSOR, tile_size=256, confidence=False,
              preview=False, progress=False)
    with rasterio.open(out / "classes.tif") as pred, rasterio.open(labels) as ref:
        predicted, reference = pred.read(1), ref.read(1)
    labelled = reference != 255
    return float((predicted[labelled] == reference[labelled]).mean())


def test_finetuning_raises_accuracy_on_the_labelled_pixels(porto, untuned, tmp_path):
    scene, labels = porto
    before = labelled_accuracy(untuned, scene, labels, tmp_path / "before")
    state = {k: v.clone() for k, v in untuned.state_dict().items()}
    tuned = finetune_on_labels(untuned, scene, labels, CLASSES, sensor=SENSOR, steps=40, patch_size=64,
                               batch_size=4, lr=3e-3, seed=0)
    after = labelled_accuracy(tuned, scene, labels, tmp_path / "after")
    assert after > before + 0.3 and after > 0.55, (before, after)
    assert not tuned.training and tuned is not untuned
    assert all(torch.equal(v, state[k]) for k, v in untuned.state_dict().items())  # the input model is untouched


def test_finetuning_is_deterministic_with_the_seed(porto, untuned):
    scene, labels = porto
    kwargs = dict(sensor=SENSOR, steps=2, patch_size=32, batch_size=2, lr=1e-3)
    first = finetune_on_labels(untuned, [scene], labels, CLASSES, seed=5, **kwargs).state_dict()
    again = finetune_on_labels(untuned, [scene], labels, CLASSES, seed=5, **kwargs).state_dict()
    other = finetune_on_labels(untuned, [scene], labels, CLASSES, seed=6, **kwargs).state_dict()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)


def test_non_ascii_class_names_train(porto, untuned):
    scene, labels = porto
    names = ["área seca", "floresta tropical", "村庄", "eau"]
    tuned = finetune_on_labels(untuned, scene, labels, names, sensor=SENSOR, steps=1, patch_size=32, batch_size=2)
    with torch.no_grad():
        logits = tuned(torch.zeros(1, 12, 32, 32), [0.49] * 12, names)
    assert logits.shape == (1, 4, 32, 32)


def test_bad_inputs_are_clear_errors(porto, untuned, tmp_path):
    scene, labels = porto
    run = dict(sensor=SENSOR, steps=1, patch_size=32, batch_size=2)
    with pytest.raises(LandSegError, match="only one class .* learns nothing"):
        finetune_on_labels(untuned, scene, labels, ["forest"], **run)
    with pytest.raises(LandSegError, match="has 250 characters; use at most 200"):
        finetune_on_labels(untuned, scene, labels, ["dryout", "forest " * 35 + "x" * 5, "village", "water"], **run)
    with pytest.raises(LandSegError, match="has label value 3 but only 3 class names"):
        finetune_on_labels(untuned, scene, labels, CLASSES[:3], **run)
    with pytest.raises(LandSegError, match="duplicate class names"):
        finetune_on_labels(untuned, scene, labels, ["water", "forest", "village", "Water"], **run)

    with rasterio.open(labels) as src:
        profile, data = src.profile, src.read(1)
    small = tmp_path / "small.tif"
    profile.update(width=100, height=100)
    with rasterio.open(small, "w", **profile) as dst:
        dst.write(data[:100, :100], 1)
    with pytest.raises(LandSegError, match="labels must be on the scene's grid"):
        finetune_on_labels(untuned, scene, small, CLASSES, **run)
    empty = tmp_path / "empty.tif"
    profile.update(width=247, height=237)
    with rasterio.open(empty, "w", **profile) as dst:
        dst.write(np.full_like(data, 255), 1)
    with pytest.raises(LandSegError, match="no labelled pixels"):
        finetune_on_labels(untuned, scene, empty, CLASSES, **run)
    with pytest.raises(LandSegError, match="only a LandSegmenter can be fine-tuned"):
        finetune_on_labels(torch.nn.Linear(2, 2), scene, labels, CLASSES, **run)
