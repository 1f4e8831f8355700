"""Fixtures for the training tests: a small real LAS store and the tiny training config."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import yaml

from landsegmenter.las import build_las
from landsegmenter.train.config import TrainConfig, load_config

REPO = Path(__file__).resolve().parents[2]
T33UUU = "s2_t33uuu_20170216"
PORTO = "s2_l2a_porto_trombetas"


@pytest.fixture(scope="session", autouse=True)
def single_thread():
    """On small, busy CPUs one intra-op thread is many times faster than two competing ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def store_manifest(data: Path) -> dict[str, Any]:
    """Two subsets with different bands and taxonomies: S2 L1C 6 bands / Dynamic World (train + val),
    S2 L2A 12 bands / the Porto Trombetas polygons (train)."""
    t33, porto = data / T33UUU, data / PORTO
    image, label = str(t33 / "s2_l1c_13band_10m.tif"), str(t33 / "dynamic_world_label.tif")
    return {
        "name": "train-test",
        "subsets": {
            "dw": {
                "imagery": {"sensor": "sentinel2_l1c", "bands": ["B02", "B03", "B04", "B08", "B11", "B12"],
                            "date": "2017-02-16"},
                "label": {"legend": "dynamic_world", "product": "Dynamic World (local run)", "date": "2017-02-16"},
                "sampling": {"patch_size": 64, "samples_per_scene": 4, "seed": 7},
                "scenes": [
                    {"id": "west", "image": image, "label": label, "window": [0, 0, 768, 768]},
                    {"id": "east", "image": image, "label": label, "window": [1152, 0, 384, 768], "split": "val"},
                ],
            },
            "polygons": {
                "imagery": {"sensor": "sentinel2_l2a_pb04"},
                "label": {"legend": str(porto / "training_polygons_label.legend.json"), "taxonomy": "porto"},
                "sampling": {"patch_size": 64, "samples_per_scene": 4, "min_labelled_fraction": 0.01},
                "scenes": [{"id": "porto", "image": str(porto / "s2_l2a_12band_10m.tif"),
                            "label": str(porto / "training_polygons_label.tif")}],
            },
        },
    }


@pytest.fixture(scope="session")
def train_store(shared_data: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-store")
    manifest = root / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(store_manifest(shared_data)), encoding="utf-8")
    build_las(manifest, root / "store", progress=False)
    return root / "store"


@pytest.fixture()
def tiny_config(train_store: Path) -> Callable[..., TrainConfig]:
    """``configs/train-tiny.yaml`` on the test store, with section fields replaced: ``tiny_config(trainer={...})``."""

    def make(**sections: dict[str, Any]) -> TrainConfig:
        cfg = load_config(REPO / "configs" / "train-tiny.yaml")
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, store=str(train_store)))
        for name, changes in sections.items():
            cfg = dataclasses.replace(cfg, **{name: dataclasses.replace(getattr(cfg, name), **changes)})
        return cfg

    return make


@pytest.fixture()
def write_config(tmp_path: Path) -> Callable[[TrainConfig], Path]:
    """Write a config as YAML (for the command line)."""

    def write(cfg: TrainConfig, name: str = "train.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False), encoding="utf-8")
        return path

    return write
