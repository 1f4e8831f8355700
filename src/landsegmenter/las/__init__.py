"""LAS: build multi-source, multi-taxonomy training sets from imagery and existing land-cover products.

``load_manifest`` reads the YAML description of the subsets, ``build_las`` streams them
into a Zarr store (resuming where a previous run stopped), ``LASStore`` reads it back,
``dataset_card`` / ``plot_locations`` describe it.
"""
from landsegmenter.las.build import BuildReport, SubsetReport, build_las
from landsegmenter.las.card import dataset_card, describe_store, plot_locations
from landsegmenter.las.manifest import Manifest, SubsetSpec, load_manifest
from landsegmenter.las.store import LASStore, Sample, SubsetStore, sample_id

__all__ = [
    "BuildReport",
    "LASStore",
    "Manifest",
    "Sample",
    "SubsetReport",
    "SubsetSpec",
    "SubsetStore",
    "build_las",
    "dataset_card",
    "describe_store",
    "load_manifest",
    "plot_locations",
    "sample_id",
]
