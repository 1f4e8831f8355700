"""Legends of land-cover products and datasets, loaded from YAML data files.

A legend lists the classes of one product: native code, prompt-ready name,
colour, description and synonyms. The registry lives in ``data/legends/``,
one ``<key>.yaml`` per legend; :func:`load_legend_file` reads a user's legend
written in the same schema.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from landsegmenter.errors import LandSegError

UNKNOWN = 255
"""Value of :meth:`Legend.lookup_table` for codes that are not a class."""

_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{6})$")


def normalize_name(name: str) -> str:
    """Key used to compare class names: lower case, ``_``/``-`` as spaces, single spaces."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def parse_color(value: Any) -> tuple[int, int, int]:
    """``"#RRGGBB"``, ``"RRGGBB"`` or ``[r, g, b]`` (0..255) -> ``(r, g, b)``."""
    if isinstance(value, str):
        match = _HEX_COLOR.match(value.strip())
        if match:
            hex_digits = match.group(1)
            return tuple(int(hex_digits[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]
    elif isinstance(value, (list, tuple)) and len(value) == 3:
        if all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in value):
            return tuple(value)  # type: ignore[return-value]
    raise LandSegError(f"invalid colour {value!r}: use '#RRGGBB' or [r, g, b] with 0..255")


@dataclass(frozen=True)
class LegendClass:
    """One class of a legend.

    ``hierarchy`` holds the names of the parent classes of hierarchical
    nomenclatures, top level first (e.g. CORINE level 1 and level 2).
    """

    code: int
    name: str
    color: tuple[int, int, int]
    description: str = ""
    synonyms: tuple[str, ...] = ()
    official_name: str = ""
    hierarchy: tuple[str, ...] = ()

    @property
    def lookup_names(self) -> tuple[str, ...]:
        """Name, official name and synonyms, normalised and de-duplicated."""
        keys = (self.name, self.official_name, *self.synonyms)
        return tuple(dict.fromkeys(normalize_name(k) for k in keys if k))


@dataclass(frozen=True)
class Legend:
    """The classes of one product; class ``i`` of ``classes`` has contiguous index ``i``."""

    key: str
    title: str
    classes: tuple[LegendClass, ...]
    nodata: tuple[int, ...] = ()
    source: str = ""
    version: str = ""
    citation: str = ""
    notes: str = ""
    color_source: str = ""
    aliases: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        _check_classes(self.key, self.classes, self.nodata)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.classes)

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(c.code for c in self.classes)

    @property
    def colors(self) -> tuple[tuple[int, int, int], ...]:
        return tuple(c.color for c in self.classes)

    def __len__(self) -> int:
        return len(self.classes)

    @cached_property
    def _by_code(self) -> dict[int, LegendClass]:
        return {c.code: c for c in self.classes}

    @cached_property
    def _by_lookup_name(self) -> dict[str, LegendClass]:
        return {key: c for c in self.classes for key in c.lookup_names}

    def by_code(self, code: int) -> LegendClass:
        try:
            return self._by_code[int(code)]
        except KeyError:
            raise LandSegError(
                f"code {code} is not a class of legend '{self.key}' (codes: {_short_list(self.codes)})"
            ) from None

    def by_name(self, name: str) -> LegendClass:
        """Class whose name, official name or synonym matches (case/underscore-insensitive)."""
        found = self.find(name)
        if found is None:
            raise LandSegError(
                f"'{name}' is not a class of legend '{self.key}' (classes: {_short_list(self.names)})"
            )
        return found

    def find(self, name: str) -> LegendClass | None:
        """Like :meth:`by_name`, but ``None`` when no class matches."""
        return self._by_lookup_name.get(normalize_name(name))

    def index_of(self, code: int) -> int:
        """Contiguous index ``0..K-1`` of a native code."""
        return self.classes.index(self.by_code(code))

    def lookup_table(self) -> np.ndarray:
        """``uint8 [N]`` with ``lut[native_code] = index``; other codes (nodata too) -> 255.

        ``N >= 256``, so any ``uint8`` raster can be indexed directly: ``lut[labels]``.
        """
        size = max(256, max(self.codes) + 1)
        lut = np.full(size, UNKNOWN, dtype=np.uint8)
        lut[list(self.codes)] = np.arange(len(self.classes), dtype=np.uint8)
        return lut

    def to_index(self, labels: np.ndarray) -> np.ndarray:
        """Native codes ``[...]`` -> contiguous indices ``uint8 [...]``, nodata -> 255.

        Codes that are neither a class nor nodata raise :class:`LandSegError`
        with the number of such pixels, so label errors never pass silently.
        """
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise LandSegError(f"legend '{self.key}': labels must be integers, got {labels.dtype}")
        lut = self.lookup_table()
        if labels.size and int(labels.min()) >= 0 and int(labels.max()) < lut.size:
            index = lut[labels]
        else:
            in_range = (labels >= 0) & (labels < lut.size)
            index = np.full(labels.shape, UNKNOWN, dtype=np.uint8)
            index[in_range] = lut[labels[in_range]]
        not_class = labels[index == UNKNOWN]
        unknown = not_class[~np.isin(not_class, self.nodata)]
        if unknown.size:
            values = np.unique(unknown)
            raise LandSegError(
                f"{unknown.size} pixels have codes that are not classes of legend '{self.key}' "
                f"(values: {_short_list(tuple(int(v) for v in values), 8)})"
            )
        return index

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Contiguous index -> RGBA, as ``rasterio``'s ``write_colormap`` takes it."""
        return {i: (*c.color, 255) for i, c in enumerate(self.classes)}

    def native_colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """Native code -> RGBA, for rasters that keep the product's codes."""
        return {c.code: (*c.color, 255) for c in self.classes}


