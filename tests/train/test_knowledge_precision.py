"""The knowledge expert's precision per concept, measured on training labels."""
from __future__ import annotations

import numpy as np
import torch

from landsegmenter.data.las_dataset import IGNORE_INDEX, LASDataset
from landsegmenter.geo.reflectance import reflectance_stats
from landsegmenter.las.rule_labels import RULE_PRODUCT
from landsegmenter.model.io import load_model
from landsegmenter.train import train
from landsegmenter.train.knowledge_precision import concept_counts, knowledge_precision, not_labelled_by_rule

WAVELENGTHS = [0.49, 0.56, 0.665, 0.842, 1.61, 2.19]
WATER = [0.08, 0.07, 0.05, 0.02, 0.01, 0.01]  # clear water: dark in the NIR and SWIR
FOREST = [0.03, 0.05, 0.03, 0.35, 0.15, 0.07]


def item(left, right, labels):
    """A 32 x 32 LAS item: the left half one spectrum, the right half another."""
    reflectance = np.empty((6, 32, 32), np.float32)
    reflectance[:, :, :16] = np.array(left)[:, None, None]
    reflectance[:, :, 16:] = np.array(right)[:, None, None]
    mean, std = reflectance_stats(WAVELENGTHS)
    image = (reflectance - mean[:, None, None]) / std[:, None, None]
    return {"image": torch.from_numpy(image.astype(np.float32)), "label": torch.from_numpy(labels),
            "wavelengths": torch.tensor(WAVELENGTHS), "class_names": ["water", "forest", "unicorn habitat"]}


def test_precision_counts_the_labels_of_the_pixels_the_expert_assigns():
    labels = np.full((32, 32), 1, np.int64)
    labels[:24, :16] = 0  # three quarters of the water-like pixels are labelled water
    labels[:, 30:] = IGNORE_INDEX  # unlabelled pixels do not count
    assigned, correct = concept_counts([item(WATER, FOREST, labels)])
    assert assigned == {"water": 512, "trees": 448} and correct == {"water": 384, "trees": 448}
    assert knowledge_precision([item(WATER, FOREST, labels)], min_pixels=100) == {"trees": 1.0, "water": 0.75}
    assert knowledge_precision([item(WATER, FOREST, labels)], min_pixels=500) == {"water": 0.75}  # too few trees


class RuleAndProduct:
    """Two subsets of items, the second labelled by the spectral-index rule."""
    subsets = ["dw", "rule"]
    label_sources = {"dw": {"product": "Dynamic World"}, "rule": {"product": RULE_PRODUCT}}
    group_ids = np.array([0, 1, 0, 1])

    def __getitem__(self, index):
        return {"index": index}


def test_subsets_labelled_by_the_rule_are_left_out():
    assert [it["index"] for it in not_labelled_by_rule(RuleAndProduct())] == [0, 2]


def test_a_las_dataset_knows_its_label_sources(train_store):
    sources = LASDataset(train_store).label_sources
    assert sources["dw"]["product"] == "Dynamic World (local run)"
    assert set(sources) == {"dw", "polygons"}


def test_training_measures_the_precision_of_a_knowledge_model(tiny_config, tmp_path):
    cfg = tiny_config(model={"overrides": {"knowledge": True}}, data={"normalisation": "reflectance"},
                      trainer={"max_steps": 1, "val_every": 1, "val_batches": 1, "checkpoint_every": 0,
                               "calibrate": True})
    train(cfg, output=tmp_path / "run", quiet=True)
    model = load_model(tmp_path / "run" / "model")
    precision = model.config.knowledge_precision
    assert precision and set(precision) <= {"water", "trees", "crops", "grass", "built", "bare", "shrub",
                                            "flooded vegetation", "snow", "cloud"}
    assert all(0 <= v <= 1 for v in precision.values())
    assert "knowledge_precision_split: train" in (tmp_path / "run" / "model" / "config.yaml").read_text()
