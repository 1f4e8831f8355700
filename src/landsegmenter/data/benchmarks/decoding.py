"""Label decoding: native codes or RGB colour codes -> contiguous class indices, 255 = ignore.

Values that are neither a class nor a declared ignore value raise
:class:`LandSegError` naming the file, the number of such pixels and the
values, so a wrong legend or a corrupt mask never passes silently.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.crosswalk import Crosswalk
from landsegmenter.taxonomy.legends import Legend

IGNORE_INDEX = 255
"""Label value of pixels that are not scored (no-data, unknown, eroded boundaries)."""

RGB = tuple[int, int, int]


def decode_codes(raw: np.ndarray, legend: Legend, source: str, crosswalk: Crosswalk | None = None) -> np.ndarray:
    """Native codes ``[H, W]`` -> ``uint8 [H, W]`` indices of ``legend``; its nodata codes -> 255.

    With ``crosswalk`` the codes are first recoded from the crosswalk's source
    legend into ``legend`` (e.g. FLAIR-1's 19 classes into the 13 evaluated ones).
    """
    try:
        if crosswalk is not None:
            raw = crosswalk.apply(raw, nodata=_free_nodata(legend))
        return legend.to_index(raw)
    except LandSegError as err:
        raise LandSegError(f"{source}: {err}") from None


def _free_nodata(legend: Legend) -> int:
    """A nodata code of ``legend`` to recode unmapped codes to (``to_index`` then ignores it)."""
    if not legend.nodata:
        raise LandSegError(f"legend '{legend.key}' declares no nodata code to recode unmapped classes to")
    return legend.nodata[0]


def binarize_colors(rgb: np.ndarray, threshold: int = 128) -> np.ndarray:
    """``uint8 [3, H, W]`` -> each channel 0 or 255 (``>= threshold`` -> 255), for masks stored with colour noise."""
    return np.where(rgb >= threshold, 255, 0).astype(np.uint8)


def decode_colors(
    rgb: np.ndarray, palette: Sequence[RGB], source: str, ignore_colors: Sequence[RGB] = ()
) -> np.ndarray:
    """Colour-coded ``uint8 [3, H, W]`` -> ``uint8 [H, W]``: ``palette[i]`` -> ``i``, ``ignore_colors`` -> 255."""
    if rgb.ndim != 3 or rgb.shape[0] < 3:
        raise LandSegError(f"{source}: a colour-coded mask needs 3 bands (R, G, B), got shape {rgb.shape}")
    keys = _pack(np.asarray(rgb[:3], dtype=np.uint32))
    table_keys, table_values = _color_table(palette, ignore_colors)
    slot = np.clip(np.searchsorted(table_keys, keys), 0, len(table_keys) - 1)
    known = table_keys[slot] == keys
    if not known.all():
        raise LandSegError(f"{source}: {_describe_unknown(keys[~known], palette)}")
    return table_values[slot]


def _pack(rgb: np.ndarray) -> np.ndarray:
    return (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]


def _color_table(palette: Sequence[RGB], ignore_colors: Sequence[RGB]) -> tuple[np.ndarray, np.ndarray]:
    entries = {_key(c): i for i, c in enumerate(palette)}
    entries.update({_key(c): IGNORE_INDEX for c in ignore_colors})
    if len(entries) != len(palette) + len(ignore_colors):
        raise LandSegError("a colour is listed twice in the class palette and ignore colours")
    keys = np.array(sorted(entries), dtype=np.uint32)
    return keys, np.array([entries[k] for k in keys], dtype=np.uint8)


def _key(color: RGB) -> int:
    r, g, b = color
    return (r << 16) | (g << 8) | b


def _describe_unknown(unknown: np.ndarray, palette: Sequence[RGB]) -> str:
    values, counts = np.unique(unknown, return_counts=True)
    order = np.argsort(-counts)[:6]
    shown = ", ".join(f"{_unpack(values[i])} x{counts[i]}" for i in order)
    more = f", ... ({len(values)} colours in all)" if len(values) > len(order) else ""
    return (
        f"{unknown.size} pixels have colours that are not classes "
        f"({shown}{more}); class colours: {', '.join(str(tuple(c)) for c in palette)}"
    )


def _unpack(key: int) -> RGB:
    key = int(key)
    return (key >> 16) & 255, (key >> 8) & 255, key & 255
