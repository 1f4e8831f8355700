"""Reading a scene at another pixel size (``Scene(..., resolution=...)``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene


def test_a_10m_scene_read_at_30m_covers_the_same_extent(s2_scene: Path):
    with Scene(str(s2_scene), bands=["B04"], sensor="sentinel2_l1c") as fine, \
            Scene(str(s2_scene), bands=["B04"], sensor="sentinel2_l1c", resolution=30.0) as coarse:
        assert (coarse.width, coarse.height) == (512, 256)
        assert coarse.grid.res == (30.0, 30.0)
        assert coarse.grid.transform.c == fine.grid.transform.c and coarse.grid.transform.f == fine.grid.transform.f
        full, _ = fine.read(Window(0, 0, fine.width, fine.height))
        small, valid = coarse.read(Window(0, 0, coarse.width, coarse.height))
        block_means = full[0].reshape(256, 3, 512, 3).mean(axis=(1, 3))
        # bilinear at 3x is close to the 3 x 3 block mean: much closer than to the blocks shifted by one
        aligned = np.median(np.abs(small[0] - block_means)[valid])
        shifted = np.median(np.abs(small[0] - np.roll(block_means, 1, axis=1))[valid])
        assert aligned < 0.5 * shifted


def test_resolution_must_be_positive(s2_scene: Path):
    with pytest.raises(LandSegError, match="positive pixel size"):
        Scene(str(s2_scene), resolution=0.0)
