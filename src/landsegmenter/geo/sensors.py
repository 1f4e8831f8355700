"""Registry of satellite sensors: bands, wavelengths, scaling and normalisation.

The sensor table lives in ``geo/data/sensors.yaml``; this module only loads it
and answers questions about it (which band is ``"red"``, which sensor has bands
``B01..B12``, which band a file name refers to).

Names are matched loosely: case, the separators ``_ - . space`` and leading
zeros of numbers are ignored, so ``"B4"``, ``"b04"`` and ``"B_04"`` are the
same band and ``"Sentinel-2 L1C"`` is ``"sentinel2_l1c"``.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import PurePath
from typing import Any

import yaml

from landsegmenter.errors import LandSegError

_SEPARATORS = re.compile(r"[\s_\-.]+")
_LEADING_ZEROS = re.compile(r"(?<!\d)0+(?=\d)")
_PARENTHESES = re.compile(r"\(([^)]*)\)")
_BAND_NUMBER = re.compile(r"(?:band)?(\d+[a-z]?)")
# Words that describe a band's quantity or product, not which band it is: "band 1 reflectance",
# "sr_band3", "toa_band2", "bt_band6", "band 6 temperature".
_PRODUCT_WORDS = frozenset({
    "reflectance", "refl", "surface", "toa", "boa", "sr", "radiance", "temperature", "brightness", "bt", "dn",
})


def name_key(name: str) -> str:
    """Loose matching key: ``"B_04"`` -> ``"b4"``, ``"Sentinel-2 L1C"`` -> ``"sentinel2l1c"``."""
    return _LEADING_ZEROS.sub("", _SEPARATORS.sub("", name.strip().lower()))


@dataclass(frozen=True)
class Band:
    """One spectral (or SAR) band of a sensor.

    ``mean``/``std`` are in physical units, i.e. after ``DN * scale + offset``.
    ``scale``/``offset`` are per-band overrides of the sensor's values (e.g. the
    Landsat Collection-2 surface-temperature bands, which are stored in Kelvin
    with their own scaling); ``None`` means "use the sensor's".
    """

    name: str
    wavelength: float
    gsd: float
    mean: float
    std: float
    aliases: tuple[str, ...] = ()
    common_name: str = ""
    scale: float | None = None
    offset: float | None = None

    @property
    def lookup_keys(self) -> tuple[str, ...]:
        """Matching keys of every accepted name (canonical, aliases, common name)."""
        names = (self.name, *self.aliases, self.common_name)
        return tuple(dict.fromkeys(name_key(n) for n in names if n))


@dataclass(frozen=True)
class Sensor:
    """A sensor / product level: its bands in canonical order and its DN scaling.

    ``physical = DN * scale + offset`` (per band, see :attr:`band_scales`).
    ``variant_of`` names the registry entry this one shares its bands with
    (e.g. a different product scaling); band-name matching ignores variants.
    """

    name: str
    title: str
    bands: tuple[Band, ...]
    scale: float
    offset: float
    aliases: tuple[str, ...] = ()
    units: str = ""
    variant_of: str = ""
    calibration: str = ""  # instrument key of geo/calibration.py: DN -> TOA from an MTL file
    nodata: float | None = None  # fill value of the product (DN), always masked
    _index: dict[str, Band] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _index_bands(self.name, self.bands))

    @property
    def band_names(self) -> tuple[str, ...]:
        return tuple(b.name for b in self.bands)

    @property
    def wavelengths(self) -> tuple[float, ...]:
        """Centre wavelengths in µm, canonical band order."""
        return tuple(b.wavelength for b in self.bands)

    @property
    def means(self) -> tuple[float, ...]:
        """Default normalisation mean of each band, physical units."""
        return tuple(b.mean for b in self.bands)

    @property
    def stds(self) -> tuple[float, ...]:
        """Default normalisation standard deviation of each band, physical units."""
        return tuple(b.std for b in self.bands)

    @property
    def band_scales(self) -> tuple[float, ...]:
        """Effective DN -> physical scale of each band (band override or sensor scale)."""
        return tuple(self.scale if b.scale is None else b.scale for b in self.bands)

    @property
    def band_offsets(self) -> tuple[float, ...]:
        """Effective DN -> physical offset of each band (band override or sensor offset)."""
        return tuple(self.offset if b.offset is None else b.offset for b in self.bands)

    @property
    def lookup_keys(self) -> tuple[str, ...]:
        """Matching keys of the sensor's name and aliases."""
        return tuple(dict.fromkeys(name_key(n) for n in (self.name, *self.aliases)))

    def has_band(self, name: str) -> bool:
        return name_key(name) in self._index

    def band(self, name: str) -> Band:
        """The band called ``name`` (canonical name, alias or common name, case-insensitive)."""
        found = self._index.get(name_key(name))
        if found is None:
            raise LandSegError(
                f"unknown band {name!r} for sensor {self.name!r}; "
                f"valid bands: {', '.join(self.band_names)}"
            )
        return found

    def band_for_description(self, description: str) -> Band | None:
        """The band a file's band description names, or None.

        A description is a band name (``"B4"``, ``"SR_B4"``, ``"red"``), possibly with words
        saying what quantity or product it holds (``reflectance``, ``sr``, ``toa``, ``temperature``
        ...), which are dropped. What remains names the band directly or by its number:
        ``"band 1 reflectance"``, ``"sr_band3"``, ``"toa_band2"`` and ``"B4_reflectance"`` are the
        bands whose name or alias is ``B1``, ``B3``, ``B2``, ``B4``. A name in parentheses
        (``"Band 4 (NIR) reflectance"``) is used when the rest names nothing, and must agree with it.
        """
        direct = self._index.get(name_key(description))
        if direct is not None:
            return direct
        by_number = self._band_from_words(_PARENTHESES.sub(" ", description))
        in_parentheses = [b for b in map(self._band_from_words, _PARENTHESES.findall(description)) if b]
        by_name = in_parentheses[0] if in_parentheses else None
        if by_number is not None and by_name is not None and by_number is not by_name:
            raise LandSegError(
                f"band description {description!r} names two bands of sensor {self.name!r}: "
                f"{by_number.name} and {by_name.name}"
            )
        return by_number or by_name

    def _band_from_words(self, text: str) -> Band | None:
        words = [w for w in _SEPARATORS.split(text.strip().lower()) if w and w not in _PRODUCT_WORDS]
        key = name_key("".join(words))
        if not key:
            return None
        found = self._index.get(key)
        number = _BAND_NUMBER.fullmatch(key)
        if found is None and number is not None:
            found = self._index.get(f"b{number.group(1)}")
        return found

    def describes_band(self, description: str) -> bool:
        """Whether ``description`` names one band of this sensor (see :meth:`band_for_description`)."""
        try:
            return self.band_for_description(description) is not None
        except LandSegError:
            return False

    def select(self, names: Sequence[str]) -> tuple[Band, ...]:
        """Several bands in the given order; each band at most once."""
        if isinstance(names, str):
            names = [names]
        chosen: dict[str, str] = {}
        bands = []
        for name in names:
            band = self.band(name)
            if band.name in chosen:
                raise LandSegError(
                    f"band {name!r} selected twice for sensor {self.name!r} "
                    f"(same band as {chosen[band.name]!r})"
                )
            chosen[band.name] = name
            bands.append(band)
        return tuple(bands)

    def find_band_in_filename(self, filename: str) -> Band | None:
        """The band a file name refers to, e.g. ``"T33UUU_..._B8A.jp2"`` -> ``B8A``.

        The name is split at ``_ - . space``; tokens are tried from the end (band
        suffixes come last), a pair of tokens before a single one so that
        ``"..._green_i.tif"`` is ``green_i`` and not ``green`` and
        ``"..._SR_B4.TIF"`` hits the alias ``SR_B4``. Tokens must match whole,
        so ``B8`` never matches ``B8A`` and ``B1`` never ``B11``.
        """
        tokens = [t for t in _SEPARATORS.split(PurePath(filename).name) if t]
        for end in range(len(tokens), 0, -1):
            for width in (2, 1):
                if end - width < 0:
                    continue
                found = self._index.get(name_key("".join(tokens[end - width : end])))
                if found is not None:
                    return found
        return None


