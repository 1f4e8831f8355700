"""Benchmarks by name: ``open_benchmark("loveda:/data/LoveDA", split="val")``.

Each registered name is a dataset class with fixed options (``loveda_urban`` is
:class:`LoveDA` with ``domains=("urban",)``), so command lines can choose a
variant with ``--data NAME:PATH`` alone. Names are matched ignoring case,
``-``, ``_`` and spaces (``FLAIR-1``, ``flair_1`` and ``flair1`` are one name).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from landsegmenter.data.benchmarks.base import BenchmarkDataset
from landsegmenter.data.benchmarks.chesapeake import Chesapeake
from landsegmenter.data.benchmarks.deepglobe import DeepGlobeLandCover
from landsegmenter.data.benchmarks.five_billion_pixels import FiveBillionPixels
from landsegmenter.data.benchmarks.flair import FLAIR1
from landsegmenter.data.benchmarks.gid import GID5, GID15
from landsegmenter.data.benchmarks.loveda import LoveDA
from landsegmenter.data.benchmarks.openearthmap import OpenEarthMap
from landsegmenter.data.benchmarks.potsdam import Potsdam
from landsegmenter.data.benchmarks.vaihingen import Vaihingen
from landsegmenter.errors import LandSegError


@dataclass(frozen=True)
class BenchmarkEntry:
    """A registered benchmark name: dataset class, fixed options, one-line summary."""

    name: str
    dataset: type[BenchmarkDataset]
    summary: str
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


ENTRIES: tuple[BenchmarkEntry, ...] = (
    BenchmarkEntry("openearthmap", OpenEarthMap, "OpenEarthMap, 8 classes, RGB 0.25-0.5 m", aliases=("oem",)),
    BenchmarkEntry("loveda", LoveDA, "LoveDA urban + rural, 7 classes, RGB 0.3 m"),
    BenchmarkEntry("loveda_urban", LoveDA, "LoveDA urban domain only", {"domains": ("urban",)}),
    BenchmarkEntry("loveda_rural", LoveDA, "LoveDA rural domain only", {"domains": ("rural",)}),
    BenchmarkEntry("flair1", FLAIR1, "FLAIR #1, official 13 classes, RGB+NIR 0.2 m", aliases=("flair",)),
    BenchmarkEntry("flair1_19", FLAIR1, "FLAIR #1, full 19-class labels", {"num_classes": 19}),
    BenchmarkEntry("potsdam", Potsdam, "ISPRS Potsdam, 6 classes, RGB orthophotos 5 cm"),
    BenchmarkEntry("potsdam_irrg", Potsdam, "ISPRS Potsdam, IRRG orthophotos", {"imagery": "IRRG"}),
    BenchmarkEntry("potsdam_rgbir", Potsdam, "ISPRS Potsdam, RGB+NIR orthophotos", {"imagery": "RGBIR"}),
    BenchmarkEntry("vaihingen", Vaihingen, "ISPRS Vaihingen, 6 classes, IRRG 9 cm"),
    BenchmarkEntry("deepglobe", DeepGlobeLandCover, "DeepGlobe 2018 land cover, 6 classes, RGB 0.5 m",
                   aliases=("deepglobe_land_cover",)),
    BenchmarkEntry("chesapeake", Chesapeake, "Chesapeake Land Cover (LILA), 7-class labels, NAIP 1 m",
                   aliases=("chesapeake7",)),
    BenchmarkEntry("chesapeake13", Chesapeake, "Chesapeake Land Cover, 13-class Conservancy labels",
                   {"num_classes": 13}),
    BenchmarkEntry("five_billion_pixels", FiveBillionPixels,
                   "Five-Billion-Pixels, 24 classes, Gaofen-2 4 m, 16-bit B, G, R, NIR",
                   aliases=("fbp", "5bp", "five_billion_pixels_16bit", "fbp_16bit")),
    BenchmarkEntry("five_billion_pixels_8bit", FiveBillionPixels,
                   "Five-Billion-Pixels, 8-bit NIR, R, G, B images", {"imagery": "8bit"},
                   aliases=("fbp_8bit", "5bp_8bit")),
    BenchmarkEntry("gid5", GID5, "GID large-scale set, 5 classes, Gaofen-2 4 m NIR, R, G, B",
                   aliases=("gid", "gid_large_scale")),
    BenchmarkEntry("gid5_rgb", GID5, "GID large-scale set, RGB images", {"imagery": "RGB"}),
    BenchmarkEntry("gid15", GID15, "GID fine land-cover set, 15 classes, Gaofen-2 4 m NIR, R, G, B",
                   aliases=("gid_fine",)),
    BenchmarkEntry("gid15_rgb", GID15, "GID fine land-cover set, RGB images", {"imagery": "RGB"}),
)


def list_benchmarks() -> list[str]:
    """Registered benchmark names, in registry order."""
    return [entry.name for entry in ENTRIES]


def get_entry(name: str) -> BenchmarkEntry:
    """The registered benchmark called ``name`` (or one of its aliases)."""
    key = _key(name)
    for entry in ENTRIES:
        if key in {_key(n) for n in (entry.name, *entry.aliases)}:
            return entry
    raise LandSegError(f"unknown benchmark '{name}'; known benchmarks: {', '.join(list_benchmarks())}")


def parse_spec(spec: str) -> tuple[str, str]:
    """``"NAME:PATH"`` -> ``(NAME, PATH)``; the path may itself contain ``:``."""
    name, sep, path = spec.partition(":")
    if not sep or not name.strip() or not path.strip():
        raise LandSegError(
            f"benchmark '{spec}' must be given as NAME:PATH, e.g. loveda:/data/LoveDA "
            f"(known names: {', '.join(list_benchmarks())})"
        )
    return name.strip(), path.strip()


def open_benchmark(spec: str, split: str = "test", **options: Any) -> BenchmarkDataset:
    """Open the benchmark ``NAME:PATH`` at ``split``; ``options`` go to the dataset class.

    Options given here override the fixed options of a registered variant.
    """
    name, path = parse_spec(spec)
    entry = get_entry(name)
    return entry.dataset(path, split, **{**entry.options, **options})


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())
