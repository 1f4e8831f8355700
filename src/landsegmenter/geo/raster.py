"""Windowed reading of a band stack from one or several rasters on one grid."""
from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import rasterio
from rasterio import Affine
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from landsegmenter.errors import LandSegError
from landsegmenter.geo.bands import WAVELENGTH_TAGS, BandSpec, FileBand, resolve_bands
from landsegmenter.geo.calibration import find_mtl, read_mtl, scene_calibration
from landsegmenter.geo.reflectance import band_statistics
from landsegmenter.geo.sensors import Sensor


@dataclass(frozen=True)
class Grid:
    """The pixel grid of a scene."""

    width: int
    height: int
    crs: rasterio.crs.CRS | None
    transform: rasterio.Affine

    @property
    def res(self) -> tuple[float, float]:
        return abs(self.transform.a), abs(self.transform.e)


def regridded(grid: Grid, resolution: float) -> Grid:
    """``grid``'s extent (north-up) at pixel size ``resolution``; the last row/column may overhang it."""
    t = grid.transform
    if t.b or t.d:
        raise LandSegError("cannot change the resolution of a rotated grid")
    width = max(1, math.ceil(round(grid.width * abs(t.a) / resolution, 6)))
    height = max(1, math.ceil(round(grid.height * abs(t.e) / resolution, 6)))
    transform = Affine(math.copysign(resolution, t.a), 0.0, t.c, 0.0, math.copysign(resolution, t.e), t.f)
    return Grid(width, height, grid.crs, transform)


def on_grid(src, grid: Grid, resampling: Resampling):
    """``src`` itself when it is on ``grid``, else a ``WarpedVRT`` of it onto ``grid`` (close it after use)."""
    if (src.width, src.height, src.transform) == (grid.width, grid.height, grid.transform):
        return src
    return WarpedVRT(src, crs=grid.crs or src.crs, transform=grid.transform, width=grid.width,
                     height=grid.height, resampling=resampling)


