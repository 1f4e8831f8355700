"""Loaders for the standard LULC benchmarks in their published folder layouts.

``open_benchmark("NAME:PATH", split)`` returns a :class:`BenchmarkDataset` whose
samples follow the LAS training sample contract (see :mod:`.base`); each dataset
also carries its official evaluation protocol (:class:`Evaluation`).
"""
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile
from landsegmenter.data.benchmarks.boundary import erode_boundaries
from landsegmenter.data.benchmarks.chesapeake import Chesapeake
from landsegmenter.data.benchmarks.deepglobe import DeepGlobeLandCover
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.five_billion_pixels import FiveBillionPixels
from landsegmenter.data.benchmarks.flair import FLAIR1
from landsegmenter.data.benchmarks.gid import GID5, GID15
from landsegmenter.data.benchmarks.loveda import LoveDA
from landsegmenter.data.benchmarks.openearthmap import OpenEarthMap
from landsegmenter.data.benchmarks.potsdam import Potsdam
from landsegmenter.data.benchmarks.registry import get_entry, list_benchmarks, open_benchmark
from landsegmenter.data.benchmarks.vaihingen import Vaihingen

__all__ = [
    "BenchmarkDataset",
    "Chesapeake",
    "DeepGlobeLandCover",
    "Evaluation",
    "FLAIR1",
    "FiveBillionPixels",
    "GID15",
    "GID5",
    "LoveDA",
    "OpenEarthMap",
    "Potsdam",
    "Tile",
    "Vaihingen",
    "erode_boundaries",
    "get_entry",
    "list_benchmarks",
    "open_benchmark",
]
