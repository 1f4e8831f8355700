"""Spectral bands of a benchmark's image files, looked up in the sensor registry.

A benchmark declares its file bands in file order (e.g. Vaihingen ``nir, red,
green``); a user may keep a subset, in any order. Wavelengths and normalisation
statistics come from the sensor registry (``geo/data/sensors.yaml``), so the
image tensor and the ``wavelengths`` handed to the model always agree.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import get_sensor


@dataclass(frozen=True)
class SelectedBands:
    """Bands chosen from a file: 1-based file indexes and per-band statistics, all ``[C]``."""

    names: tuple[str, ...]
    indexes: tuple[int, ...]
    wavelengths: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    scales: tuple[float, ...]
    offsets: tuple[float, ...]

    def normalise(self, dn: np.ndarray) -> np.ndarray:
        """``[C, H, W]`` digital numbers -> ``float32 [C, H, W]`` ``(DN * scale + offset - mean) / std``."""
        column = (len(self.names), 1, 1)
        physical = dn.astype(np.float32) * _as(self.scales, column) + _as(self.offsets, column)
        return (physical - _as(self.means, column)) / _as(self.stds, column)


@dataclass(frozen=True)
class BandLayout:
    """The spectral bands of a benchmark's image files, in file order, and the sensor that describes them."""

    sensor: str
    file_bands: tuple[str, ...]

    def select(self, names: Sequence[str] | None = None) -> SelectedBands:
        """The bands called ``names`` (all file bands when ``None``), in the order given."""
        sensor = get_sensor(self.sensor)
        wanted = tuple(self.file_bands if names is None else names)
        if not wanted:
            raise LandSegError("select at least one band")
        bands = sensor.select(wanted)
        file_keys = [sensor.band(n).name for n in self.file_bands]
        missing = [n for n, b in zip(wanted, bands) if b.name not in file_keys]
        if missing:
            raise LandSegError(
                f"band(s) {', '.join(missing)} are not in these files; available: {', '.join(self.file_bands)}"
            )
        scales = sensor.band_scales
        offsets = sensor.band_offsets
        position = {b.name: i for i, b in enumerate(sensor.bands)}
        return SelectedBands(
            names=tuple(b.name for b in bands),
            indexes=tuple(file_keys.index(b.name) + 1 for b in bands),
            wavelengths=tuple(b.wavelength for b in bands),
            means=tuple(b.mean for b in bands),
            stds=tuple(b.std for b in bands),
            scales=tuple(scales[position[b.name]] for b in bands),
            offsets=tuple(offsets[position[b.name]] for b in bands),
        )


def _as(values: tuple[float, ...], shape: tuple[int, int, int]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32).reshape(shape)
