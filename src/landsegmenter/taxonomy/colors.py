"""Colours for class names, drawn from the legend registry.

Generic names ("water", "forest", "cropland", "built-up") take the ESA
WorldCover or Dynamic World colour; other names take the colour of the first
legend that knows them, searching tier by tier (see ``PREFERRED_LEGENDS``) and,
within a tier, class names before synonyms.
"""
from __future__ import annotations

import colorsys
from functools import cache
from typing import Iterator, Sequence

from landsegmenter.taxonomy.legends import get_legend, list_legends, normalize_name

RGB = tuple[int, int, int]

PREFERRED_LEGENDS = (
    ("esa_worldcover_2021", "dynamic_world"),
    ("esri_lulc", "corine", "nlcd", "modis_igbp", "glc_fcs30", "osm_landuse"),
)
"""Tiers of legends searched first; the remaining legends form a last tier in key order."""

_FALLBACK_COLORMAPS = ("tab20", "tab20b", "tab20c")


@cache
def _color_index() -> dict[str, RGB]:
    registered = list_legends()
    tiers = [[k for k in tier if k in registered] for tier in PREFERRED_LEGENDS]
    tiers.append([k for k in registered if not any(k in tier for tier in PREFERRED_LEGENDS)])
    index: dict[str, RGB] = {}
    for tier in tiers:
        for use_synonyms in (False, True):
            for key in tier:
                for cls in get_legend(key).classes:
                    names = cls.synonyms if use_synonyms else (cls.name, cls.official_name)
                    for name in names:
                        index.setdefault(normalize_name(name), cls.color)
    return index


def color_for(name: str) -> RGB | None:
    """Registry colour of a class name or synonym (case/underscore-insensitive), else ``None``."""
    return _color_index().get(normalize_name(name))


def palette(class_names: Sequence[str]) -> list[RGB]:
    """One distinct colour per name: the registry colour where known and not taken, else a fallback."""
    colors: list[RGB | None] = [color_for(n) for n in class_names]
    used: set[RGB] = set()
    for i, color in enumerate(colors):
        if color is not None and color in used:
            colors[i] = None
        elif color is not None:
            used.add(color)
    spare = (c for c in _fallback_colors() if c not in used)
    for i, color in enumerate(colors):
        if color is None:
            colors[i] = next(spare)
            used.add(colors[i])  # type: ignore[arg-type]
    return colors  # type: ignore[return-value]


def _fallback_colors() -> Iterator[RGB]:
    """matplotlib's qualitative tab20/tab20b/tab20c colours, then endless golden-ratio hues."""
    import matplotlib

    seen: set[RGB] = set()
    for cmap_name in _FALLBACK_COLORMAPS:
        for rgb in matplotlib.colormaps[cmap_name].colors:
            color = _to_uint8(rgb)
            if color not in seen:
                seen.add(color)
                yield color
    step = 0
    while True:
        hue = (step * 0.618033988749895) % 1.0
        value = 0.95 - 0.3 * ((step // 7) % 3) / 2
        color = _to_uint8(colorsys.hsv_to_rgb(hue, 0.75, value))
        step += 1
        if color not in seen:
            seen.add(color)
            yield color


def _to_uint8(rgb: Sequence[float]) -> RGB:
    return tuple(int(round(c * 255)) for c in rgb[:3])  # type: ignore[return-value]
