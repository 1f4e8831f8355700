"""Augmentations keep images, labels, bands, wavelengths and class names aligned."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from landsegmenter.geo.sensors import get_sensor
from landsegmenter.model.landsegmenter import validate_class_names
from landsegmenter.model.presets import build_model
from landsegmenter.taxonomy.legends import get_legend
from landsegmenter.train.augment import (
    BatchAugment, band_dropout, class_synonyms, geometric, prompt_templates, replace_synonyms, sensor_bands,
)
from landsegmenter.train.config import AugmentSection
from landsegmenter.train.forward import forward_batch

S2_L1C = get_sensor("sentinel2_l1c").wavelengths  # 13 bands, B01 ... B12


def test_synonym_replacement_keeps_each_name_on_its_class():
    legend = get_legend("dynamic_world")
    names = list(legend.names)
    synonyms = class_synonyms(tuple(names), "dynamic_world")
    assert all(synonyms), "every Dynamic World class has registry synonyms"
    changed = 0
    for seed in range(20):
        out = replace_synonyms(names, synonyms, 1.0, np.random.default_rng(seed))
        validate_class_names(out)  # still distinct
        assert len(out) == len(names)
        for index, name in enumerate(out):
            assert legend.by_name(name) is legend.classes[index]  # label value i is still class i
        changed += sum(a != b for a, b in zip(out, names))
    assert changed > 100


def test_synonyms_come_from_the_registry_and_never_duplicate_another_class():
    names = ["crops", "crop field", "dryout"]  # "crop field" is a synonym of "crops"
    synonyms = class_synonyms(tuple(names))
    assert synonyms[2] == ()  # not a registry class: kept as is
    for seed in range(30):
        out = replace_synonyms(names, synonyms, 1.0, np.random.default_rng(seed))
        validate_class_names(out)
        assert out[2] == "dryout"
    assert replace_synonyms(names, synonyms, 0.0, np.random.default_rng(0)) == names


def test_band_dropout_keeps_wavelengths_aligned_with_bands():
    wavelengths = np.array(S2_L1C)
    image = torch.tensor(wavelengths, dtype=torch.float32)[:, None, None].expand(-1, 4, 4)
    sizes = set()
    for seed in range(50):
        keep = band_dropout(len(wavelengths), np.random.default_rng(seed), min_bands=2)
        assert 2 <= len(keep) < len(wavelengths) and np.all(np.diff(keep) > 0)
        assert torch.equal(image[torch.as_tensor(keep)][:, 0, 0], torch.tensor(wavelengths[keep], dtype=torch.float32))
        sizes.add(len(keep))
    assert len(sizes) > 5
    assert band_dropout(2, np.random.default_rng(0)) is None  # nothing to drop from a 2-band image


def test_sensor_simulation_picks_bands_by_wavelength():
    assert sensor_bands(S2_L1C, get_sensor("rgb").wavelengths).tolist() == [1, 2, 3]  # B02, B03, B04
    landsat = BatchAugment(AugmentSection(sensor_simulation=1.0, sensors=["landsat7:B1,B2,B3,B4,B5,B7"]))
    assert landsat.bands(S2_L1C, np.random.default_rng(0)).tolist() == [1, 2, 3, 7, 11, 12]  # B8 not B8A, no cirrus
    rgbn = BatchAugment(AugmentSection(sensor_simulation=1.0, sensors=["rgbn"]))
    assert rgbn.bands([0.49, 0.56, 0.665, 0.842, 1.61, 2.19], np.random.default_rng(0)).tolist() == [0, 1, 2, 3]
    assert rgbn.bands([5.405, 5.405], np.random.default_rng(0)) is None  # SAR: nothing to simulate


def test_geometric_transforms_keep_image_and_label_aligned():
    rng = np.random.default_rng(3)
    label = torch.from_numpy(rng.integers(0, 9, size=(24, 20)))
    label[0, :5] = 255
    rows = torch.arange(24.0)[:, None].expand(24, 20)
    image = torch.stack([label.float(), rows])
    outcomes = set()
    for seed in range(40):
        out_image, out_label = geometric(image, label, np.random.default_rng(seed), crop_size=16)
        assert out_image.shape == (2, 16, 16) and out_label.shape == (16, 16)
        assert torch.equal(out_image[0], out_label.float())
        outcomes.add(tuple(out_image[1, 0, :2].tolist()))
    assert len(outcomes) > 10  # crops, flips and rotations really vary
    small_image, small_label = geometric(image, label, np.random.default_rng(0), crop_size=64, flip=False,
                                         rotate90=False)
    assert torch.equal(small_image, image) and torch.equal(small_label, label)


def test_forward_batch_gives_the_model_the_kept_bands_with_their_wavelengths(monkeypatch):
    model = build_model("tiny")
    seen = []
    original = model.forward_train

    def recording(image, wavelengths, class_names):
        seen.append((image.clone(), list(wavelengths), list(class_names)))
        return original(image, wavelengths, class_names)

    monkeypatch.setattr(model, "forward_train", recording)
    wavelengths = torch.tensor([0.49, 0.56, 0.665, 0.842, 1.61, 2.19])
    image = torch.randn(2, 6, 32, 32)
    batch = {"image": image, "label": torch.zeros(2, 32, 32, dtype=torch.long), "wavelengths": wavelengths.expand(2, 6),
             "band_mask": torch.ones(2, 6, dtype=torch.bool), "class_names": [["water", "trees"]] * 2,
             "class_mask": torch.ones(2, 2, dtype=torch.bool), "subset": ["a", "a"]}

    def augment(wl, names, subset, rng):
        return np.array([1, 3, 5]), ["open water", "trees"]

    out = forward_batch(model, batch, augment, np.random.default_rng(0))
    (x, wl, names), = seen
    assert torch.equal(x, image[:, [1, 3, 5]]) and wl == pytest.approx([0.56, 0.842, 2.19])
    assert names == ["open water", "trees"] and out.class_names == [["water", "trees"]] * 2


def test_prompt_templates_are_swapped_and_restored():
    prompter = build_model("tiny").prompter
    default = prompter.text_embeddings(["water", "forest"]).clone()
    templates = prompter.templates
    with prompt_templates(prompter, ["{}"]):
        single = prompter.text_embeddings(["water", "forest"])
    assert prompter.templates == templates
    assert not torch.allclose(single, default)
    assert torch.allclose(prompter.text_embeddings(["water", "forest"]), default)
    pool = BatchAugment(AugmentSection(templates=1.0))
    choice = pool.templates(np.random.default_rng(0))
    assert choice and set(choice) <= set(AugmentSection().template_pool)
