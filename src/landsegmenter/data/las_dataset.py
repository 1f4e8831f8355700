"""A PyTorch dataset over a LAS store, and a collate function for batches mixing subsets.

Each item is a dict::

    image        float32 [C, H, W]  (physical - mean) / std per band, 0 where the image has no data
    label        int64 [H, W]       index into class_names, 255 = ignore
    wavelengths  float32 [C]        band centres in µm
    class_names  list[str]          the subset's taxonomy, index i = label value i
    subset, sample_id, split        str

:func:`collate_las` pads so that any samples batch together: bands to the largest C
(``band_mask`` marks real bands), patches to the largest H, W (label 255 outside), and
classes to the largest K (``class_mask`` marks real classes). Batches from
:class:`~landsegmenter.data.samplers.GroupedBatchSampler` hold one subset each, so nothing
is padded and ``wavelengths[0]`` serves the whole batch.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from landsegmenter.errors import LandSegError
from landsegmenter.geo.reflectance import is_reflective, reflectance_stats
from landsegmenter.geo.sensors import get_sensor
from landsegmenter.las.store import SPLIT_CODES, LASStore, SubsetStore, sample_id

IGNORE_INDEX = 255


class LASDataset(Dataset):
    """Samples of a LAS store, filtered by subset, split and label quality."""

    def __init__(
        self,
        root: str | Path,
        *,
        subsets: Sequence[str] | None = None,
        splits: Sequence[str] = ("train",),
        include_low_quality: bool = False,
        normalisation: str = "auto",
    ) -> None:
        self.root = Path(root)
        unknown = sorted(set(splits) - set(SPLIT_CODES))
        if unknown:
            raise LandSegError(f"unknown split(s) {', '.join(unknown)}; splits are {', '.join(SPLIT_CODES)}")
        store = LASStore.open(self.root)
        names = list(subsets) if subsets else store.subsets
        self.subsets: list[str] = []
        self.label_sources: dict[str, dict[str, Any]] = {}  # subset -> its label_source (kind, product, quality)
        self._tables: list[dict[str, Any]] = []
        items: list[np.ndarray] = []
        for name in names:
            sub = store.subset(name)
            if sub.info["label_source"]["quality"] == "low" and not include_low_quality and not subsets:
                continue
            rows = _rows_in_splits(sub, splits)
            if len(rows):
                self._tables.append(_table(sub, normalisation))
                items.append(np.stack([np.full(len(rows), len(self.subsets)), rows], axis=1))
                self.subsets.append(name)
                self.label_sources[name] = dict(sub.info["label_source"])
        self._items = np.concatenate(items) if items else np.zeros((0, 2), dtype=np.int64)
        self._open_pid: int | None = None
        self._groups: dict[str, SubsetStore] = {}

    def __len__(self) -> int:
        return len(self._items)

    @property
    def group_ids(self) -> np.ndarray:
        """``[N]`` index of each item's subset in :attr:`subsets` (for grouped batching)."""
        return self._items[:, 0]

    def __getitem__(self, index: int) -> dict[str, Any]:
        which, row = (int(v) for v in self._items[index])
        table = self._tables[which]
        sub = self._subset(which)
        stored, valid, label = sub.read(row)
        image = stored.astype(np.float32) * table["a"] + table["b"]
        image[:, ~valid] = 0.0
        scene, r, c = table["scene"][row], table["row"][row], table["col"][row]
        return {
            "image": torch.from_numpy(image),
            "label": torch.from_numpy(label.astype(np.int64)),
            "wavelengths": torch.tensor(table["wavelengths"], dtype=torch.float32),
            "class_names": list(table["class_names"]),
            "subset": self.subsets[which],
            "sample_id": sample_id(self.subsets[which], table["scene_ids"][scene], int(r), int(c)),
            "split": table["split_names"][int(table["split"][row])],
        }

    def metadata(self, index: int) -> dict[str, Any]:
        """Georeference, sensor, bands, taxonomy, label source and dates of item ``index``."""
        which, row = (int(v) for v in self._items[index])
        return self._subset(which).metadata(row)

    def _subset(self, which: int) -> SubsetStore:
        if self._open_pid != os.getpid():  # DataLoader workers each open their own handles
            store = LASStore.open(self.root)
            self._groups = {name: store.subset(name) for name in self.subsets}
            self._open_pid = os.getpid()
        return self._groups[self.subsets[which]]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_groups"], state["_open_pid"] = {}, None
        return state


