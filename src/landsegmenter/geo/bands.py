"""Which band of which file is which: names, wavelengths and scaling of a band stack."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import Sensor, get_sensor, match_sensor_by_band_names

WAVELENGTH_TAGS = ("center_wavelength_um", "CENTRAL_WAVELENGTH_UM", "wavelength_um", "wavelength")
# Longest accepted centre wavelength: thermal infrared ends near 14 µm, and the registry's
# SAR "wavelength" is DOFA's 5.405 token. Anything longer is a unit slip (nm for µm).
MAX_WAVELENGTH_UM = 20.0
TAG_TOLERANCE = 0.05  # relative disagreement of a file's wavelength tag with the chosen sensor


@dataclass(frozen=True)
class FileBand:
    """One band as found on disk, before it is matched to a sensor."""

    path: str
    index: int  # 1-based band index in its file
    description: str | None
    tag_wavelength: float | None
    file_scale: float
    file_offset: float


@dataclass(frozen=True)
class BandSpec:
    """One band of the stack the model sees."""

    source: FileBand
    name: str
    wavelength: float  # µm
    scale: float  # DN -> physical
    offset: float
    mean: float | None  # default normalisation (None: use scene statistics)
    std: float | None
    units: str | None = None  # of the physical value, e.g. "reflectance" (None: unknown)


def resolve_bands(
    file_bands: Sequence[FileBand],
    *,
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
    wavelengths: Sequence[float] | None = None,
) -> tuple[Sensor | None, list[BandSpec]]:
    """Name the file bands, select the requested ones and give each a wavelength.

    Wavelengths come from, in order: ``wavelengths`` (explicit, one per selected band),
    the sensor registry, band metadata (``center_wavelength_um`` tags or GDAL's
    ``CENTRAL_WAVELENGTH_UM`` imagery metadata).
    """
    sensor_obj = _pick_sensor(file_bands, sensor, explicit=wavelengths is not None)
    if sensor:
        _check_band_names_fit(file_bands, sensor_obj)
    named = _name_file_bands(file_bands, sensor_obj)
    chosen = _select(named, bands)
    if wavelengths is not None and len(wavelengths) != len(chosen):
        raise LandSegError(
            f"{len(wavelengths)} wavelengths given for {len(chosen)} bands "
            f"({', '.join(name for name, _ in chosen)}); give one wavelength (µm) per band"
        )
    for (name, _), value in zip(chosen, wavelengths or ()):
        _check_micrometres(float(value), f"--wavelengths value {value:g} (band {name})")
    specs = []
    for i, (name, fb) in enumerate(chosen):
        explicit = None if wavelengths is None else float(wavelengths[i])
        specs.append(_spec(fb, name, sensor_obj, explicit))
        if sensor and explicit is None:
            _check_tag_fits(specs[-1], sensor_obj)
    return sensor_obj, specs


def _check_micrometres(value: float, what: str) -> None:
    if value > MAX_WAVELENGTH_UM:
        raise LandSegError(
            f"{what} is above {MAX_WAVELENGTH_UM:g} µm: did you give nanometres? "
            f"{value:g} nm = {value / 1000:g} µm; wavelengths are in µm"
        )


def _check_band_names_fit(file_bands: Sequence[FileBand], sensor: Sensor) -> None:
    """Refuse a sensor whose bands the file's own band names are not, when they name another sensor's."""
    names = [fb.description for fb in file_bands]
    if not all(names) or all(sensor.has_band(n) for n in names):  # type: ignore[arg-type]
        return
    other = match_sensor_by_band_names(names)
    if other is None or other.name in (sensor.name, sensor.variant_of):
        return
    foreign = [n for n in names if not sensor.has_band(n)]  # type: ignore[arg-type]
    verb = "is not a" if len(foreign) == 1 else "are not"
    raise LandSegError(
        f"the bands of {Path(file_bands[0].path).name} are named as {other.name} bands "
        f"({', '.join(names)}), and {', '.join(foreign)} {verb} {sensor.name} band{'s' * (len(foreign) > 1)}: "  # type: ignore[arg-type]
        f"pass --sensor {other.name}, or leave --sensor out"
    )


def _check_tag_fits(spec: BandSpec, sensor: Sensor) -> None:
    """Refuse a sensor band whose wavelength the file's own metadata contradicts."""
    tag = spec.source.tag_wavelength
    if tag is None or not sensor.has_band(spec.name):
        return
    tag_um = tag / 1000 if tag > MAX_WAVELENGTH_UM else tag  # a tag in nm
    if abs(tag_um - spec.wavelength) > TAG_TOLERANCE * spec.wavelength:
        raise LandSegError(
            f"band {spec.source.index} of {Path(spec.source.path).name} is at {tag_um:g} µm by its metadata, "
            f"but {sensor.name} band {spec.name} is at {spec.wavelength:g} µm: is the scene from another sensor? "
            "pass the right --sensor, or --wavelengths"
        )