def open_raster(path: str):
    """``rasterio.open`` with one-line errors for missing or unreadable files.

    A GeoTIFF tagged CMYK (``PHOTOMETRIC=SEPARATED``, as the 8-bit NIR, R, G, B images of
    Five-Billion-Pixels are) is opened through GDAL's ``GTIFF_RAW:`` prefix so that its
    stored bands are read; opened plainly, GDAL converts it to RGBA and NIR is lost.
    """
    if "://" not in path and not path.startswith("/vsi") and not Path(path).exists():
        raise LandSegError(f"no such file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
            if src.driver == "GTiff" and src.tags(ns="IMAGE_STRUCTURE").get("SOURCE_COLOR_SPACE") == "CMYK":
                src.close()
                src = rasterio.open(f"GTIFF_RAW:{path}")
            return src
    except RasterioIOError as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown format"
        raise LandSegError(f"cannot read {path} as a raster: {first_line}") from None


_ANNOUNCED_MTL: set[str] = set()


def with_mtl_calibration(sensor: Sensor | None, bands: list[BandSpec], paths: Sequence[str],
                         mtl: str | Path | None = None) -> list[BandSpec]:
    """``bands`` with the rescaling of the scene's ``*_MTL.txt`` when ``sensor`` is a ``*_toa`` entry.

    The MTL is ``mtl`` or the one found beside ``paths``; without one the sensor's default
    coefficients stay. A band whose file carries its own scale/offset keeps it.
    """
    if sensor is None or not sensor.calibration:
        if mtl is not None:
            raise LandSegError(f"an MTL file calibrates Level-1 DN of the *_toa sensors only, not of "
                               f"{sensor.name if sensor else 'a scene without --sensor'}")
        return list(bands)
    path = Path(mtl) if mtl is not None else find_mtl(list(paths))
    if path is None:
        return list(bands)
    unscaled = [b for b in bands if b.source.file_scale == 1.0 and b.source.file_offset == 0.0]
    coefficients = scene_calibration(read_mtl(path), sensor.calibration, [b.name for b in unscaled], path)
    if str(path) not in _ANNOUNCED_MTL:
        _ANNOUNCED_MTL.add(str(path))
        print(f"landseg: {sensor.name}: calibration from {path}", file=sys.stderr)
    return [replace(b, scale=coefficients[b.name][0], offset=coefficients[b.name][1]) if b.name in coefficients
            else b for b in bands]


def _tag_wavelength(src, index: int) -> float | None:
    tags = src.tags(index)
    tags.update(src.tags(index, ns="IMAGERY"))
    for key in WAVELENGTH_TAGS:
        if key in tags:
            try:
                return float(tags[key])
            except ValueError:
                return None
    return None


def _file_bands(src, path: str) -> list[FileBand]:
    return [
        FileBand(
            path=path,
            index=i + 1,
            description=src.descriptions[i],
            tag_wavelength=_tag_wavelength(src, i + 1),
            file_scale=float(src.scales[i]),
            file_offset=float(src.offsets[i]),
        )
        for i in range(src.count)
    ]


class Scene:
    """A stack of bands from one or more rasters, read window by window on one grid.

    Several single- or multi-band files at mixed resolutions (e.g. Sentinel-2 JP2s at
    10/20/60 m) are resampled on the fly onto the grid of the finest one.
    ``resolution`` (pixel size in CRS units) puts the stack on a grid of that pixel size
    over the same extent instead (e.g. a 30 m Landsat scene read at a model's 10 m).
    ``read(window)`` returns ``(data [C, h, w] float32 physical values, valid [h, w] bool)``.
    A pixel is valid when every selected band has data there (nodata, NaN, internal masks,
    the sensor's fill value such as -9999 of Landsat Collection-1 surface reflectance).
    For a ``*_toa`` sensor the calibration of the scene's ``*_MTL.txt`` (``mtl``, or the one
    beside the input files) replaces the sensor's default (see :func:`with_mtl_calibration`).
    """

    def __init__(
        self,
        paths: Sequence[str] | str,
        *,
        sensor: str | None = None,
        bands: Sequence[str] | None = None,
        wavelengths: Sequence[float] | None = None,
        resampling: Resampling = Resampling.bilinear,
        resolution: float | None = None,
        mtl: str | Path | None = None,
    ) -> None:
        if resolution is not None and not resolution > 0:
            raise LandSegError(f"resolution must be a positive pixel size, got {resolution}")
        self.paths = [paths] if isinstance(paths, (str, Path)) else [str(p) for p in paths]
        self.paths = [str(p) for p in self.paths]
        if not self.paths:
            raise LandSegError("no input raster given")
        self._datasets = {p: open_raster(p) for p in self.paths}
        try:
            file_bands = [fb for p, ds in self._datasets.items() for fb in _file_bands(ds, p)]
            self.sensor, self.bands = resolve_bands(file_bands, sensor=sensor, bands=bands, wavelengths=wavelengths)
            self.bands = with_mtl_calibration(self.sensor, self.bands, self.paths, mtl)
            self.grid = self._reference_grid(resolution)
            self._readers = self._make_readers(resampling)
        except Exception:
            self.close()
            raise

    @property
    def band_names(self) -> list[str]:
        return [b.name for b in self.bands]

    @property
    def wavelengths(self) -> list[float]:
        return [b.wavelength for b in self.bands]

    @property
    def width(self) -> int:
        return self.grid.width

    @property
    def height(self) -> int:
        return self.grid.height

    def _reference_grid(self, resolution: float | None) -> Grid:
        used = [self._datasets[b.source.path] for b in self.bands]
        finest = min(used, key=lambda ds: abs(ds.transform.a * ds.transform.e))
        crs_set = {ds.crs.to_wkt() if ds.crs else None for ds in used}
        if len(crs_set) > 1 and None in crs_set:
            raise LandSegError("some input files have a CRS and others none; cannot put them on one grid")
        grid = Grid(finest.width, finest.height, finest.crs, finest.transform)
        return grid if resolution is None else regridded(grid, resolution)

    def _make_readers(self, resampling: Resampling) -> dict[str, object]:
        return {path: on_grid(self._datasets[path], self.grid, resampling)
                for path in {b.source.path for b in self.bands}}

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """Physical values ``[C, h, w]`` float32 and the valid-pixel mask ``[h, w]``."""
        h, w = int(window.height), int(window.width)
        data = np.empty((len(self.bands), h, w), dtype=np.float32)
        valid = np.ones((h, w), dtype=bool)
        fill = self.sensor.nodata if self.sensor is not None else None
        for i, band in enumerate(self.bands):
            arr = self._read_band(band, window)
            values = np.asarray(arr.data, dtype=np.float32)
            valid &= ~np.ma.getmaskarray(arr)
            valid &= np.isfinite(values)
            if fill is not None:
                valid &= values != fill
            data[i] = values * band.scale + band.offset
        data[:, ~valid] = 0.0
        return data, valid

    def _read_band(self, band: BandSpec, window: Window) -> np.ma.MaskedArray:
        try:
            return self._readers[band.source.path].read(band.source.index, window=window, masked=True)
        except RasterioIOError as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else "read failed"
            raise LandSegError(f"cannot read band {band.name} of {band.source.path}: {detail}") from None

    def sample_statistics(self, max_windows: int = 64, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Per-band mean and std of valid pixels from a regular sample of windows."""
        per_axis = max(1, int(math.sqrt(max_windows)))
        sums = np.zeros(len(self.bands))
        squares = np.zeros(len(self.bands))
        count = 0
        for row in np.linspace(0, max(0, self.height - size), per_axis).astype(int):
            for col in np.linspace(0, max(0, self.width - size), per_axis).astype(int):
                win = Window(col, row, min(size, self.width), min(size, self.height))
                data, valid = self.read(win)
                values = data[:, valid].astype(np.float64)
                sums += values.sum(axis=1)
                squares += (values**2).sum(axis=1)
                count += values.shape[1]
        if count == 0:
            raise LandSegError("the scene has no valid pixels (all nodata)")
        mean = sums / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)

    def statistics(self, mode: str = "auto") -> tuple[np.ndarray, np.ndarray]:
        """Per-band (mean, std) of physical values for ``(x - mean) / std``; see :func:`band_statistics`."""
        return band_statistics(self.bands, mode, self.sample_statistics)

    def close(self) -> None:
        for reader in getattr(self, "_readers", {}).values():
            if isinstance(reader, WarpedVRT):
                reader.close()
        for ds in self._datasets.values():
            ds.close()

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


__all__ = ["Scene", "Grid", "open_raster", "BandSpec", "Sensor"]
