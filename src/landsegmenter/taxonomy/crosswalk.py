"""Crosswalks: code-to-code mappings between two registered legends.

Each crosswalk lives in ``data/crosswalks/<source>__<target>.yaml`` with a
``mapping`` from every native source code to a native target code, or
``null`` where the target legend has no matching class, plus the caveats of
the mapping.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any, Mapping

import numpy as np
import yaml

from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend, resolve_key

_MAX_LUT_SPAN = 1 << 24


@dataclass(frozen=True)
class Crosswalk:
    """Maps native ``source`` legend codes to native ``target`` legend codes (``None``: no target class)."""

    source: str
    target: str
    mapping: dict[int, int | None] = field(hash=False)
    source_nodata: tuple[int, ...] = ()
    caveats: str = ""

    def apply(self, labels: np.ndarray, nodata: int = 255) -> np.ndarray:
        """Recode a label array ``[...]`` of source codes into target codes ``[...]``.

        Source nodata codes, codes mapped to ``None`` and input pixels equal to
        ``nodata`` (unless it is a source class code) become ``nodata``. Codes
        absent from the mapping raise :class:`LandSegError` with their pixel
        count. The output has the smallest integer dtype holding the target
        codes and ``nodata``.
        """
        name = f"crosswalk {self.source} -> {self.target}"
        labels = np.asarray(labels)
        if not np.issubdtype(labels.dtype, np.integer):
            raise LandSegError(f"{name}: labels must be integers, got {labels.dtype}")
        targets = [t for t in self.mapping.values() if t is not None]
        if nodata in targets:
            raise LandSegError(f"{name}: nodata {nodata} is a target class code; pick another")
        out_dtype = np.result_type(*(np.min_scalar_type(v) for v in (*targets, nodata)))
        recoded, unknown = _recode(labels, self._table(nodata), out_dtype)
        if unknown:
            shown = ", ".join(str(c) for c in sorted(unknown)[:8]) + (", ..." if len(unknown) > 8 else "")
            raise LandSegError(
                f"{name}: {sum(unknown.values())} pixels have codes "
                f"that are not in legend '{self.source}' (values: {shown})"
            )
        return recoded

    def _table(self, nodata: int) -> dict[int, int]:
        table = {code: nodata for code in (*self.source_nodata, nodata)}
        table.update({src: nodata if dst is None else dst for src, dst in self.mapping.items()})
        return table


def _recode(labels: np.ndarray, table: Mapping[int, int], dtype: np.dtype) -> tuple[np.ndarray, dict[int, int]]:
    """``table[label]`` per pixel, and the pixel count of each label that is not a key of ``table``."""
    if labels.size == 0:
        return np.empty(labels.shape, dtype=dtype), {}
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= _MAX_LUT_SPAN:
        values, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
        unknown = {int(v): int(n) for v, n in zip(values, counts) if int(v) not in table}
        mapped = np.array([table.get(int(v), 0) for v in values], dtype=dtype)
        return mapped[inverse].reshape(labels.shape), unknown
    lut = np.zeros(high + 1, dtype=dtype)
    known = np.zeros(high + 1, dtype=bool)
    for code, value in table.items():
        if 0 <= code <= high:
            lut[code], known[code] = value, True
    hit = known[labels]
    if not hit.all():
        values, counts = np.unique(labels[~hit], return_counts=True)
        return lut[labels], {int(v): int(n) for v, n in zip(values, counts)}
    return lut[labels], {}


def _crosswalk_dir() -> Traversable:
    return resources.files("landsegmenter.taxonomy").joinpath("data", "crosswalks")


def crosswalk_from_dict(doc: Any, origin: str) -> Crosswalk:
    """Build and validate a :class:`Crosswalk` against the registered source and target legends."""
    if not isinstance(doc, Mapping) or not {"source", "target", "mapping"} <= doc.keys():
        raise LandSegError(f"{origin}: a crosswalk needs 'source', 'target' and 'mapping'")
    source, target = get_legend(str(doc["source"])), get_legend(str(doc["target"]))
    mapping = doc["mapping"]
    if not isinstance(mapping, Mapping):
        raise LandSegError(f"{origin}: 'mapping' must map source codes to target codes or null")
    missing = sorted(set(source.codes) - set(mapping))
    if missing:
        raise LandSegError(f"{origin}: source codes {missing} of '{source.key}' are not mapped (null: no class)")
    for src, dst in mapping.items():
        if src not in source.codes:
            raise LandSegError(f"{origin}: {src} is not a code of source legend '{source.key}'")
        if dst is not None and dst not in target.codes:
            raise LandSegError(f"{origin}: {src} -> {dst}: {dst} is not a code of legend '{target.key}'")
    return Crosswalk(
        source=source.key,
        target=target.key,
        mapping={int(s): (None if d is None else int(d)) for s, d in mapping.items()},
        source_nodata=source.nodata,
        caveats=str(doc.get("caveats", "")).strip(),
    )


@cache
def _registry() -> dict[tuple[str, str], Crosswalk]:
    crosswalks: dict[tuple[str, str], Crosswalk] = {}
    for entry in sorted(_crosswalk_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        origin = f"taxonomy/data/crosswalks/{entry.name}"
        crosswalk = crosswalk_from_dict(yaml.safe_load(entry.read_text(encoding="utf-8")), origin)
        if entry.name != f"{crosswalk.source}__{crosswalk.target}.yaml":
            raise LandSegError(f"{origin}: file name must be '{crosswalk.source}__{crosswalk.target}.yaml'")
        crosswalks[(crosswalk.source, crosswalk.target)] = crosswalk
    return crosswalks


def list_crosswalks() -> list[tuple[str, str]]:
    """``(source, target)`` legend keys of the registered crosswalks, sorted."""
    return sorted(_registry())


def get_crosswalk(source: str, target: str) -> Crosswalk:
    """The registered crosswalk between two legends (keys or aliases)."""
    pair = (resolve_key(source), resolve_key(target))
    try:
        return _registry()[pair]
    except KeyError:
        known = ", ".join(f"{s} -> {t}" for s, t in list_crosswalks())
        raise LandSegError(f"no crosswalk from '{pair[0]}' to '{pair[1]}'; available: {known}") from None


def index_mapping(source: str, target: str, nodata: int = 255) -> np.ndarray:
    """``[K_source]`` contiguous target class index of each source class index, ``nodata`` for none.

    The same legend maps onto itself; otherwise the registered crosswalk is used,
    and without one classes are matched by name, official name or synonym.
    """
    src, dst = get_legend(source), get_legend(target)
    if src.key == dst.key:
        return np.arange(len(src.classes), dtype=np.int64)
    if (src.key, dst.key) in _registry():
        index_of = {code: i for i, code in enumerate(dst.codes)}
        mapping = _registry()[(src.key, dst.key)].mapping
        return np.array([nodata if mapping[c] is None else index_of[mapping[c]] for c in src.codes], np.int64)
    by_name = {key: i for i, cls in enumerate(dst.classes) for key in cls.lookup_names}
    return np.array([next((by_name[k] for k in cls.lookup_names if k in by_name), nodata) for cls in src.classes],
                    np.int64)
