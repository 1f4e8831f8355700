"""The Para (Brazil) Landsat 5 TM adaptation target: the scene and its hand-drawn polygons.

The data kit's ``landsat5_tm_19880814_para/`` holds the Level-1 DN scene LT52240631988227CUB02
(14 Aug 1988, 7 bands, 30 m, 287 x 310 px) and 36 hand-drawn polygons of four classes (legend
``rstoolbox_landsat5_polygons``: cleared, fallen_dry, forest, water). The thermal band is left
out; the six reflective bands match Sentinel-2 bands by wavelength as the Landsat 7 bands do.

The polygons are split whole, never cut: within each class, every other polygon (by id) is a
test polygon and the others are train polygons (the upper bound's labels), so no test pixel has a
train pixel of the same polygon beside it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import rasterize

import nc_data

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "para"
FOLDER = "landsat5_tm_19880814_para"
IMAGE = "landsat5_tm_7band_30m.tif"
POLYGONS = "training_polygons.geojson"
LEGEND_KEY = "rstoolbox_landsat5_polygons"
BANDS = ["B1", "B2", "B3", "B4", "B5", "B7"]
NODATA = 255


def data_dir() -> Path:
    """The kit's Para folder (``$LANDSEG_DATA`` or ``../shared/data``); an error when it is missing."""
    root = Path(os.environ.get("LANDSEG_DATA", ROOT.parent / "shared" / "data"))
    folder = root / FOLDER
    if not (folder / IMAGE).is_file():
        raise SystemExit(f"the Para scene is missing at {folder}: set LANDSEG_DATA to the data kit")
    return folder


def held_out_polygon_ids(features: list[dict]) -> set[int]:
    """Every other polygon of each class, in id order: the test half."""
    by_class: dict[int, list[int]] = {}
    for feature in features:
        props = feature["properties"]
        by_class.setdefault(int(props["class_value"]), []).append(int(props["id"]))
    return {pid for ids in by_class.values() for pid in sorted(ids)[1::2]}


def split_polygons(workdir: Path) -> tuple[Path, Path]:
    """The polygons' class codes on the image grid: test polygons, then train polygons (255 elsewhere)."""
    folder = data_dir()
    features = json.loads((folder / POLYGONS).read_text())["features"]
    test_ids = held_out_polygon_ids(features)
    with rasterio.open(folder / IMAGE) as src:
        grid = nc_data.GridInfo(src.transform, src.crs, src.width, src.height)
    paths = []
    for name, keep in (("reference_test.tif", True), ("labels_train.tif", False)):
        shapes = [(f["geometry"], int(f["properties"]["class_value"])) for f in features
                  if (int(f["properties"]["id"]) in test_ids) == keep]
        codes = rasterize(shapes, out_shape=(grid.height, grid.width), transform=grid.transform,
                          fill=NODATA, dtype="uint8")
        paths.append(nc_data.write_single_band(workdir / name, codes, grid, NODATA))
    return paths[0], paths[1]


def class_pixels(path: Path) -> dict[int, int]:
    """Pixels per class code of a label raster."""
    with rasterio.open(path) as src:
        codes = src.read(1)
    values, counts = np.unique(codes[codes != NODATA], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))
