"""The YAML manifest of a LAS-style training set: subsets of imagery + label product + sampling.

A manifest names its subsets; each subset pairs one kind of imagery (one sensor, one band
set) with one label product (one legend) and says how to sample patches. Every key is
checked: a misspelt key is an error, never silently ignored. Strings may use
``${name}`` / ``${name:-default}``: ``name`` is looked up in the manifest's ``paths``
mapping first, then in the environment. Relative paths are relative to the manifest file.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import get_sensor

SPLITS = ("train", "val", "test")
STRATEGIES = ("balanced", "random", "grid")
LABEL_KINDS = ("weak", "precise")
QUALITIES = ("ok", "low")
LABEL_RESAMPLING = ("auto", "nearest", "mode")
UNKNOWN_CODE_POLICIES = ("report", "error")

MANIFEST_KEYS = {"version", "name", "description", "paths", "defaults", "subsets"}
SUBSET_KEYS = {"description", "imagery", "label", "cloud_mask", "sampling", "scenes", "scenes_csv", "splits"}
IMAGERY_KEYS = {"sensor", "bands", "wavelengths", "scale", "offset", "nodata", "gsd", "date", "stac", "simulated_from"}
LABEL_KEYS = {
    "legend",
    "taxonomy",
    "kind",
    "product",
    "quality",
    "resampling",
    "unknown_codes",
    "field",
    "date",
    "stac",
}
CLOUD_MASK_KEYS = {"values"}
SAMPLING_KEYS = {
    "strategy",
    "patch_size",
    "gsd",
    "samples_per_scene",
    "stride",
    "min_spacing",
    "min_valid_fraction",
    "min_labelled_fraction",
    "max_cloud_fraction",
    "land_only",
    "max_water_fraction",
    "water_classes",
    "seed",
}
SCENE_KEYS = {"id", "image", "label", "cloud_mask", "date", "label_date", "split", "window", "location"}
CSV_KEYS = {"path", "id", "image", "label", "cloud_mask", "date", "label_date", "split", "split_map"}
STAC_KEYS = {"catalog", "api", "collections", "ids", "bbox", "datetime", "query", "assets", "max_items"}
DEFAULTS_KEYS = {"sampling"}

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class StacQuery:
    """Items from a static catalogue (``catalog``: path/URL of catalog.json) or an API (``api``)."""

    catalog: str | None = None
    api: str | None = None
    collections: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    datetime: str | None = None
    query: Mapping[str, Any] | None = None
    assets: tuple[str, ...] = ()
    max_items: int | None = None


@dataclass(frozen=True)
class ImagerySpec:
    sensor: str | None = None
    bands: tuple[str, ...] | None = None
    wavelengths: tuple[float, ...] | None = None
    scale: float | None = None  # DN -> physical, overrides the sensor's (e.g. L1 DN of a sensor registered as L2)
    offset: float | None = None
    nodata: float | None = None  # DN meaning "no data" in files that do not declare one
    gsd: float | None = None  # metres; required for imagery without georeferencing
    date: dt.date | None = None
    stac: StacQuery | None = None
    simulated_from: str | None = None  # registered sensor of the image the bands were simulated from (recorded)


@dataclass(frozen=True)
class LabelSpec:
    legend: str | Mapping[str, Any]  # registry key, legend file (YAML or .legend.json) or inline legend
    taxonomy: str | None = None  # name recorded in the store (default: the legend's key)
    kind: str = "weak"
    product: str = ""
    quality: str = "ok"  # "low": out of domain, excluded from training by default
    resampling: str = "auto"
    unknown_codes: str = "report"
    field: str | None = None  # property holding the class of vector labels
    date: dt.date | None = None
    stac: StacQuery | None = None


@dataclass(frozen=True)
class CloudMaskSpec:
    values: tuple[int, ...] = (1,)


@dataclass(frozen=True)
class SamplingSpec:
    strategy: str = "balanced"
    patch_size: int = 128
    gsd: float | None = None  # target metres per pixel (default: the imagery's)
    samples_per_scene: int | None = None
    stride: int | None = None  # candidate lattice step in pixels (default patch_size // 2)
    min_spacing: int | None = None  # pixels between patch origins in x or y (default patch_size: no overlap)
    min_valid_fraction: float = 0.9
    min_labelled_fraction: float = 0.5
    max_cloud_fraction: float = 0.5
    land_only: bool = False
    max_water_fraction: float = 0.5
    water_classes: tuple[str, ...] | None = None
    seed: int = 0

    @property
    def lattice_step(self) -> int:
        return self.stride or max(1, self.patch_size // 2)

    @property
    def spacing(self) -> int:
        return self.patch_size if self.min_spacing is None else self.min_spacing


@dataclass(frozen=True)
class SceneSpec:
    """One image (one or several files on one grid) with its label product and options."""

    id: str
    image: tuple[str, ...]
    label: str | None = None
    cloud_mask: str | None = None
    date: dt.date | None = None
    label_date: dt.date | None = None
    split: str = "train"
    window: tuple[int, int, int, int] | None = None  # col_off, row_off, width, height in image pixels
    location: tuple[float, float] | None = None  # approximate lon, lat of imagery without georeferencing


@dataclass(frozen=True)
class CsvScenes:
    """Scenes listed in a CSV table: each field names the column that holds it."""

    path: str
    id: str
    image: str
    label: str | None = None
    cloud_mask: str | None = None
    date: str | None = None
    label_date: str | None = None
    split: str | None = None
    split_map: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubsetSpec:
    name: str
    imagery: ImagerySpec
    label: LabelSpec
    sampling: SamplingSpec
    scenes: tuple[SceneSpec, ...] = ()
    scenes_csv: CsvScenes | None = None
    cloud_mask: CloudMaskSpec | None = None
    splits: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def digest(self) -> str:
        """Short hash of the subset's definition, to refuse resuming a store built from another one."""
        text = json.dumps(self.raw, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Manifest:
    name: str
    subsets: tuple[SubsetSpec, ...]
    description: str = ""
    path: Path | None = None

    def subset(self, name: str) -> SubsetSpec:
        for subset in self.subsets:
            if subset.name == name:
                return subset
        raise LandSegError(f"no subset {name!r} in the manifest; subsets: {', '.join(s.name for s in self.subsets)}")


def load_manifest(path: str | Path) -> Manifest:
    """Read and check a manifest file; relative paths become absolute (relative to the file)."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LandSegError(f"cannot read manifest {path}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise LandSegError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return manifest_from_dict(doc, base=path.resolve().parent, origin=str(path))


def manifest_from_dict(doc: Any, base: Path, origin: str = "manifest") -> Manifest:
    """Build a :class:`Manifest` from its parsed YAML; ``base`` anchors relative paths."""
    _require_mapping(doc, origin)
    _check_keys(doc, MANIFEST_KEYS, origin)
    if doc.get("version", 1) != 1:
        raise LandSegError(f"{origin}: unsupported manifest version {doc.get('version')!r} (expected 1)")
    paths = _expand_paths(doc.get("paths") or {}, base, origin)
    ctx = _Context(base, paths, origin)
    defaults = doc.get("defaults") or {}
    _require_mapping(defaults, f"{origin}: defaults")
    _check_keys(defaults, DEFAULTS_KEYS, f"{origin}: defaults")
    subsets_doc = doc.get("subsets")
    if not isinstance(subsets_doc, Mapping) or not subsets_doc:
        raise LandSegError(f"{origin}: 'subsets' must be a non-empty mapping of subset name -> definition")
    subsets = tuple(_subset(str(name), body, defaults.get("sampling") or {}, ctx) for name, body in subsets_doc.items())
    return Manifest(
        name=str(doc.get("name") or Path(origin).stem),
        subsets=subsets,
        description=str(doc.get("description") or "").strip(),
        path=None if origin == "manifest" else Path(origin),
    )


@dataclass(frozen=True)
class _Context:
    base: Path
    paths: Mapping[str, str]
    origin: str

    def expand(self, text: str) -> str:
        return _substitute(text, self.paths, self.origin)

    def path(self, text: str) -> str:
        value = self.expand(str(text))
        if "://" in value or value.startswith("/vsi"):
            return value
        return str((self.base / value).resolve()) if not Path(value).is_absolute() else value


def _substitute(text: str, paths: Mapping[str, str], origin: str) -> str:
    def replace(match: re.Match) -> str:
        name, default = match.group(1), match.group(2)
        if name in paths:
            return paths[name]
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise LandSegError(f"{origin}: ${{{name}}} is neither in 'paths' nor set in the environment")

    return _VARIABLE.sub(replace, text)


def _expand_paths(doc: Any, base: Path, origin: str) -> dict[str, str]:
    _require_mapping(doc, f"{origin}: paths")
    resolved: dict[str, str] = {}
    for name, value in doc.items():
        expanded = _substitute(str(value), resolved, origin)
        resolved[str(name)] = expanded if Path(expanded).is_absolute() else str((base / expanded).resolve())
    return resolved


def _subset(name: str, body: Any, sampling_defaults: Mapping[str, Any], ctx: _Context) -> SubsetSpec:
    where = f"{ctx.origin}: subset '{name}'"
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise LandSegError(f"{where}: subset names may use letters, digits, '_', '-' and '.' only")
    _require_mapping(body, where)
    _check_keys(body, SUBSET_KEYS, where)
    for required in ("imagery", "label"):
        if required not in body:
            raise LandSegError(f"{where}: missing '{required}'")
    imagery = _imagery(body["imagery"], ctx, f"{where}: imagery")
    label = _label(body["label"], ctx, f"{where}: label")
    sampling = _sampling({**sampling_defaults, **(body.get("sampling") or {})}, f"{where}: sampling")
    scenes = tuple(
        _scene(s, i, imagery, label, ctx, f"{where}: scenes[{i}]") for i, s in enumerate(body.get("scenes") or ())
    )
    csv = _csv(body["scenes_csv"], ctx, f"{where}: scenes_csv") if body.get("scenes_csv") else None
    if not scenes and csv is None and imagery.stac is None:
        raise LandSegError(f"{where}: give 'scenes', 'scenes_csv' or 'imagery: stac:'")
    _check_unique([s.id for s in scenes], f"{where}: scenes")
    raw = {
        "imagery": body["imagery"],
        "label": body["label"],
        "sampling": sampling.__dict__,
        "scenes": [s.__dict__ for s in scenes],
        "scenes_csv": body.get("scenes_csv"),
        "cloud_mask": body.get("cloud_mask"),
        "splits": body.get("splits"),
    }
    return SubsetSpec(
        name=name,
        imagery=imagery,
        label=label,
        sampling=sampling,
        scenes=scenes,
        scenes_csv=csv,
        cloud_mask=_cloud_mask(body["cloud_mask"], f"{where}: cloud_mask") if body.get("cloud_mask") else None,
        splits=_splits(body.get("splits") or {}, f"{where}: splits"),
        description=str(body.get("description") or "").strip(),
        raw=json.loads(json.dumps(raw, default=str)),
    )


def _imagery(doc: Any, ctx: _Context, where: str) -> ImagerySpec:
    _require_mapping(doc, where)
    _check_keys(doc, IMAGERY_KEYS, where)
    return ImagerySpec(
        sensor=_opt_str(doc.get("sensor")),
        bands=_str_tuple(doc["bands"], f"{where}: bands") if doc.get("bands") else None,
        wavelengths=_float_tuple(doc["wavelengths"], f"{where}: wavelengths") if doc.get("wavelengths") else None,
        scale=_opt_float(doc.get("scale"), f"{where}: scale"),
        offset=_opt_float(doc.get("offset"), f"{where}: offset"),
        nodata=_opt_float(doc.get("nodata"), f"{where}: nodata"),
        gsd=_positive(doc.get("gsd"), f"{where}: gsd"),
        date=parse_date(doc.get("date"), f"{where}: date"),
        stac=_stac(doc["stac"], ctx, f"{where}: stac") if doc.get("stac") else None,
        simulated_from=_registered_sensor(doc.get("simulated_from"), f"{where}: simulated_from"),
    )


def _registered_sensor(value: Any, where: str) -> str | None:
    if value is None:
        return None
    try:
        return get_sensor(str(value)).name
    except LandSegError as err:
        raise LandSegError(f"{where}: {err}") from None


def _label(doc: Any, ctx: _Context, where: str) -> LabelSpec:
    _require_mapping(doc, where)
    _check_keys(doc, LABEL_KEYS, where)
    if "legend" not in doc:
        raise LandSegError(f"{where}: missing 'legend' (a registered legend key, a legend file or an inline legend)")
    legend = doc["legend"]
    if isinstance(legend, str) and _looks_like_path(legend):
        legend = ctx.path(legend)
    elif not isinstance(legend, (str, Mapping)):
        raise LandSegError(f"{where}: 'legend' must be a legend key, a file path or a mapping")
    return LabelSpec(
        legend=legend,
        taxonomy=_opt_str(doc.get("taxonomy")),
        kind=_choice(doc.get("kind", "weak"), LABEL_KINDS, f"{where}: kind"),
        product=str(doc.get("product") or ""),
        quality=_choice(doc.get("quality", "ok"), QUALITIES, f"{where}: quality"),
        resampling=_choice(doc.get("resampling", "auto"), LABEL_RESAMPLING, f"{where}: resampling"),
        unknown_codes=_choice(doc.get("unknown_codes", "report"), UNKNOWN_CODE_POLICIES, f"{where}: unknown_codes"),
        field=_opt_str(doc.get("field")),
        date=parse_date(doc.get("date"), f"{where}: date"),
        stac=_stac(doc["stac"], ctx, f"{where}: stac") if doc.get("stac") else None,
    )


def _sampling(doc: Mapping[str, Any], where: str) -> SamplingSpec:
    _require_mapping(doc, where)
    _check_keys(doc, SAMPLING_KEYS, where)
    spec = SamplingSpec(
        strategy=_choice(doc.get("strategy", "balanced"), STRATEGIES, f"{where}: strategy"),
        patch_size=_positive_int(doc.get("patch_size", 128), f"{where}: patch_size"),
        gsd=_positive(doc.get("gsd"), f"{where}: gsd"),
        samples_per_scene=_positive_int(doc["samples_per_scene"], f"{where}: samples_per_scene")
        if doc.get("samples_per_scene") is not None
        else None,
        stride=_positive_int(doc["stride"], f"{where}: stride") if doc.get("stride") is not None else None,
        min_spacing=_nonnegative_int(doc["min_spacing"], f"{where}: min_spacing")
        if doc.get("min_spacing") is not None
        else None,
        min_valid_fraction=_fraction(doc.get("min_valid_fraction", 0.9), f"{where}: min_valid_fraction"),
        min_labelled_fraction=_fraction(doc.get("min_labelled_fraction", 0.5), f"{where}: min_labelled_fraction"),
        max_cloud_fraction=_fraction(doc.get("max_cloud_fraction", 0.5), f"{where}: max_cloud_fraction"),
        land_only=_bool(doc.get("land_only", False), f"{where}: land_only"),
        max_water_fraction=_fraction(doc.get("max_water_fraction", 0.5), f"{where}: max_water_fraction"),
        water_classes=_str_tuple(doc["water_classes"], f"{where}: water_classes") if doc.get("water_classes") else None,
        seed=_nonnegative_int(doc.get("seed", 0), f"{where}: seed"),
    )
    if spec.patch_size % spec.lattice_step:
        raise LandSegError(f"{where}: patch_size {spec.patch_size} must be a multiple of stride {spec.lattice_step}")
    return spec


def _scene(doc: Any, index: int, imagery: ImagerySpec, label: LabelSpec, ctx: _Context, where: str) -> SceneSpec:
    _require_mapping(doc, where)
    _check_keys(doc, SCENE_KEYS, where)
    if "image" not in doc:
        raise LandSegError(f"{where}: missing 'image'")
    images = doc["image"] if isinstance(doc["image"], list) else [doc["image"]]
    first = Path(ctx.expand(str(images[0]))).stem
    return SceneSpec(
        id=str(doc.get("id") or first),
        image=tuple(ctx.path(p) for p in images),
        label=ctx.path(doc["label"]) if doc.get("label") else None,
        cloud_mask=ctx.path(doc["cloud_mask"]) if doc.get("cloud_mask") else None,
        date=parse_date(doc.get("date"), f"{where}: date") or imagery.date,
        label_date=parse_date(doc.get("label_date"), f"{where}: label_date") or label.date,
        split=_choice(doc.get("split", "train"), SPLITS, f"{where}: split"),
        window=_window(doc["window"], f"{where}: window") if doc.get("window") is not None else None,
        location=_location(doc["location"], f"{where}: location") if doc.get("location") is not None else None,
    )


def _csv(doc: Any, ctx: _Context, where: str) -> CsvScenes:
    _require_mapping(doc, where)
    _check_keys(doc, CSV_KEYS, where)
    for required in ("path", "id", "image"):
        if not doc.get(required):
            raise LandSegError(f"{where}: missing '{required}'")
    split_map = doc.get("split_map") or {}
    _require_mapping(split_map, f"{where}: split_map")
    for value in split_map.values():
        _choice(value, SPLITS, f"{where}: split_map")
    return CsvScenes(
        path=ctx.path(doc["path"]),
        **{k: _opt_str(doc.get(k)) for k in ("id", "image", "label", "cloud_mask", "date", "label_date", "split")},
        split_map={str(k): str(v) for k, v in split_map.items()},
    )


def _stac(doc: Any, ctx: _Context, where: str) -> StacQuery:
    _require_mapping(doc, where)
    _check_keys(doc, STAC_KEYS, where)
    if bool(doc.get("catalog")) == bool(doc.get("api")):
        raise LandSegError(f"{where}: give exactly one of 'catalog' (a static catalogue) or 'api' (a STAC API URL)")
    bbox = _float_tuple(doc["bbox"], f"{where}: bbox") if doc.get("bbox") else None
    if bbox is not None and len(bbox) != 4:
        raise LandSegError(f"{where}: bbox must be [west, south, east, north]")
    query = doc.get("query")
    if query is not None:
        _require_mapping(query, f"{where}: query")
    return StacQuery(
        catalog=ctx.path(doc["catalog"]) if doc.get("catalog") else None,
        api=ctx.expand(str(doc["api"])) if doc.get("api") else None,
        collections=_str_tuple(doc.get("collections") or (), f"{where}: collections"),
        ids=_str_tuple(doc.get("ids") or (), f"{where}: ids"),
        bbox=bbox,  # type: ignore[arg-type]
        datetime=str(doc["datetime"]) if doc.get("datetime") else None,
        query=query,
        assets=_str_tuple(doc.get("assets") or (), f"{where}: assets"),
        max_items=_positive_int(doc["max_items"], f"{where}: max_items") if doc.get("max_items") else None,
    )


def _cloud_mask(doc: Any, where: str) -> CloudMaskSpec:
    _require_mapping(doc, where)
    _check_keys(doc, CLOUD_MASK_KEYS, where)
    values = doc.get("values", [1])
    values = values if isinstance(values, list) else [values]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise LandSegError(f"{where}: values must be a list of integer mask codes meaning 'cloud'")
    return CloudMaskSpec(values=tuple(values))


def _splits(doc: Any, where: str) -> dict[str, tuple[str, ...]]:
    _require_mapping(doc, where)
    _check_keys(doc, set(SPLITS), where)
    return {split: _str_tuple(ids, f"{where}: {split}") for split, ids in doc.items()}


# ---------------------------------------------------------------- value checks


def parse_date(value: Any, where: str = "date") -> dt.date | None:
    """``2017-02-16``, ``20170216``, a datetime, or a name holding ``YYYYMMDD`` (e.g. ``S1B_..._20170612T165809``)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        pass
    match = re.search(r"(?<!\d)((?:19|20)\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)", text)
    if match:
        return dt.date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    raise LandSegError(f"{where}: cannot read {value!r} as a date (use YYYY-MM-DD)")


def _check_keys(doc: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in doc if k not in allowed)
    if unknown:
        raise LandSegError(
            f"{where}: unknown key(s) {', '.join(repr(k) for k in unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def _check_unique(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for scene_id in ids:
        if scene_id in seen:
            raise LandSegError(f"{where}: duplicate scene id {scene_id!r}; give each scene a unique 'id'")
        seen.add(scene_id)


def _require_mapping(doc: Any, where: str) -> None:
    if not isinstance(doc, Mapping):
        raise LandSegError(f"{where}: expected a mapping, got {type(doc).__name__}")


def _looks_like_path(text: str) -> bool:
    return "/" in text or text.endswith((".yaml", ".yml", ".json")) or "${" in text


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    if value not in allowed:
        raise LandSegError(f"{where}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _str_tuple(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)):
        raise LandSegError(f"{where}: expected a list of names")
    return tuple(str(v) for v in values)


def _float_tuple(value: Any, where: str) -> tuple[float, ...]:
    if not isinstance(value, (list, tuple)):
        raise LandSegError(f"{where}: expected a list of numbers")
    try:
        return tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise LandSegError(f"{where}: expected a list of numbers, got {value!r}") from None


def _opt_float(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LandSegError(f"{where}: expected a number, got {value!r}")
    return float(value)


def _positive(value: Any, where: str) -> float | None:
    number = _opt_float(value, where)
    if number is not None and number <= 0:
        raise LandSegError(f"{where}: must be positive, got {value!r}")
    return number


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise LandSegError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _nonnegative_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LandSegError(f"{where}: expected an integer >= 0, got {value!r}")
    return value


def _fraction(value: Any, where: str) -> float:
    number = _opt_float(value, where)
    if number is None or not 0.0 <= number <= 1.0:
        raise LandSegError(f"{where}: expected a fraction between 0 and 1, got {value!r}")
    return number


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise LandSegError(f"{where}: expected true or false, got {value!r}")
    return value


def _window(value: Any, where: str) -> tuple[int, int, int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 4 and all(isinstance(v, int) for v in value)):
        raise LandSegError(f"{where}: expected [col_off, row_off, width, height] in pixels")
    if value[0] < 0 or value[1] < 0 or value[2] <= 0 or value[3] <= 0:
        raise LandSegError(f"{where}: offsets must be >= 0 and sizes > 0, got {list(value)}")
    return tuple(value)  # type: ignore[return-value]


def _location(value: Any, where: str) -> tuple[float, float]:
    lon, lat = _float_tuple(value, where) if isinstance(value, (list, tuple)) and len(value) == 2 else (None, None)
    if lon is None or not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise LandSegError(f"{where}: expected [lon, lat] in degrees")
    return lon, lat
