"""Image patches on the sample grid, as the values the store keeps plus a valid mask.

Integer imagery read at its native resolution is stored as its DN (compact, exact), with
the per-band ``scale``/``offset`` that turn DN into physical values; resampled or float
imagery is stored as float32 physical values (scale 1, offset 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from affine import Affine
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene, open_raster
from landsegmenter.las.grid import SampleGrid
from landsegmenter.las.manifest import ImagerySpec


@dataclass(frozen=True)
class BandTable:
    """What the store records about the bands of a subset; lists are per band."""

    names: list[str]
    wavelengths: list[float]
    scale: list[float]  # stored value -> physical
    offset: list[float]
    mean: list[float]  # physical normalisation statistics
    std: list[float]
    dtype: str  # dtype of the stored values
    normalisation: str  # "sensor" or "scene"

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class PatchReader:
    """Reads ``[C, h, w]`` patches of a :class:`Scene` on a :class:`SampleGrid`."""

    def __init__(self, scene: Scene, grid: SampleGrid, spec: ImagerySpec) -> None:
        self.scene = scene
        self.grid = grid
        file_scale = np.array([b.scale for b in scene.bands], dtype=np.float64)
        file_offset = np.array([b.offset for b in scene.bands], dtype=np.float64)
        self._file = (file_scale, file_offset)
        self._physical = (
            file_scale if spec.scale is None else np.full_like(file_scale, spec.scale),
            file_offset if spec.offset is None else np.full_like(file_offset, spec.offset),
        )
        self._overridden = spec.scale is not None or spec.offset is not None
        self._nodata = spec.nodata
        self.dtype = _storage_dtype(scene, grid)

    def bands(self) -> BandTable:
        """Band names, wavelengths, storage scaling and normalisation statistics."""
        means = [b.mean for b in self.scene.bands]
        stds = [b.std for b in self.scene.bands]
        normalisation = "sensor"
        if any(m is None or s is None for m, s in zip(means, stds)):
            mean, std = self.scene.sample_statistics()
            means, stds = self._to_physical(mean), std / self._file[0] * self._physical[0]
            normalisation = "scene"
        integer = np.issubdtype(np.dtype(self.dtype), np.integer)
        scale, offset = self._physical if integer else (np.ones(len(means)), np.zeros(len(means)))
        return BandTable(
            names=self.scene.band_names,
            wavelengths=[float(w) for w in self.scene.wavelengths],
            scale=[float(s) for s in scale],
            offset=[float(o) for o in offset],
            mean=[float(m) for m in means],
            std=[float(abs(s)) for s in stds],
            dtype=self.dtype,
            normalisation=normalisation,
        )

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Stored values ``[C, h, w]`` (``self.dtype``) and valid mask ``[h, w]`` of a sample-grid window."""
        if self.grid.ratio == 1.0:
            physical, valid = self._read_native(window)
        else:
            physical, valid = self._read_resampled(window)
        if np.issubdtype(np.dtype(self.dtype), np.integer):
            dn = np.rint((physical - self._file[1][:, None, None]) / self._file[0][:, None, None])
            dn[:, ~valid] = 0
            return dn.astype(self.dtype), valid
        values = self._to_physical(physical) if self._overridden else physical
        values = values.astype(np.float32)
        values[:, ~valid] = 0.0
        return values, valid

    def _to_physical(self, file_physical: np.ndarray) -> np.ndarray:
        """Apply the manifest's scale/offset override to values scaled with the file's or sensor's."""
        if not self._overridden:
            return file_physical
        shape = (-1,) + (1,) * (file_physical.ndim - 1)
        dn = (file_physical - self._file[1].reshape(shape)) / self._file[0].reshape(shape)
        return dn * self._physical[0].reshape(shape) + self._physical[1].reshape(shape)

    def _read_native(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Physical values and valid mask on the native grid; ``nodata`` DN in any band marks a pixel invalid."""
        physical, valid = self.scene.read(window)
        if self._nodata is not None:
            dn = (physical - self._file[1][:, None, None]) / self._file[0][:, None, None]
            valid &= ~(np.abs(dn - self._nodata) < 0.5).any(axis=0)
            physical[:, ~valid] = 0.0
        return physical, valid

    def _read_resampled(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Read the native pixels under ``window`` and average them onto the sample grid."""
        native = _native_window(self.grid, window)
        data, valid = self._read_native(native)
        src_transform = self.grid.native_transform @ _translation(native)
        dst_transform = self.grid.window_transform(window)
        h, w = int(window.height), int(window.width)
        out = np.zeros((data.shape[0], h, w), dtype=np.float32)
        share = np.zeros((h, w), dtype=np.float32)
        common = dict(
            src_transform=src_transform,
            src_crs=self.grid.warp_crs,
            dst_transform=dst_transform,
            dst_crs=self.grid.warp_crs,
        )
        reproject(data, out, resampling=Resampling.average, **common)
        reproject(valid.astype(np.float32), share, resampling=Resampling.average, **common)
        return out, share >= 1.0 - 1e-6


def _storage_dtype(scene: Scene, grid: SampleGrid) -> str:
    dtypes = set()
    for band in scene.bands:
        with open_raster(band.source.path) as src:
            dtypes.add(src.dtypes[band.source.index - 1])
    if grid.ratio == 1.0 and len(dtypes) == 1:
        dtype = np.dtype(dtypes.pop())
        if np.issubdtype(dtype, np.integer) and dtype.itemsize <= 2:
            return dtype.name
    return "float32"


def _native_window(grid: SampleGrid, window: Window) -> Window:
    r = grid.ratio
    col0, row0 = int(window.col_off * r), int(window.row_off * r)
    col1 = min(grid.native.width, int(np.ceil((window.col_off + window.width) * r)))
    row1 = min(grid.native.height, int(np.ceil((window.row_off + window.height) * r)))
    if col1 <= col0 or row1 <= row0:
        raise LandSegError(f"window {window} lies outside the image")
    return Window(col0, row0, col1 - col0, row1 - row0)


def _translation(window: Window) -> Affine:
    return Affine.translation(window.col_off, window.row_off)
