"""Polygon labels (GeoJSON) burned onto the sample grid, window by window.

The class of a feature is its ``field`` property: a legend class name (or synonym) or a
native code. Features are burned in file order, later ones on top, with the pixel-centre
rule of ``rasterio.features.rasterize``. Features whose class is not in the legend are
burned too, counted per value, and end up as 255 (no label).
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.features import bounds as geometry_bounds
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.las.grid import SampleGrid
from landsegmenter.taxonomy.legends import UNKNOWN, Legend

GEOJSON_CRS = "OGC:CRS84"  # RFC 7946: lon/lat on WGS 84 unless a legacy "crs" member says otherwise


class VectorLabels:
    """GeoJSON polygons on a georeferenced sample grid as legend indices (255: no label)."""

    def __init__(
        self, path: str, legend: Legend, grid: SampleGrid, *, field: str | None, unknown_codes: str = "report"
    ) -> None:
        if not grid.georeferenced:
            raise LandSegError(f"{path}: polygon labels need georeferenced imagery (the imagery has no CRS)")
        if not field:
            raise LandSegError(f"{path}: say which property holds the class with 'label: field:'")
        self.path, self.legend, self.grid, self.policy = path, legend, grid, unknown_codes
        features, crs = _read_geojson(path)
        self._unknown_values: list[str] = []
        self._shapes = [self._shape(f, field, crs) for f in features]
        self._bounds = np.array([geometry_bounds(g) for g, _ in self._shapes]).reshape(-1, 4)
        self._check_overlap()
        self.unknown: Counter[str] = Counter()

    def read(self, window: Window, count_unknown: bool = True) -> np.ndarray:
        """Indices ``uint8 [h, w]`` of a sample-grid window."""
        h, w = int(window.height), int(window.width)
        transform = self.grid.window_transform(window)
        x0, y1 = transform @ (0, 0)
        x1, y0 = transform @ (w, h)
        hit = (
            (self._bounds[:, 0] <= x1)
            & (self._bounds[:, 2] >= x0)
            & (self._bounds[:, 1] <= y1)
            & (self._bounds[:, 3] >= y0)
        )
        shapes = [self._shapes[i] for i in np.flatnonzero(hit)]
        if not shapes:
            return np.full((h, w), UNKNOWN, dtype=np.uint8)
        burned = rasterize(shapes, out_shape=(h, w), transform=transform, fill=-1, dtype="int32")
        index = np.where(burned >= 0, burned, UNKNOWN)
        marked = burned < -1
        if marked.any():
            self._report(burned[marked], count_unknown)
            index[marked] = UNKNOWN
        return index.astype(np.uint8)

    def close(self) -> None:
        pass

    def _shape(self, feature: dict[str, Any], field: str, crs: str) -> tuple[dict, int]:
        properties = feature.get("properties") or {}
        if field not in properties:
            raise LandSegError(
                f"{self.path}: a feature has no property {field!r} (properties: {', '.join(properties)})"
            )
        geometry = transform_geom(crs, self.grid.crs, feature["geometry"])
        return geometry, self._class_value(properties[field])

    def _class_value(self, value: Any) -> int:
        """Legend index, or a negative marker (< -1) for a value outside the legend."""
        found = None
        if isinstance(value, str):
            found = self.legend.find(value)
        elif isinstance(value, int) and value in self.legend.codes:
            found = self.legend.by_code(value)
        if found is not None:
            return self.legend.classes.index(found)
        if str(value) not in self._unknown_values:
            self._unknown_values.append(str(value))
        return -2 - self._unknown_values.index(str(value))

    def _report(self, markers: np.ndarray, count: bool) -> None:
        values, counts = np.unique(markers, return_counts=True)
        names = [self._unknown_values[-2 - int(v)] for v in values]
        if self.policy == "error":
            raise LandSegError(
                f"{self.path}: {int(counts.sum())} pixels have classes that are not in legend '{self.legend.key}' "
                f"(values: {', '.join(names[:8])}); fix the legend or set 'unknown_codes: report'"
            )
        if count:
            self.unknown.update({n: int(c) for n, c in zip(names, counts)})

    def _check_overlap(self) -> None:
        if not len(self._bounds):
            raise LandSegError(f"{self.path} has no features")
        gx0, gy0, gx1, gy1 = self.grid.bounds
        x0, y0 = self._bounds[:, 0].min(), self._bounds[:, 1].min()
        x1, y1 = self._bounds[:, 2].max(), self._bounds[:, 3].max()
        if min(x1, gx1) <= max(x0, gx0) or min(y1, gy1) <= max(y0, gy0):
            raise LandSegError(f"{self.path} does not overlap the imagery")


def _read_geojson(path: str) -> tuple[list[dict[str, Any]], str]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise LandSegError(f"cannot read {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise LandSegError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise LandSegError(f"{path}: expected a GeoJSON FeatureCollection")
    crs_name = ((doc.get("crs") or {}).get("properties") or {}).get("name", GEOJSON_CRS)
    try:
        crs = CRS.from_user_input(crs_name).to_string()
    except CRSError:
        raise LandSegError(f"{path}: unknown CRS {crs_name!r}") from None
    features = [f for f in doc.get("features", []) if f.get("geometry")]
    return features, crs
