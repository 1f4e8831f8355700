"""The Para adaptation target: polygons split whole into test and train halves, on the real polygons."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from landsegmenter.taxonomy.crosswalk import get_crosswalk
from landsegmenter.taxonomy.legends import get_legend

REPO = Path(__file__).resolve().parents[2]


def _load(name: str):
    """A benchmark helper module, without putting ``benchmarks/`` on the path (its names shadow packages)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


_load("nc_data")  # para_data imports it
para_data = _load("para_data")


def test_every_other_polygon_of_each_class_is_a_test_polygon() -> None:
    features = [{"properties": {"id": i, "class_value": c}} for i, c in [(5, 0), (1, 0), (3, 0), (2, 1), (9, 1), (4, 2)]]
    assert para_data.held_out_polygon_ids(features) == {3, 9}


def test_split_keeps_polygons_whole_and_loses_no_label(shared_data: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("LANDSEG_DATA", str(shared_data))
    test, train = para_data.split_polygons(tmp_path)
    folder = shared_data / para_data.FOLDER
    with rasterio.open(folder / "training_polygons_label.tif") as src:
        labels = src.read(1)
    with rasterio.open(test) as a, rasterio.open(train) as b:
        t, r = a.read(1), b.read(1)
    assert not ((t != 255) & (r != 255)).any()  # no pixel in both halves
    both = np.where(t != 255, t, r)
    assert np.array_equal(both, labels)  # the kit's own rasterisation, every label kept
    assert set(para_data.class_pixels(test)) == set(para_data.class_pixels(train)) == {0, 1, 2, 3}
    ids = json.loads((folder / para_data.POLYGONS).read_text())["features"]
    assert len(para_data.held_out_polygon_ids(ids)) == 17  # 36 polygons: 10, 8, 9, 9 per class


def test_dynamic_world_recodes_into_the_para_legend() -> None:
    legend = get_legend("para_landsat5")
    dw = get_legend("dynamic_world")
    mapping = get_crosswalk("dynamic_world", legend.key).mapping
    named = {dw.by_code(s).name: (legend.by_code(t).name if t is not None else None) for s, t in mapping.items()}
    assert named["trees"] == "forest" and named["water"] == "water" and named["crops"] == "cleared"
    assert named["built"] is None and named["snow and ice"] is None
    with pytest.raises(Exception):
        get_crosswalk("para_landsat5", "dynamic_world")