def collate_las(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples of possibly different band counts, sizes and taxonomies (see module doc)."""
    if not batch:
        raise LandSegError("cannot collate an empty batch")
    b = len(batch)
    shapes = {(tuple(s["image"].shape), len(s["class_names"])) for s in batch}
    c = max(s["image"].shape[0] for s in batch)
    h = max(s["image"].shape[1] for s in batch)
    w = max(s["image"].shape[2] for s in batch)
    k = max(len(s["class_names"]) for s in batch)
    if len(shapes) == 1:  # one subset (grouped batches): nothing to pad
        image = torch.stack([s["image"] for s in batch])
        label = torch.stack([s["label"] for s in batch])
        wavelengths = torch.stack([s["wavelengths"] for s in batch])
        band_mask = torch.ones((b, c), dtype=torch.bool)
        class_mask = torch.ones((b, k), dtype=torch.bool)
    else:
        image, label, wavelengths, band_mask, class_mask = _padded(batch, c, h, w, k)
    return {
        "image": image,  # [B, C, H, W]
        "label": label,  # [B, H, W]
        "wavelengths": wavelengths,  # [B, C]
        "band_mask": band_mask,  # [B, C]
        "class_names": [list(s["class_names"]) for s in batch],  # B lists of K_i names
        "class_mask": class_mask,  # [B, K]
        "subset": [s["subset"] for s in batch],
        "sample_id": [s["sample_id"] for s in batch],
        "split": [s["split"] for s in batch],
    }


def _padded(batch: Sequence[dict[str, Any]], c: int, h: int, w: int, k: int) -> tuple[torch.Tensor, ...]:
    b = len(batch)
    image = torch.zeros((b, c, h, w), dtype=torch.float32)
    label = torch.full((b, h, w), IGNORE_INDEX, dtype=torch.int64)
    wavelengths = torch.zeros((b, c), dtype=torch.float32)
    band_mask = torch.zeros((b, c), dtype=torch.bool)
    class_mask = torch.zeros((b, k), dtype=torch.bool)
    for i, s in enumerate(batch):
        ci, hi, wi = s["image"].shape
        image[i, :ci, :hi, :wi] = s["image"]
        label[i, :hi, :wi] = s["label"]
        wavelengths[i, :ci] = s["wavelengths"]
        band_mask[i, :ci] = True
        class_mask[i, : len(s["class_names"])] = True
    return image, label, wavelengths, band_mask, class_mask


def _statistics(info: dict[str, Any], normalisation: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (mean, std): the stored ones (``auto``), or for reflective bands the global reflectance
    statistics (``reflectance``); the units are the subset's sensor's."""
    bands = info["bands"]
    mean, std = np.array(bands["mean"], np.float64), np.array(bands["std"], np.float64)
    if normalisation == "auto":
        return mean, std
    if normalisation != "reflectance":
        raise LandSegError(f"LAS normalisation must be auto or reflectance, got {normalisation!r}")
    units = bands.get("units") or get_sensor(info["sensor"]).units
    reflective = np.array([is_reflective(units, w) for w in bands["wavelengths"]])
    global_mean, global_std = reflectance_stats(bands["wavelengths"])
    return np.where(reflective, global_mean, mean), np.where(reflective, global_std, std)


def _rows_in_splits(sub: SubsetStore, splits: Sequence[str]) -> np.ndarray:
    codes = [SPLIT_CODES[s] for s in splits]
    split = sub.array("split")[: sub.count]
    return np.flatnonzero(np.isin(split, codes))


def _table(sub: SubsetStore, normalisation: str) -> dict[str, Any]:
    """Per-subset constants and small per-sample arrays, read once."""
    info = sub.info
    bands = info["bands"]
    scale, offset = np.array(bands["scale"]), np.array(bands["offset"])
    mean, std = _statistics(info, normalisation)
    n = sub.count
    return {
        "a": (scale / std).astype(np.float32)[:, None, None],  # stored -> normalised in one multiply-add
        "b": ((offset - mean) / std).astype(np.float32)[:, None, None],
        "wavelengths": list(bands["wavelengths"]),
        "class_names": list(info["taxonomy"]["class_names"]),
        "scene_ids": [s["id"] for s in sub.scenes],
        "scene": sub.array("scene")[:n],
        "row": sub.array("row")[:n],
        "col": sub.array("col")[:n],
        "split": sub.array("split")[:n],
        "split_names": {v: k for k, v in SPLIT_CODES.items()},
    }
