"""Matching free-text labels (e.g. a reference sample's) to the classes of a map.

A label names a map class by its name, by a synonym the legend registry knows for that
name (``"trees"`` for ``"forest"``), or by its value in the class raster (``"3"``), in any
case and with ``_``/``-`` as spaces. A synonym two map classes share names neither.
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend, list_legends, normalize_name


def class_lookup(class_names: Sequence[str]) -> dict[str, int]:
    """Normalised label -> class index: names first, then unambiguous registry synonyms."""
    lookup = {normalize_name(name): i for i, name in enumerate(class_names)}
    synonyms: dict[str, set[int]] = {}
    for i, name in enumerate(class_names):
        for synonym in registry_synonyms(name):
            synonyms.setdefault(synonym, set()).add(i)
    for synonym, owners in synonyms.items():
        if len(owners) == 1 and synonym not in lookup:
            lookup[synonym] = next(iter(owners))
    return lookup


def registry_synonyms(name: str) -> set[str]:
    """Every lookup name of the registry classes that ``name`` names (itself included)."""
    key = normalize_name(name)
    found: set[str] = set()
    for legend_key in list_legends():
        for cls in get_legend(legend_key).classes:
            if key in cls.lookup_names:
                found.update(cls.lookup_names)
    return found


def labels_to_classes(labels: Sequence[str], class_names: Sequence[str], what: str = "labels") -> list[int]:
    """Class index of each label; a one-line error lists the labels that name no class."""
    lookup = class_lookup(class_names)
    indices, unknown = [], Counter()
    for label in labels:
        text = str(label).strip()
        index = lookup.get(normalize_name(text))
        if index is None and text.isdigit() and int(text) < len(class_names):
            index = int(text)
        if index is None:
            unknown[text] += 1
        indices.append(-1 if index is None else index)
    if unknown:
        listed = ", ".join(f"{label!r} ({count})" for label, count in unknown.most_common())
        raise LandSegError(
            f"{what} outside the map's legend: {listed}; use a class name, a synonym or a class value "
            f"of: {', '.join(f'{i}={n}' for i, n in enumerate(class_names))}"
        )
    return indices