def _pick_sensor(file_bands: Sequence[FileBand], sensor: str | None, explicit: bool) -> Sensor | None:
    if sensor:
        return get_sensor(sensor)
    if explicit:
        return None
    descriptions = [fb.description for fb in file_bands]
    if all(descriptions):
        return match_sensor_by_band_names(descriptions)  # type: ignore[arg-type]
    return None


def _name_file_bands(file_bands: Sequence[FileBand], sensor: Sensor | None) -> list[tuple[str, FileBand]]:
    """Name every band: description, file name, or the sensor's canonical order."""
    single_file = len({fb.path for fb in file_bands}) == 1
    canonical = sensor is not None and single_file and len(file_bands) == len(sensor.bands)
    named = []
    for position, fb in enumerate(file_bands):
        name = _band_name(fb, sensor, canonical_name=sensor.bands[position].name if canonical else None)
        if name is None:
            name = fb.description or (Path(fb.path).stem if not single_file else f"band{fb.index}")
        named.append((name, fb))
    names = [n.lower() for n, _ in named]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise LandSegError(f"the scene has several bands named {', '.join(duplicates)}; name the files or bands uniquely")
    return named


def _band_name(fb: FileBand, sensor: Sensor | None, canonical_name: str | None) -> str | None:
    if sensor is None:
        return fb.description or None
    if fb.description:
        described = sensor.band_for_description(fb.description)
        if described is not None:
            return described.name
    if canonical_name is not None:
        return canonical_name
    found = sensor.find_band_in_filename(Path(fb.path).name)
    return found.name if found is not None else None


def _select(named: list[tuple[str, FileBand]], bands: Sequence[str] | None) -> list[tuple[str, FileBand]]:
    if not bands:
        return named
    by_name = {name.lower(): (name, fb) for name, fb in named}
    lowered = [b.strip().lower() for b in bands]
    if not all(lowered):
        raise LandSegError(f"empty band name in {','.join(bands)!r}: give band names such as B02,B03,B04")
    repeated = sorted({b for b in lowered if lowered.count(b) > 1})
    if repeated:
        raise LandSegError(f"band {repeated[0]!r} is selected twice")
    missing = [b for b in bands if b.strip().lower() not in by_name]
    if missing:
        available = ", ".join(name for name, _ in named)
        raise LandSegError(f"unknown band {missing[0]!r}; the scene has bands: {available}")
    return [by_name[b] for b in lowered]


def _spec(fb: FileBand, name: str, sensor: Sensor | None, explicit_wavelength: float | None) -> BandSpec:
    sensor_band = None
    if sensor is not None:
        try:
            sensor_band = sensor.band(name)
        except LandSegError:
            sensor_band = None
    wavelength = explicit_wavelength
    if wavelength is None and sensor_band is not None:
        wavelength = sensor_band.wavelength
    if wavelength is None and fb.tag_wavelength is not None:
        wavelength = fb.tag_wavelength
        _check_micrometres(wavelength, f"the wavelength {wavelength:g} in the metadata of band {name!r} of {fb.path}")
    if wavelength is None:
        raise LandSegError(
            f"cannot tell the wavelength of band {name!r}: pass --sensor (see 'landseg sensors') or --wavelengths"
        )
    if wavelength <= 0:
        raise LandSegError(f"wavelength of band {name!r} must be positive (µm), got {wavelength}")
    file_scaled = fb.file_scale != 1.0 or fb.file_offset != 0.0
    if file_scaled:  # the file already says how to reach physical values: trust it over the sensor default
        scale, offset = fb.file_scale, fb.file_offset
    elif sensor_band is not None and sensor_band.scale is not None:  # e.g. Landsat thermal bands in kelvin
        scale, offset = sensor_band.scale, sensor_band.offset or 0.0
    elif sensor is not None:
        scale, offset = sensor.scale, sensor.offset
    else:
        scale, offset = 1.0, 0.0
    mean = sensor_band.mean if sensor_band is not None else None
    std = sensor_band.std if sensor_band is not None else None
    units = sensor.units if sensor is not None else None
    return BandSpec(fb, name, float(wavelength), scale, offset, mean, std, units)
