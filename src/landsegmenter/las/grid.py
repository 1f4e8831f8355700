"""The sample grid: the imagery's pixel grid, resampled to the subset's target GSD.

Patches are cut on this grid and the label product is warped onto it. Imagery without
georeferencing gets a grid in its own pixel units; to let GDAL warp between two such
grids they are both given :data:`PIXEL_SPACE_CRS`, which is never stored or reported.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.area import EARTH_AUTHALIC_RADIUS_M
from landsegmenter.geo.raster import Grid

PIXEL_SPACE_CRS = CRS.from_epsg(3857)


@dataclass(frozen=True)
class SampleGrid:
    """``width`` x ``height`` pixels of ``gsd_m`` metres; ``native`` is the imagery's own grid.

    ``crs`` is None for imagery without georeferencing; ``transform`` is then in units of
    native pixels (``Affine.scale(ratio)``).
    """

    width: int
    height: int
    crs: CRS | None
    transform: Affine
    gsd_m: float
    native: Grid

    @classmethod
    def from_grid(cls, grid: Grid, gsd_m: float | None = None) -> "SampleGrid":
        """A georeferenced grid used as it is (e.g. a UTM grid to warp a product onto)."""
        return cls(grid.width, grid.height, grid.crs, grid.transform, gsd_m or native_gsd_m(grid, None), grid)

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None

    @property
    def warp_crs(self) -> CRS:
        return self.crs if self.crs is not None else PIXEL_SPACE_CRS

    @property
    def ratio(self) -> float:
        """Sample-grid pixel size over native pixel size (1: no resampling)."""
        native = self.native.transform if self.georeferenced else Affine.identity()
        return abs(self.transform.a) / abs(native.a)

    @property
    def native_transform(self) -> Affine:
        """The native grid's transform in the warp CRS."""
        return self.native.transform if self.georeferenced else Affine.identity()

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return _bounds(self.transform, self.width, self.height)

    @property
    def lonlat_bounds(self) -> tuple[float, float, float, float] | None:
        """(west, south, east, north) in degrees; None without georeferencing."""
        if self.crs is None:
            return None
        west, south, east, north = transform_bounds(self.crs, "EPSG:4326", *self.bounds, densify_pts=21)
        return west, south, east, north

    def as_grid(self) -> Grid:
        return Grid(self.width, self.height, self.crs, self.transform)

    def window_transform(self, window: Window) -> Affine:
        return self.transform @ Affine.translation(window.col_off, window.row_off)

    def roi(self, native_window: tuple[int, int, int, int] | None) -> Window:
        """A region of the native image (col_off, row_off, width, height) on this grid, shrunk to whole pixels."""
        if native_window is None:
            return Window(0, 0, self.width, self.height)
        col, row, width, height = native_window
        if col + width > self.native.width or row + height > self.native.height:
            raise LandSegError(
                f"window {list(native_window)} reaches beyond the image ({self.native.width} x {self.native.height} px)"
            )
        r = self.ratio
        col0, row0 = math.ceil(col / r - 1e-9), math.ceil(row / r - 1e-9)
        col1, row1 = math.floor((col + width) / r + 1e-9), math.floor((row + height) / r + 1e-9)
        return Window(col0, row0, max(0, col1 - col0), max(0, row1 - row0))

    def center_lonlat(self, window: Window) -> tuple[float, float] | None:
        if self.crs is None:
            return None
        x, y = self.window_transform(window) @ (window.width / 2, window.height / 2)
        if self.crs.is_geographic:
            return float(x), float(y)
        west, south, _, _ = transform_bounds(self.crs, "EPSG:4326", x, y, x, y)
        return float(west), float(south)


def sample_grid(native: Grid, declared_gsd: float | None, target_gsd: float | None) -> SampleGrid:
    """The grid patches are cut from: ``native`` resampled from its GSD to ``target_gsd`` (metres)."""
    gsd = native_gsd_m(native, declared_gsd)
    target = target_gsd or gsd
    ratio = target / gsd
    if abs(ratio - 1) < 1e-6:
        ratio = 1.0
    base = native.transform if native.crs is not None else Affine.identity()
    width, height = int(native.width / ratio + 1e-6), int(native.height / ratio + 1e-6)
    if width < 1 or height < 1:
        raise LandSegError(f"a {target} m grid over a {native.width} x {native.height} px image has no whole pixel")
    return SampleGrid(width, height, native.crs, base @ Affine.scale(ratio), target, native)


def native_gsd_m(grid: Grid, declared: float | None) -> float:
    """Metres per pixel of ``grid``: from its CRS, or ``declared`` when it has none."""
    if grid.crs is None:
        if declared is None:
            raise LandSegError("the imagery has no georeferencing: give its pixel size in metres as 'imagery: gsd:'")
        return float(declared)
    res_x, res_y = grid.res
    if grid.crs.is_geographic:
        _, south, _, north = _bounds(grid.transform, grid.width, grid.height)
        metres_per_degree = math.radians(1) * EARTH_AUTHALIC_RADIUS_M
        lat = math.radians((south + north) / 2)
        return math.sqrt(res_x * math.cos(lat) * res_y) * metres_per_degree
    unit = grid.crs.linear_units_factor[1]
    return math.sqrt(res_x * res_y) * unit


def _bounds(transform: Affine, width: int, height: int) -> tuple[float, float, float, float]:
    xs, ys = zip(*(transform @ corner for corner in ((0, 0), (width, 0), (0, height), (width, height))))
    return min(xs), min(ys), max(xs), max(ys)