def _short_list(items: tuple[Any, ...], limit: int = 12) -> str:
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _check_classes(key: str, classes: tuple[LegendClass, ...], nodata: tuple[int, ...]) -> None:
    if not classes:
        raise LandSegError(f"legend '{key}' has no classes")
    if len(classes) > UNKNOWN:
        raise LandSegError(f"legend '{key}' has {len(classes)} classes; at most {UNKNOWN} are supported")
    codes: dict[int, str] = {}
    names: dict[str, int] = {}
    for cls in classes:
        where = f"legend '{key}', class {cls.code} '{cls.name}'"
        if cls.code < 0:
            raise LandSegError(f"{where}: codes must be >= 0")
        if cls.code in codes:
            raise LandSegError(f"{where}: duplicate code {cls.code} (also '{codes[cls.code]}')")
        if cls.code in nodata:
            raise LandSegError(f"{where}: code {cls.code} is also listed as nodata")
        if not normalize_name(cls.name):
            raise LandSegError(f"{where}: empty name")
        codes[cls.code] = cls.name
        for lookup in cls.lookup_names:
            other = names.setdefault(lookup, cls.code)
            if other != cls.code:
                raise LandSegError(f"{where}: name or synonym '{lookup}' is also used by class {other}")
        parse_color(list(cls.color))


LEGEND_KEYS = frozenset(
    {"key", "title", "version", "aliases", "source", "citation", "nodata", "color_source", "notes", "classes"}
)
CLASS_KEYS = frozenset({"code", "name", "official_name", "color", "description", "synonyms", "hierarchy"})


def legend_from_dict(doc: Mapping[str, Any], origin: str) -> Legend:
    """Build a :class:`Legend` from the YAML schema; ``origin`` names the file in errors."""
    if not isinstance(doc, Mapping):
        raise LandSegError(f"{origin}: a legend must be a mapping with 'key', 'title' and 'classes'")
    unknown = sorted(set(doc) - LEGEND_KEYS)
    if unknown:
        raise LandSegError(f"{origin}: unknown legend field(s) {unknown}; allowed: {sorted(LEGEND_KEYS)}")
    for required in ("key", "classes"):
        if required not in doc:
            raise LandSegError(f"{origin}: missing '{required}'")
    if not isinstance(doc["classes"], list):
        raise LandSegError(f"{origin}: 'classes' must be a list of mappings")
    classes = tuple(_class_from_dict(entry, origin) for entry in doc["classes"])
    try:
        return Legend(
            key=str(doc["key"]),
            title=str(doc.get("title", doc["key"])),
            classes=classes,
            nodata=_int_tuple(doc.get("nodata", ()), f"{origin}: nodata"),
            source=str(doc.get("source", "")),
            version=str(doc.get("version", "")),
            citation=str(doc.get("citation", "")).strip(),
            notes=str(doc.get("notes", "")).strip(),
            color_source=str(doc.get("color_source", "")).strip(),
            aliases=tuple(str(a) for a in doc.get("aliases", ())),
        )
    except LandSegError as err:
        raise LandSegError(f"{origin}: {err}") from None


