"""Helpers for the LAS tests: small manifests over the real sample data."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

T33UUU = "s2_t33uuu_20170216"


@pytest.fixture()
def write_manifest(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write a manifest dict as YAML in ``tmp_path`` and return its path."""

    def write(doc: dict[str, Any], name: str = "manifest.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def dw_subset() -> Callable[..., dict[str, Any]]:
    """Builds a subset definition over the T33UUU scene (see :func:`make_dw_subset`)."""
    return make_dw_subset


def make_dw_subset(data: Path, *, samples: int = 3, patch: int = 64, **sampling: Any) -> dict[str, Any]:
    """A subset of the T33UUU scene with its Dynamic World label (two windows: train and val)."""
    scene = data / T33UUU
    image, label = str(scene / "s2_l1c_13band_10m.tif"), str(scene / "dynamic_world_label.tif")
    return {
        "imagery": {"sensor": "sentinel2_l1c", "bands": ["B02", "B03", "B04", "B08"], "date": "2017-02-16"},
        "label": {"legend": "dynamic_world", "product": "Dynamic World (local run)", "date": "2017-02-16"},
        "sampling": {"patch_size": patch, "samples_per_scene": samples, "seed": 7, **sampling},
        "scenes": [
            {"id": "west", "image": image, "label": label, "window": [0, 0, 768, 768]},
            {"id": "east", "image": image, "label": label, "window": [1152, 0, 384, 768], "split": "val"},
        ],
    }