def _index_bands(sensor: str, bands: Sequence[Band]) -> dict[str, Band]:
    index: dict[str, Band] = {}
    for band in bands:
        for key in band.lookup_keys:
            other = index.setdefault(key, band)
            if other is not band:
                raise ValueError(
                    f"sensor {sensor!r}: name {key!r} is used by bands "
                    f"{other.name!r} and {band.name!r}"
                )
    return index


def _band_from_record(record: dict[str, Any]) -> Band:
    return Band(
        name=str(record["name"]),
        wavelength=float(record["wavelength"]),
        gsd=float(record["gsd"]),
        mean=float(record["mean"]),
        std=float(record["std"]),
        aliases=tuple(str(a) for a in record.get("aliases", ())),
        common_name=str(record.get("common_name", "")),
        scale=None if record.get("scale") is None else float(record["scale"]),
        offset=None if record.get("offset") is None else float(record["offset"]),
    )


def _sensor_from_record(name: str, record: dict[str, Any]) -> Sensor:
    return Sensor(
        name=name,
        title=str(record["title"]),
        bands=tuple(_band_from_record(b) for b in record["bands"]),
        scale=float(record["scale"]),
        offset=float(record.get("offset", 0.0)),
        aliases=tuple(str(a) for a in record.get("aliases", ())),
        units=str(record["units"]),
        variant_of=str(record.get("variant_of", "")),
        calibration=str(record.get("calibration", "")),
        nodata=None if record.get("nodata") is None else float(record["nodata"]),
    )


