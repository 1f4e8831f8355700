"""A label product (or cloud mask) warped onto the sample grid, window by window.

Rasters are read through a ``WarpedVRT`` (nearest or mode; ``auto`` picks mode when the
product is at least twice as fine as the sample grid, where nearest would alias), so whole
scenes stream in bounded memory. Codes outside the legend become 255 (no label) and are
counted per code, or raise when the manifest asks for ``unknown_codes: error``.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import open_raster
from landsegmenter.las.grid import SampleGrid
from landsegmenter.taxonomy.legends import UNKNOWN, Legend

MODE_RATIO = 2.0  # product pixels per sample pixel (linear) from which "auto" uses mode


class RasterOnGrid:
    """Codes of a single-band raster on a :class:`SampleGrid`; ``fill`` outside the raster."""

    def __init__(self, path: str, grid: SampleGrid, resampling: str = "auto", fill: int | None = None) -> None:
        self.path = path
        self.grid = grid
        self._src = open_raster(path)
        try:
            src_transform = self._check_compatible()
            self.fill = _fill_value(self._src.nodata, fill)
            self.resampling = _pick_resampling(resampling, self._pixel_ratio(src_transform))
            self._reader = self._make_reader(src_transform)
        except Exception:
            self._src.close()
            raise

    def read(self, window: Window) -> np.ndarray:
        """Codes ``[h, w]`` of a sample-grid window."""
        return self._reader.read(1, window=window)

    def close(self) -> None:
        if self._reader is not self._src:
            self._reader.close()
        self._src.close()

    def _check_compatible(self) -> Affine:
        """The raster's transform in the warp CRS, after checking CRS presence and overlap."""
        src, grid = self._src, self.grid
        if grid.georeferenced and src.crs is None:
            raise LandSegError(
                f"{self.path} has no CRS but the imagery has one ({grid.crs.to_string()}); cannot align them"
            )
        if not grid.georeferenced and src.crs is not None:
            raise LandSegError(f"the imagery has no CRS but {self.path} has one; georeference both or neither")
        if grid.georeferenced:
            self._check_overlap()
            return src.transform
        return self._pixel_space_transform()

    def _check_overlap(self) -> None:
        west, south, east, north = transform_bounds(self._src.crs, self.grid.crs, *self._src.bounds)
        gx0, gy0, gx1, gy1 = self.grid.bounds
        if min(east, gx1) <= max(west, gx0) or min(north, gy1) <= max(south, gy0):
            raise LandSegError(
                f"{self.path} does not overlap the imagery (no common area in {self.grid.crs.to_string()})"
            )

    def _pixel_space_transform(self) -> Affine:
        """Without georeferencing, the raster is assumed to cover exactly the image (maybe at another resolution)."""
        native = self.grid.native
        sx, sy = native.width / self._src.width, native.height / self._src.height
        if abs(sx / sy - 1) > 0.01:
            raise LandSegError(
                f"{self.path} ({self._src.width} x {self._src.height} px) and the imagery ({native.width} x {native.height} px) "
                "have no georeferencing and different shapes; cannot tell how they line up"
            )
        return Affine.scale(sx, sy)

    def _pixel_ratio(self, src_transform: Affine) -> float:
        src_crs = self._src.crs or self.grid.warp_crs
        x0, y0, x1, y1 = transform_bounds(src_crs, self.grid.warp_crs, *_bounds(src_transform, self._src))
        product_pixel = np.sqrt(abs((x1 - x0) * (y1 - y0)) / (self._src.width * self._src.height))
        return abs(self.grid.transform.a) / product_pixel

    def _make_reader(self, src_transform: Affine):
        grid = self.grid
        same_grid = (
            (self._src.crs == grid.crs or not grid.georeferenced)
            and src_transform.almost_equals(grid.transform)
            and (self._src.width, self._src.height) == (grid.width, grid.height)
        )
        if same_grid:
            return self._src
        return WarpedVRT(
            self._src,
            src_crs=self._src.crs or grid.warp_crs,
            src_transform=src_transform,
            src_nodata=self._src.nodata if self._src.nodata is not None else self.fill,
            crs=grid.warp_crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            nodata=self.fill,
            resampling=self.resampling,
        )