def _class_from_dict(entry: Any, origin: str) -> LegendClass:
    if not isinstance(entry, Mapping) or "code" not in entry or "name" not in entry:
        raise LandSegError(f"{origin}: class entry {entry!r} needs at least 'code', 'name' and 'color'")
    unknown = sorted(set(entry) - CLASS_KEYS)
    if unknown:
        raise LandSegError(f"{origin}: class {entry['code']} '{entry['name']}': unknown field(s) {unknown}")
    code = entry["code"]
    if not isinstance(code, int) or isinstance(code, bool):
        raise LandSegError(f"{origin}: class entry {dict(entry)!r}: 'code' must be an integer")
    if "color" not in entry:
        raise LandSegError(f"{origin}: class {code} '{entry['name']}': missing 'color'")
    try:
        color = parse_color(entry["color"])
    except LandSegError as err:
        raise LandSegError(f"{origin}: class {code} '{entry['name']}': {err}") from None
    synonyms = entry.get("synonyms") or ()
    if isinstance(synonyms, str):
        synonyms = (synonyms,)
    return LegendClass(
        code=code,
        name=str(entry["name"]),
        color=color,
        description=str(entry.get("description", "")).strip(),
        synonyms=tuple(str(s) for s in synonyms),
        official_name=str(entry.get("official_name") or entry["name"]),
        hierarchy=tuple(str(h) for h in entry.get("hierarchy", ())),
    )


def _int_tuple(value: Any, what: str) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise LandSegError(f"{what} must be an integer or a list of integers, got {value!r}")
    return tuple(values)


def _read_yaml(path: Path | Traversable, origin: str) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as err:
        raise LandSegError(f"cannot read legend file {origin}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise LandSegError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from None


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_legend_file(path: str | Path) -> Legend:
    """Read and validate a legend YAML (schema of ``data/legends/*.yaml``); ``*.json`` as a sidecar."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return from_sidecar_json(path)
    return legend_from_dict(_read_yaml(path, str(path)), str(path))


def from_sidecar_json(path: str | Path) -> Legend:
    """Legend of a ``<name>.legend.json`` sidecar: ``nodata`` and ``classes`` of ``value``, ``name``, ``color``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LandSegError(f"cannot read legend sidecar {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise LandSegError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("classes"), list):
        raise LandSegError(f"{path}: a legend sidecar needs a 'classes' list")
    classes = []
    for entry in doc["classes"]:
        if not isinstance(entry, dict) or not {"value", "name", "color"} <= entry.keys():
            raise LandSegError(f"{path}: class entry {entry!r} needs 'value', 'name' and 'color'")
        classes.append(
            {
                "code": entry["value"],
                "name": normalize_name(str(entry["name"])),
                "official_name": entry["name"],
                "color": entry["color"],
                "description": entry.get("description", ""),
            }
        )
    key = path.name.removesuffix(".json").removesuffix(".legend")
    nodata = doc.get("nodata")
    return legend_from_dict(
        {
            "key": key,
            "title": key.replace("_", " "),
            "classes": classes,
            "nodata": [] if nodata is None else nodata,
            "source": str(path),
            "notes": str(doc.get("nodata_meaning", "")),
        },
        str(path),
    )


def _registry_dir() -> Traversable:
    return resources.files("landsegmenter.taxonomy").joinpath("data", "legends")


@cache
def _registry() -> dict[str, Legend]:
    legends: dict[str, Legend] = {}
    for entry in sorted(_registry_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        origin = f"taxonomy/data/legends/{entry.name}"
        legend = legend_from_dict(_read_yaml(entry, origin), origin)
        if legend.key != entry.name.removesuffix(".yaml"):
            raise LandSegError(f"{origin}: key '{legend.key}' does not match the file name")
        legends[legend.key] = legend
    return legends


@cache
def _aliases() -> dict[str, str]:
    table: dict[str, str] = {}
    for key, legend in _registry().items():
        for alias in (key, *legend.aliases):
            if table.setdefault(normalize_name(alias), key) != key:
                other = table[normalize_name(alias)]
                raise LandSegError(f"legend alias '{alias}' is used by both '{other}' and '{key}'")
    return table


def list_legends() -> list[str]:
    """Keys of the registered legends, sorted."""
    return sorted(_registry())


def resolve_key(key: str) -> str:
    """Registered key for a key or alias (case/underscore-insensitive)."""
    try:
        return _aliases()[normalize_name(key)]
    except KeyError:
        raise LandSegError(f"unknown legend '{key}'; known legends: {', '.join(list_legends())}") from None


LEGEND_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def legend_from_spec(spec: str | Path) -> Legend:
    """A legend file (``*.json`` sidecar, or YAML in the registry's schema) or a registered key."""
    path = Path(spec)
    if path.suffix.lower() in LEGEND_FILE_SUFFIXES or path.is_file():
        if not path.is_file():
            raise LandSegError(f"legend file not found: {spec}")
        return load_legend_file(path)
    return get_legend(str(spec))


def get_legend(key: str) -> Legend:
    """A registered legend by key or alias, e.g. ``"esa_worldcover_2021"`` or ``"dw"``."""
    return _registry()[resolve_key(key)]
