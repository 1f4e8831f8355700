"""Training configs: the shipped YAML files load; unknown keys and bad values are one-line errors."""
from __future__ import annotations

import pytest
import yaml

from landsegmenter.errors import LandSegError
from landsegmenter.train.config import config_from_dict, load_config

from .conftest import REPO


@pytest.mark.parametrize("name", ["train-default", "train-tiny", "finetune-example"])
def test_shipped_configs_load_with_paths_relative_to_the_file(name):
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    if cfg.data.store is not None:
        assert cfg.data.store == str(REPO / "build" / ("las-wide" if name == "train-default" else "las-mini"))
    else:
        assert cfg.data.scene.paths[0].endswith("s2_l2a_porto_trombetas/s2_l2a_12band_10m.tif")
        assert cfg.data.scene.class_names == ["dryout", "forest", "village", "water"]


def test_train_default_describes_the_bundled_model():
    cfg = load_config(REPO / "configs" / "train-default.yaml")
    assert cfg.model.preset == "default" and cfg.trainer.precision == "auto"
    assert cfg.augment.synonyms > 0 and cfg.augment.sensor_simulation > 0 and cfg.augment.band_dropout > 0


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"data": {"store": "s"}, "optim": {"learning_rate": 1e-3}}, "unknown key 'learning_rate' in optim"),
        ({"data": {"store": "s"}, "trainer": {"max_steps": "many"}}, "trainer.max_steps must be an integer"),
        ({"data": {"store": "s"}, "augment": {"synonyms": 1.5}}, "augment.synonyms is a probability"),
        ({"data": {"store": "s"}, "augment": {"min_bands": 1}}, "min_bands must be at least 2"),
        ({"data": {"store": "s"}, "trainer": {"precision": "fp8"}}, "trainer.precision must be one of"),
        ({"data": {}}, "exactly one of 'store'"),
        ({"data": {"store": "s"}, "augment": {"sensors": "rgb"}}, "augment.sensors must be a list"),
        ({"trainning": {}}, "unknown key 'trainning' in the config"),
    ],
)
def test_bad_configs_raise_one_line_errors(doc, message):
    with pytest.raises(LandSegError, match=message) as info:
        config_from_dict(doc)
    assert "\n" not in str(info.value)


def test_load_config_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"data": {"store": "s"}, "loss": {"weight": 1}}))
    with pytest.raises(LandSegError, match=r"bad.yaml: unknown key 'weight' in loss; allowed: similarity_weight"):
        load_config(path)
    with pytest.raises(LandSegError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