class RasterLabels:
    """A label raster on the sample grid as contiguous legend indices (255: no label)."""

    def __init__(
        self, path: str, legend: Legend, grid: SampleGrid, *, resampling: str = "auto", unknown_codes: str = "report"
    ) -> None:
        fill = legend.nodata[0] if legend.nodata else UNKNOWN
        if fill in legend.codes:
            raise LandSegError(
                f"legend '{legend.key}' has no nodata code and uses {fill} for a class; declare its nodata"
            )
        self.legend = legend
        self.policy = unknown_codes
        self.raster = RasterOnGrid(path, grid, resampling, fill=fill)
        if self.raster.fill in legend.codes:
            self.raster.close()
            raise LandSegError(f"{path}: its nodata value {self.raster.fill} is a class of legend '{legend.key}'")
        self._lut = legend.lookup_table()
        self._nodata = np.array(sorted({*legend.nodata, self.raster.fill}), dtype=np.int64)
        self.unknown: Counter[str] = Counter()

    @property
    def path(self) -> str:
        return self.raster.path

    def read(self, window: Window, count_unknown: bool = True) -> np.ndarray:
        """Indices ``uint8 [h, w]``; with ``count_unknown`` the codes outside the legend are tallied."""
        codes = self.raster.read(window)
        index = _lookup(self._lut, codes)
        if count_unknown:
            self._tally(codes, index)
        return index

    def _tally(self, codes: np.ndarray, index: np.ndarray) -> None:
        not_class = codes[index == UNKNOWN]
        unknown = not_class[~np.isin(not_class, self._nodata)]
        if not unknown.size:
            return
        values, counts = np.unique(unknown, return_counts=True)
        if self.policy == "error":
            shown = ", ".join(str(int(v)) for v in values[:8])
            raise LandSegError(
                f"{self.path}: {int(counts.sum())} pixels have codes that are not classes of legend "
                f"'{self.legend.key}' (values: {shown}); fix the legend or set 'unknown_codes: report'"
            )
        self.unknown.update({str(int(v)): int(c) for v, c in zip(values, counts)})

    def close(self) -> None:
        self.raster.close()


class CloudMask:
    """``True`` where a cloud-mask raster holds one of ``values`` (nearest resampling)."""

    def __init__(self, path: str, grid: SampleGrid, values: tuple[int, ...]) -> None:
        self.raster = RasterOnGrid(path, grid, "nearest")
        self.values = np.array(values)

    def read(self, window: Window) -> np.ndarray:
        return np.isin(self.raster.read(window), self.values)

    def close(self) -> None:
        self.raster.close()


def open_labels(
    path: str,
    legend: Legend,
    grid: SampleGrid,
    *,
    resampling: str = "auto",
    unknown_codes: str = "report",
    field: str | None = None,
):
    """:class:`RasterLabels`, or :class:`~landsegmenter.las.vector.VectorLabels` for GeoJSON."""
    if path.lower().endswith((".geojson", ".json")):
        from landsegmenter.las.vector import VectorLabels

        return VectorLabels(path, legend, grid, field=field, unknown_codes=unknown_codes)
    return RasterLabels(path, legend, grid, resampling=resampling, unknown_codes=unknown_codes)


def time_gap_days(image_date: dt.date | None, label_date: dt.date | None) -> int | None:
    """Whole days between the image and the label product; None when a date is unknown."""
    if image_date is None or label_date is None:
        return None
    return abs((image_date - label_date).days)


def _lookup(lut: np.ndarray, codes: np.ndarray) -> np.ndarray:
    if codes.size and codes.min() >= 0 and codes.max() < lut.size:
        return lut[codes]
    index = np.full(codes.shape, UNKNOWN, dtype=np.uint8)
    inside = (codes >= 0) & (codes < lut.size)
    index[inside] = lut[codes[inside]]
    return index


def _fill_value(nodata: float | None, fallback: int | None) -> int:
    if nodata is not None and float(nodata).is_integer():
        return int(nodata)
    return UNKNOWN if fallback is None else fallback


def _pick_resampling(name: str, pixel_ratio: float) -> Resampling:
    if name == "mode" or (name == "auto" and pixel_ratio >= MODE_RATIO):
        return Resampling.mode
    return Resampling.nearest


def _bounds(transform: Affine, src) -> tuple[float, float, float, float]:
    xs, ys = zip(*(transform @ c for c in ((0, 0), (src.width, 0), (0, src.height), (src.width, src.height))))
    return min(xs), min(ys), max(xs), max(ys)