@functools.cache
def _registry() -> dict[str, Sensor]:
    """Matching key -> sensor, for every sensor name and alias in ``sensors.yaml``."""
    text = resources.files("landsegmenter.geo").joinpath("data/sensors.yaml").read_text("utf-8")
    records = yaml.safe_load(text)["sensors"]
    registry: dict[str, Sensor] = {}
    for name, record in records.items():
        sensor = _sensor_from_record(name, record)
        for key in sensor.lookup_keys:
            other = registry.setdefault(key, sensor)
            if other is not sensor:
                raise ValueError(
                    f"sensor name {key!r} is used by {other.name!r} and {sensor.name!r}"
                )
    return registry


def list_sensors() -> list[Sensor]:
    """Every registered sensor, in the order of the data file."""
    return list(dict.fromkeys(_registry().values()))


def get_sensor(name: str) -> Sensor:
    """The sensor called ``name`` (registry key or alias, case-insensitive)."""
    found = _registry().get(name_key(name))
    if found is None:
        known = ", ".join(s.name for s in list_sensors())
        raise LandSegError(f"unknown sensor {name!r}; known sensors: {known}")
    return found


def match_sensor_by_band_names(names: Sequence[str | None]) -> Sensor | None:
    """The sensor whose bands cover all ``names`` (e.g. a file's band descriptions,
    read as :meth:`Sensor.band_for_description` does).

    Among the sensors that cover them, the most specific wins: first the one
    whose spellings match most names verbatim (``"B02"`` is Sentinel-2's
    spelling, ``"B2"`` Landsat's), then the one with the fewest bands (a
    12-band stack without ``B10`` is Sentinel-2 L2A, with it L1C). Variants
    (same bands, other scaling) are not candidates. ``None`` when a name is
    empty, nothing covers the names, or the best two tie.
    """
    if not names or any(not n for n in names):
        return None
    candidates = [
        s for s in list_sensors() if not s.variant_of and all(s.describes_band(n) for n in names)
    ]
    if not candidates:
        return None
    scores = [_specificity(s, names) for s in candidates]
    winners = [s for s, score in zip(candidates, scores) if score == max(scores)]
    return winners[0] if len(winners) == 1 else None


def _specificity(sensor: Sensor, names: Sequence[str]) -> tuple[int, int]:
    """(names spelled exactly as in the registry, minus the band count): higher is more specific."""
    spellings = {n.lower() for b in sensor.bands for n in (b.name, *b.aliases, b.common_name) if n}
    verbatim = sum(n.strip().lower() in spellings for n in names)
    return verbatim, -len(sensor.bands)
