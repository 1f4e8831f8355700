"""Landsat Level-1 DN -> top-of-atmosphere reflectance: published coefficients and MTL files.

Radiance is linear in DN, ``L = gain * DN + bias`` (W m-2 sr-1 µm-1), and so is TOA reflectance,

    rho = pi * L * d**2 / (ESUN * sin(sun_elevation))

(``d`` Earth-Sun distance in AU, ``ESUN`` mean exoatmospheric solar irradiance in W m-2 µm-1),
so every conversion here is a per-band ``(scale, offset)`` with ``value = DN * scale + offset``.
Thermal bands have no ESUN: their coefficients give at-sensor radiance (brightness temperature
is not linear in DN). OLI products publish reflectance rescaling directly: ``rho = (M * DN + A) /
sin(sun_elevation)``, with the Earth-Sun distance already in ``M`` and ``A``.

Published values: Chander, Markham & Helder (2009), "Summary of current radiometric calibration
coefficients for Landsat MSS, TM, ETM+, and EO-1 ALI sensors", Remote Sens. Environ.
113:893-903: the TM LMIN/LMAX of products processed after 2 April 2007 and acquired after
1 January 1992 (earlier acquisitions have lower band 1-2 LMAX; their MTL files say so), the ETM+
LMIN/LMAX of products processed after 1 July 2000, and the ESUN table. OLI: the rescaling every
Landsat 8 Level-1 MTL carries (USGS Landsat 8 Data Users Handbook, section 5).
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path

from landsegmenter.errors import LandSegError

REFERENCE_SUN_ELEVATION_DEG = 50.0  # the default geometry of the *_dn and *_toa registry entries
REFERENCE_EARTH_SUN_DISTANCE_AU = 1.0
QCAL_MIN, QCAL_MAX = 1, 255  # TM/ETM+ Level-1 DN range

# instrument -> gain -> band -> (LMIN, LMAX), W m-2 sr-1 µm-1 at QCAL_MIN / QCAL_MAX.
DYNAMIC_RANGES: dict[str, dict[str, dict[str, tuple[float, float]]]] = {
    "landsat5_tm": {"fixed": {
        "B1": (-1.52, 193.0), "B2": (-2.84, 365.0), "B3": (-1.17, 264.0), "B4": (-1.51, 221.0),
        "B5": (-0.37, 30.2), "B6": (1.2378, 15.303), "B7": (-0.15, 16.5),
    }},
    "landsat7_etm": {
        "low": {
            "B1": (-6.2, 293.7), "B2": (-6.4, 300.9), "B3": (-5.0, 234.4), "B4": (-5.1, 241.1),
            "B5": (-1.0, 47.57), "B6": (0.0, 17.04), "B7": (-0.35, 16.54),
        },
        "high": {
            "B1": (-6.2, 191.6), "B2": (-6.4, 196.5), "B3": (-5.0, 152.9), "B4": (-5.1, 157.4),
            "B5": (-1.0, 31.06), "B6": (3.2, 12.65), "B7": (-0.35, 10.80),
        },
    },
}
# instrument -> band -> ESUN, W m-2 µm-1 (reflective bands only).
ESUN: dict[str, dict[str, float]] = {
    "landsat5_tm": {"B1": 1983.0, "B2": 1796.0, "B3": 1536.0, "B4": 1031.0, "B5": 220.0, "B7": 83.44},
    "landsat7_etm": {"B1": 1997.0, "B2": 1812.0, "B3": 1533.0, "B4": 1039.0, "B5": 230.8, "B7": 84.90},
}
# Landsat 8 Level-1 rescaling: OLI reflectance (M, A) for bands 1-9, TIRS radiance for 10-11.
OLI_REFLECTANCE_RESCALING = (2.0e-5, -0.1)
TIRS_RADIANCE_RESCALING = (3.342e-4, 0.1)
OLI_REFLECTIVE_BANDS = ("B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9")
OLI_THERMAL_BANDS = ("B10", "B11")

SPACECRAFT = {"landsat5_tm": 5, "landsat7_etm": 7, "landsat8_oli": 8}
INSTRUMENTS = tuple(SPACECRAFT)


# --------------------------------------------------------------------------- published coefficients
def radiance_coefficients(instrument: str, band: str, gain: str = "low") -> tuple[float, float]:
    """``(scale, offset)`` with radiance [W m-2 sr-1 µm-1] = DN * scale + offset, from LMIN/LMAX.

    ``gain`` is ``"low"`` or ``"high"`` for ETM+ and ignored for TM (one dynamic range).
    """
    ranges = _dynamic_ranges(instrument, gain)
    if band not in ranges:
        raise LandSegError(f"no published radiance range for band {band!r} of {instrument}")
    lmin, lmax = ranges[band]
    return rescaling_from_range(lmin, lmax, QCAL_MIN, QCAL_MAX)


def toa_coefficients(
    instrument: str,
    band: str,
    gain: str = "low",
    sun_elevation: float = REFERENCE_SUN_ELEVATION_DEG,
    earth_sun_distance: float = REFERENCE_EARTH_SUN_DISTANCE_AU,
) -> tuple[float, float]:
    """``(scale, offset)`` with TOA reflectance = DN * scale + offset from the published tables.

    Thermal bands: at-sensor radiance (W m-2 sr-1 µm-1) instead. ``sun_elevation`` in degrees,
    ``earth_sun_distance`` in AU (ignored for OLI, whose rescaling already holds it).
    """
    if instrument == "landsat8_oli":
        return _oli_coefficients(band, sun_elevation)
    scale, offset = radiance_coefficients(instrument, band, gain)
    esun = ESUN[instrument].get(band)
    if esun is None:
        return scale, offset
    return radiance_to_reflectance(scale, offset, esun, sun_elevation, earth_sun_distance)


def radiance_to_reflectance(scale: float, offset: float, esun: float, sun_elevation: float,
                            earth_sun_distance: float) -> tuple[float, float]:
    """Radiance ``(scale, offset)`` of a band -> TOA reflectance ``(scale, offset)``."""
    factor = math.pi * earth_sun_distance**2 / (esun * _sin_elevation(sun_elevation))
    return scale * factor, offset * factor


def rescaling_from_range(lmin: float, lmax: float, qcal_min: float, qcal_max: float) -> tuple[float, float]:
    """``(gain, bias)`` of the line through (qcal_min, lmin) and (qcal_max, lmax)."""
    gain = (lmax - lmin) / (qcal_max - qcal_min)
    return gain, lmin - gain * qcal_min


def earth_sun_distance(day: date) -> float:
    """Earth-Sun distance in AU on ``day``: 1 - 0.01672 cos(0.9856° (day of year - 4)).

    The first-order orbit (eccentricity 0.01672, perihelion on 4 January); within 2e-4 AU of
    the ephemeris, i.e. 0.04 % in reflectance.
    """
    day_of_year = day.timetuple().tm_yday
    return 1.0 - 0.01672 * math.cos(math.radians(0.9856 * (day_of_year - 4)))


def _oli_coefficients(band: str, sun_elevation: float) -> tuple[float, float]:
    if band in OLI_THERMAL_BANDS:
        return TIRS_RADIANCE_RESCALING
    if band not in OLI_REFLECTIVE_BANDS:
        raise LandSegError(f"no published rescaling for band {band!r} of landsat8_oli")
    mult, add = OLI_REFLECTANCE_RESCALING
    sin_elevation = _sin_elevation(sun_elevation)
    return mult / sin_elevation, add / sin_elevation


def _dynamic_ranges(instrument: str, gain: str) -> dict[str, tuple[float, float]]:
    if instrument not in DYNAMIC_RANGES:
        raise LandSegError(f"no published calibration for {instrument!r}; known: {', '.join(INSTRUMENTS)}")
    gains = DYNAMIC_RANGES[instrument]
    if len(gains) == 1:
        return next(iter(gains.values()))
    if gain not in gains:
        raise LandSegError(f"unknown gain {gain!r} for {instrument}: use {' or '.join(gains)}")
    return gains[gain]


def _sin_elevation(sun_elevation: float) -> float:
    if not 0.0 < sun_elevation <= 90.0:
        raise LandSegError(f"sun elevation must be in (0, 90] degrees, got {sun_elevation}")
    return math.sin(math.radians(sun_elevation))


# --------------------------------------------------------------------------- MTL files
def read_mtl(path: str | Path) -> dict[str, str]:
    """The ``KEY = value`` pairs of a Landsat ``*_MTL.txt`` (groups flattened, quotes removed)."""
    try:
        text = Path(path).read_text("ascii", errors="replace")
    except OSError as exc:
        raise LandSegError(f"cannot read the MTL file {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for line in text.split("\0", 1)[0].splitlines():
        key, sep, value = line.partition("=")
        key = key.strip()
        if sep and key not in ("GROUP", "END_GROUP"):
            values[key] = value.strip().strip('"')
    if "SUN_ELEVATION" not in values:
        raise LandSegError(f"{path} is not a Landsat MTL file (no SUN_ELEVATION)")
    return values


def mtl_spacecraft(mtl: Mapping[str, str]) -> int | None:
    """The Landsat number of an MTL (``SPACECRAFT_ID = "LANDSAT_5"`` or ``"Landsat5"``), or None."""
    found = re.search(r"\d+", mtl.get("SPACECRAFT_ID", ""))
    return int(found.group()) if found else None


def mtl_sun_geometry(mtl: Mapping[str, str], path: str | Path = "MTL") -> tuple[float, float]:
    """``(sun elevation in degrees, Earth-Sun distance in AU)`` of an MTL.

    Without ``EARTH_SUN_DISTANCE`` (files before Collection 1) the distance comes from the
    acquisition date (``DATE_ACQUIRED``, or ``ACQUISITION_DATE`` in pre-2012 files).
    """
    elevation = _mtl_number(mtl, "SUN_ELEVATION", path)
    if "EARTH_SUN_DISTANCE" in mtl:
        return elevation, _mtl_number(mtl, "EARTH_SUN_DISTANCE", path)
    text = mtl.get("DATE_ACQUIRED") or mtl.get("ACQUISITION_DATE")
    if not text:
        raise LandSegError(f"{path} has neither EARTH_SUN_DISTANCE nor DATE_ACQUIRED")
    try:
        acquired = date.fromisoformat(text[:10])
    except ValueError:
        raise LandSegError(f"{path}: cannot read the acquisition date {text!r}") from None
    return elevation, earth_sun_distance(acquired)


def coefficients_from_mtl(mtl: Mapping[str, str], instrument: str, band: str,
                          path: str | Path = "MTL") -> tuple[float, float]:
    """``(scale, offset)`` with TOA reflectance (thermal: radiance) = DN * scale + offset.

    Keys, in order of preference: ``REFLECTANCE_MULT/ADD_BAND_x`` (Collection 1/2, reflective
    bands) divided by sin(sun elevation); else the radiance rescaling with the published ESUN,
    from ``RADIANCE_MINIMUM/MAXIMUM_BAND_x`` with ``QUANTIZE_CAL_MIN/MAX_BAND_x`` (their MULT is
    rounded to 3 decimals in the 2012-2016 files), ``RADIANCE_MULT/ADD_BAND_x``, or the pre-2012
    ``LMIN/LMAX_BANDx`` with ``QCALMIN/QCALMAX_BANDx``.
    """
    elevation, distance = mtl_sun_geometry(mtl, path)
    new_id, old_id = _mtl_band_ids(instrument, band)
    if f"REFLECTANCE_MULT_BAND_{new_id}" in mtl:
        sin_elevation = _sin_elevation(elevation)
        mult = _mtl_number(mtl, f"REFLECTANCE_MULT_BAND_{new_id}", path)
        add = _mtl_number(mtl, f"REFLECTANCE_ADD_BAND_{new_id}", path)
        return mult / sin_elevation, add / sin_elevation
    scale, offset = _mtl_radiance(mtl, new_id, old_id, path)
    esun = ESUN.get(instrument, {}).get(band)
    if esun is None:
        if instrument == "landsat8_oli" and band not in OLI_THERMAL_BANDS:
            raise LandSegError(f"{path} lacks REFLECTANCE_MULT_BAND_{new_id} for OLI band {band}")
        return scale, offset
    return radiance_to_reflectance(scale, offset, esun, elevation, distance)


def _mtl_radiance(mtl: Mapping[str, str], new_id: str, old_id: str, path) -> tuple[float, float]:
    """Radiance ``(gain, bias)`` of a band from whichever key family the MTL has."""
    if f"RADIANCE_MAXIMUM_BAND_{new_id}" in mtl:
        keys = (f"RADIANCE_MINIMUM_BAND_{new_id}", f"RADIANCE_MAXIMUM_BAND_{new_id}",
                f"QUANTIZE_CAL_MIN_BAND_{new_id}", f"QUANTIZE_CAL_MAX_BAND_{new_id}")
        return rescaling_from_range(*(_mtl_number(mtl, k, path) for k in keys))
    if f"RADIANCE_MULT_BAND_{new_id}" in mtl:
        return (_mtl_number(mtl, f"RADIANCE_MULT_BAND_{new_id}", path),
                _mtl_number(mtl, f"RADIANCE_ADD_BAND_{new_id}", path))
    if f"LMAX_BAND{old_id}" in mtl:
        keys = (f"LMIN_BAND{old_id}", f"LMAX_BAND{old_id}", f"QCALMIN_BAND{old_id}", f"QCALMAX_BAND{old_id}")
        return rescaling_from_range(*(_mtl_number(mtl, k, path) for k in keys))
    raise LandSegError(f"{path} lacks RADIANCE_MAXIMUM_BAND_{new_id}, RADIANCE_MULT_BAND_{new_id} "
                       f"and LMAX_BAND{old_id}: no calibration for band {new_id}")


def _mtl_band_ids(instrument: str, band: str) -> tuple[str, str]:
    """The band's number in Collection-style keys (``6_VCID_1``) and in pre-2012 keys (``61``)."""
    number = band[1:] if band[:1].upper() == "B" else band
    if instrument == "landsat7_etm" and number == "6":
        return "6_VCID_1", "61"  # the low-gain thermal file, as the landsat7 registry entries
    return number, number


