"""CMYK-tagged TIFFs (the 8-bit Five-Billion-Pixels images) are read as their stored bands."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsegmenter.geo.raster import Scene, open_raster

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")


def test_a_cmyk_tiff_keeps_its_four_stored_bands(s2_scene: Path, tmp_path: Path):
    with rasterio.open(s2_scene) as src:  # real NIR, R, G, B
        nirrgb = np.clip(src.read([8, 4, 3, 2], window=Window(0, 0, 40, 30)) / 16, 0, 255).astype(np.uint8)
    path = tmp_path / "GF2_scene.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=30, count=4, dtype="uint8",
                       photometric="CMYK") as dst:
        dst.write(nirrgb)
    with rasterio.open(path) as plain:
        assert plain.count == 4 and not np.array_equal(plain.read(), nirrgb)  # GDAL converts to RGBA
    with open_raster(str(path)) as src:
        assert np.array_equal(src.read(), nirrgb)
    with Scene(str(path), bands=["B4", "B3"], sensor="gaofen2_pms") as scene:
        assert scene.band_names == ["B4", "B3"]
