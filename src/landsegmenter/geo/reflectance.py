"""One normalisation for reflectance from every sensor, as a function of wavelength.

Per-sensor statistics make the same surface look different to a model depending on which
instrument saw it (DN of one sensor, reflectance of another, each centred on its own mean).
Here every reflective band (TOA or surface reflectance in [0, 1], 0.35-2.5 µm) is centred
and scaled with the mean and standard deviation of reflectance at its wavelength, linearly
interpolated between the knots in ``data/reflectance_stats.yaml`` (clamped beyond the end
knots). The knots are measured on the training split of a LAS store by
``scripts/reflectance_stats.py``; the file records which store.
"""
from __future__ import annotations

import sys
from functools import lru_cache
from importlib import resources
from typing import Callable, Sequence

import numpy as np
import yaml

from landsegmenter.errors import LandSegError

REFLECTIVE_RANGE_UM = (0.35, 2.5)
# Atmospheric absorption bands (water vapour near 0.94 µm, cirrus near 1.38 µm, the 1.9 µm
# water band) measure the air more than the surface: they keep their sensor's statistics.
ABSORPTION_BANDS_UM = ((0.92, 0.97), (1.34, 1.42), (1.80, 1.95))
REFLECTANCE_UNITS = "reflectance"


def is_reflective(units: str | None, wavelength: float) -> bool:
    """Whether a band in ``units`` at ``wavelength`` µm takes the global reflectance statistics."""
    low, high = REFLECTIVE_RANGE_UM
    if units != REFLECTANCE_UNITS or not low <= wavelength <= high:
        return False
    return not any(a <= wavelength <= b for a, b in ABSORPTION_BANDS_UM)


@lru_cache(maxsize=1)
def knots() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(wavelength µm, mean, std) arrays of the bundled table, sorted by wavelength."""
    text = resources.files("landsegmenter.geo").joinpath("data/reflectance_stats.yaml").read_text()
    rows = sorted(yaml.safe_load(text)["knots"], key=lambda r: r["wavelength"])
    return tuple(np.array([r[k] for r in rows], np.float64) for k in ("wavelength", "mean", "std"))


def reflectance_stats(wavelengths: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Global (mean, std) of reflectance at each wavelength (µm): float32 [C], [C]."""
    wl, mean, std = knots()
    at = np.asarray(wavelengths, np.float64)
    return np.interp(at, wl, mean).astype(np.float32), np.interp(at, wl, std).astype(np.float32)


NORMALISATIONS = ("auto", "sensor", "scene", "reflectance")


def band_statistics(bands: Sequence, mode: str, sample: Callable[[], tuple[np.ndarray, np.ndarray]]):
    """Per-band (mean, std) float32 [C] for ``(x - mean) / std`` of physical values.

    ``bands`` are :class:`~landsegmenter.geo.bands.BandSpec`; ``sample()`` measures the scene.
    - ``sensor``: the registry's statistics of every band (LandSegError when a band has none);
    - ``scene``: measured on the scene;
    - ``auto``: the sensor's when every band has them, else the scene's;
    - ``reflectance``: the global reflectance statistics for reflective bands, the others as ``auto``.
    Every fallback to scene statistics, and every band that ``reflectance`` cannot cover, is said on stderr.
    """
    if mode not in NORMALISATIONS:
        raise LandSegError(f"normalisation must be one of {', '.join(NORMALISATIONS)}, got {mode!r}")
    known = all(b.mean is not None and b.std for b in bands)
    if mode == "sensor" and not known:
        raise LandSegError("no sensor statistics for these bands: pass --sensor, or --normalise scene")
    if mode == "scene":
        return sample()
    reflective = [is_reflective(b.units, b.wavelength) for b in bands] if mode == "reflectance" else [False] * len(bands)
    others = [b for b, r in zip(bands, reflective) if not r]
    if others and mode == "reflectance":
        _note(f"bands {', '.join(b.name for b in others)} ({_units(others)}) are not normalised as surface "
              "reflectance: they keep per-band statistics (for Level-1 DN, a *_toa sensor entry gives reflectance)")
    if all(b.mean is not None and b.std for b in others):
        mean = np.array([b.mean or 0.0 for b in bands], np.float32)
        std = np.array([b.std or 1.0 for b in bands], np.float32)
    else:
        _note("no sensor statistics for " + ", ".join(b.name for b in others if b.mean is None or not b.std)
              + ": normalising with statistics sampled from the scene (pass --sensor to use the registry's)")
        mean, std = sample()
    if any(reflective):
        global_mean, global_std = reflectance_stats([b.wavelength for b in bands])
        mean = np.where(reflective, global_mean, mean).astype(np.float32)
        std = np.where(reflective, global_std, std).astype(np.float32)
    return mean, std


def _units(bands: Sequence) -> str:
    """What keeps these bands out: their units, or that they are atmospheric absorption bands."""
    kinds = {"absorption band" if b.units == REFLECTANCE_UNITS else (b.units or "unknown units") for b in bands}
    return ", ".join(sorted(kinds))


def _note(text: str) -> None:
    print(f"landseg: note: {text}", file=sys.stderr)