def _mtl_number(mtl: Mapping[str, str], key: str, path) -> float:
    if key not in mtl:
        raise LandSegError(f"{path} lacks {key}")
    try:
        return float(mtl[key])
    except ValueError:
        raise LandSegError(f"{path}: {key} is not a number ({mtl[key]!r})") from None


def find_mtl(raster_paths: list[str]) -> Path | None:
    """The ``*_MTL.txt`` beside the input rasters: the one whose scene id starts a band file's name,
    else the only one there; None when there is none."""
    folders = dict.fromkeys(Path(p).parent for p in raster_paths if "://" not in p and not p.startswith("/vsi"))
    found = sorted({m for folder in folders for m in folder.glob("*_MTL.txt")})
    if len(found) <= 1:
        return found[0] if found else None
    names = [Path(p).name.upper() for p in raster_paths]
    matching = [m for m in found if any(n.startswith(m.name.upper()[: -len("_MTL.TXT")]) for n in names)]
    if len(matching) == 1:
        return matching[0]
    raise LandSegError(f"several MTL files beside the input ({', '.join(m.name for m in found)}) and none "
                       "named like its band files; keep one MTL per scene folder or pass it explicitly")


def scene_calibration(mtl: Mapping[str, str], instrument: str, bands: list[str],
                      path: str | Path = "MTL") -> dict[str, tuple[float, float]]:
    """Band name -> ``(scale, offset)`` to TOA reflectance (thermal: radiance) from a scene's MTL."""
    spacecraft = mtl_spacecraft(mtl)
    expected = SPACECRAFT.get(instrument)
    if expected is None:
        raise LandSegError(f"no calibration for {instrument!r}; known: {', '.join(INSTRUMENTS)}")
    if spacecraft is not None and spacecraft != expected:
        raise LandSegError(f"{path} describes a Landsat {spacecraft} scene, not Landsat {expected} ({instrument})")
    return {band: coefficients_from_mtl(mtl, instrument, band, path) for band in bands}
