"""Shared test fixtures: locating the real sample-data kit."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _data_root() -> Path:
    env = os.environ.get("LANDSEG_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real sample-data kit (``../shared/data``). Missing on CI is a failure, not a skip."""
    root = _data_root()
    if not (root / "README.md").is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"real sample data missing at {root} (set LANDSEG_DATA)")
        pytest.skip(f"real sample data not found at {root}")
    return root


@pytest.fixture(scope="session")
def s2_scene(shared_data: Path) -> Path:
    """The 13-band Sentinel-2 L1C scene over Germany (1536 x 768 px, EPSG:32633)."""
    return shared_data / "s2_t33uuu_20170216" / "s2_l1c_13band_10m.tif"
