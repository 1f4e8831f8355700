"""The on-disk LAS store: one Zarr v3 group per subset, one chunk per sample.

Layout (``DIR`` is the root group)::

    DIR/zarr.json                       format, name, description, subset order
    DIR/<subset>/zarr.json              band table, taxonomy, label source, scenes, counts
    DIR/<subset>/image        [N, C, H, W]  stored values (DN or float32), chunk (1, C, H, W)
    DIR/<subset>/valid        [N, H, W]     bool: the image has data there, chunk (1, H, W)
    DIR/<subset>/label        [N, H, W]     uint8 legend index, 255 = no label, chunk (1, H, W)
    DIR/<subset>/scene|row|col|split|valid_fraction    [N]
    DIR/<subset>/transform    [N, 6]    affine (a, b, c, d, e, f) of the patch, NaN without georeferencing
    DIR/<subset>/center_lonlat [N, 2]   NaN where unknown
    DIR/<subset>/class_counts [N, K]    pixels per class

Arrays grow along the first axis; ``count`` in the subset's attributes is the number of
committed samples and is written after the data, so a build killed mid-batch leaves rows
beyond ``count`` that the next writer truncates.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from landsegmenter.errors import LandSegError

FORMAT = "landsegmenter-las"
FORMAT_VERSION = 1
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}
SPLIT_NAMES = {v: k for k, v in SPLIT_CODES.items()}
ROW_CHUNK = 4096


@dataclass
class Sample:
    """One patch ready to be stored."""

    scene_id: str
    row: int
    col: int
    split: str
    image: np.ndarray  # [C, H, W]
    valid: np.ndarray  # [H, W] bool
    label: np.ndarray  # [H, W] uint8
    transform: tuple[float, ...] | None  # 6 affine coefficients
    center_lonlat: tuple[float, float] | None
    class_counts: np.ndarray  # [K]

    @property
    def valid_fraction(self) -> float:
        return float(self.valid.mean())


def sample_id(subset: str, scene_id: str, row: int, col: int) -> str:
    """``subset/scene/r<row>c<col>``: row and column of the patch origin on the scene's sample grid."""
    return f"{subset}/{scene_id}/r{row}c{col}"


class LASStore:
    """A LAS store directory: create, open, list and access subsets."""

    def __init__(self, root: zarr.Group, path: Path) -> None:
        self.root = root
        self.path = path

    @classmethod
    def open(cls, path: str | Path, mode: str = "r") -> "LASStore":
        """Open an existing store (``mode`` ``"r"`` or ``"a"``)."""
        path = Path(path)
        if not (path / "zarr.json").is_file():
            raise LandSegError(f"{path} is not a LAS store (no zarr.json); build one with 'landseg las build'")
        root = zarr.open_group(str(path), mode=mode)
        if root.attrs.get("format") != FORMAT:
            raise LandSegError(f"{path} is a Zarr group but not a LAS store (format {root.attrs.get('format')!r})")
        if root.attrs.get("format_version") != FORMAT_VERSION:
            raise LandSegError(f"{path}: unsupported LAS store version {root.attrs.get('format_version')!r}")
        return cls(root, path)

    @classmethod
    def create_or_open(cls, path: str | Path, name: str, description: str = "", overwrite: bool = False) -> "LASStore":
        """Open ``path`` for appending, creating the store (or replacing it with ``overwrite``)."""
        path = Path(path)
        if overwrite and path.exists() and any(path.iterdir()):
            cls.open(path)  # only ever delete a LAS store
            shutil.rmtree(path)
        if (path / "zarr.json").is_file():
            store = cls.open(path, mode="a")
            store.root.attrs.update({"name": name, "description": description})
            return store
        if path.exists() and any(path.iterdir()):
            raise LandSegError(f"{path} exists and is not a LAS store; choose an empty or new directory")
        root = zarr.open_group(str(path), mode="w")
        root.attrs.update(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "name": name,
                "description": description,
                "subsets": [],
            }
        )
        return cls(root, path)

    @property
    def name(self) -> str:
        return str(self.root.attrs.get("name", self.path.name))

    @property
    def description(self) -> str:
        return str(self.root.attrs.get("description", ""))

    @property
    def subsets(self) -> list[str]:
        return list(self.root.attrs.get("subsets", []))

    def subset(self, name: str) -> "SubsetStore":
        if name not in self.subsets:
            raise LandSegError(f"no subset {name!r} in {self.path}; subsets: {', '.join(self.subsets) or 'none'}")
        return SubsetStore(self.root[name], name)

    def create_subset(
        self, name: str, info: dict[str, Any], image_shape: tuple[int, int, int], image_dtype: str, num_classes: int
    ) -> "SubsetStore":
        """A new, empty subset with arrays for images ``image_shape`` (C, H, W) and ``num_classes`` classes."""
        group = self.root.create_group(name, overwrite=True)
        c, h, w = image_shape
        _array(group, "image", (0, c, h, w), (1, c, h, w), image_dtype, 0)
        _array(group, "valid", (0, h, w), (1, h, w), "bool", False)
        _array(group, "label", (0, h, w), (1, h, w), "uint8", 255)
        for key, dtype in (
            ("scene", "int32"),
            ("row", "int32"),
            ("col", "int32"),
            ("split", "int8"),
            ("valid_fraction", "float32"),
        ):
            _array(group, key, (0,), (ROW_CHUNK,), dtype, 0)
        _array(group, "transform", (0, 6), (ROW_CHUNK, 6), "float64", np.nan)
        _array(group, "center_lonlat", (0, 2), (ROW_CHUNK, 2), "float64", np.nan)
        _array(group, "class_counts", (0, num_classes), (ROW_CHUNK, num_classes), "int32", 0)
        group.attrs.update(
            {
                "info": info,
                "scenes": [],
                "count": 0,
                "done_scenes": [],
                "complete": False,
                "stats": {"rejected": {}, "skipped": {}, "unknown_codes": {}},
            }
        )
        subsets = [s for s in self.subsets if s != name] + [name]
        self.root.attrs.update({"subsets": subsets})
        return SubsetStore(group, name)

    def drop_subset(self, name: str) -> None:
        if name in self.root:
            del self.root[name]
        self.root.attrs.update({"subsets": [s for s in self.subsets if s != name]})


class SubsetStore:
    """One subset: samples of one band set, patch size and taxonomy."""

    def __init__(self, group: zarr.Group, name: str) -> None:
        self.group = group
        self.name = name
        self._ids: set[str] | None = None
        self._arrays: dict[str, zarr.Array] = {}

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    @property
    def info(self) -> dict[str, Any]:
        return dict(self.group.attrs["info"])

    @property
    def count(self) -> int:
        return int(self.group.attrs.get("count", 0))

    @property
    def scenes(self) -> list[dict[str, Any]]:
        return list(self.group.attrs.get("scenes", []))

    @property
    def class_names(self) -> list[str]:
        return list(self.info["taxonomy"]["class_names"])

    def array(self, key: str) -> zarr.Array:
        if key not in self._arrays:
            self._arrays[key] = self.group[key]
        return self._arrays[key]

    # ------------------------------------------------------------ writing

    def truncate_to_committed(self) -> None:
        """Drop rows written after the last commit (an interrupted batch)."""
        n = self.count
        for key in ARRAY_KEYS:
            array = self.array(key)
            if array.shape[0] != n:
                array.resize((n,) + array.shape[1:])

    def scene_index(self, record: dict[str, Any]) -> int:
        """Index of the scene ``record["id"]``, adding the record when the scene is new."""
        scenes = self.scenes
        for i, scene in enumerate(scenes):
            if scene["id"] == record["id"]:
                return i
        self.group.attrs.update({"scenes": scenes + [record]})
        return len(scenes)

    def sample_ids(self) -> set[str]:
        if self._ids is None:
            n = self.count
            scenes = [s["id"] for s in self.scenes]
            idx, rows, cols = (self.array(k)[:n] for k in ("scene", "row", "col"))
            self._ids = {sample_id(self.name, scenes[s], r, c) for s, r, c in zip(idx, rows, cols)}
        return self._ids

    def append(self, samples: list[Sample]) -> None:
        """Write ``samples`` and commit them; a sample id already present is an error."""
        if not samples:
            return
        scenes = {s["id"]: i for i, s in enumerate(self.scenes)}
        ids = self.sample_ids()
        batch_ids = [sample_id(self.name, s.scene_id, s.row, s.col) for s in samples]
        for sid, sample in zip(batch_ids, samples):
            if sid in ids or batch_ids.count(sid) > 1:
                raise LandSegError(f"duplicate sample id {sid!r}: scene ids and patch origins must be unique")
            if sample.scene_id not in scenes:
                raise LandSegError(f"sample {sid!r} refers to a scene that was not added to subset '{self.name}'")
        n, b = self.count, len(samples)
        columns = _columns(samples, scenes)
        for key, values in columns.items():
            array = self.array(key)
            array.resize((n + b,) + array.shape[1:])
            array[n : n + b] = values
        self.group.attrs.update({"count": n + b})
        ids.update(batch_ids)

    def finish_scene(self, scene_id: str, stats: dict[str, dict[str, int]]) -> None:
        """Mark a scene done and add its rejection / skip / unknown-code counts to the subset's."""
        attrs = self.attrs
        totals = attrs["stats"]
        for section, counts in stats.items():
            merged = dict(totals.get(section, {}))
            for key, value in counts.items():
                merged[key] = int(merged.get(key, 0)) + int(value)
            totals[section] = merged
        done = list(attrs["done_scenes"]) + [scene_id]
        self.group.attrs.update({"stats": totals, "done_scenes": done})

    def mark_complete(self) -> None:
        self.group.attrs.update({"complete": True})

    # ------------------------------------------------------------ reading

    def read(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(image [C, H, W] stored values, valid [H, W] bool, label [H, W] uint8)`` of sample ``i``."""
        return self.array("image")[i], self.array("valid")[i], self.array("label")[i]

    def metadata(self, i: int) -> dict[str, Any]:
        """Everything recorded about sample ``i``: georeference, sensor, bands, taxonomy, source, dates."""
        info = self.info
        scene = self.scenes[int(self.array("scene")[i])]
        row, col = int(self.array("row")[i]), int(self.array("col")[i])
        transform = self.array("transform")[i]
        center = self.array("center_lonlat")[i]
        return {
            "sample_id": sample_id(self.name, scene["id"], row, col),
            "subset": self.name,
            "scene": scene["id"],
            "split": SPLIT_NAMES[int(self.array("split")[i])],
            "row": row,
            "col": col,
            "crs_wkt": scene.get("crs_wkt"),
            "transform": None if np.isnan(transform).any() else [float(v) for v in transform],
            "center_lonlat": None if np.isnan(center).any() else [float(v) for v in center],
            "sensor": info["sensor"],
            "band_names": info["bands"]["names"],
            "wavelengths": info["bands"]["wavelengths"],
            "gsd_m": scene.get("gsd_m", info.get("gsd_m")),
            "taxonomy": info["taxonomy"]["key"],
            "class_names": info["taxonomy"]["class_names"],
            "label_source": info["label_source"],
            "date": scene.get("date"),
            "label_date": scene.get("label_date"),
            "time_gap_days": scene.get("time_gap_days"),
        }


ARRAY_KEYS = (
    "image",
    "valid",
    "label",
    "scene",
    "row",
    "col",
    "split",
    "valid_fraction",
    "transform",
    "center_lonlat",
    "class_counts",
)


def _array(
    group: zarr.Group, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str, fill: Any
) -> None:
    group.create_array(name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill)


def _columns(samples: list[Sample], scenes: dict[str, int]) -> dict[str, np.ndarray]:
    nan6, nan2 = (np.nan,) * 6, (np.nan,) * 2
    return {
        "image": np.stack([s.image for s in samples]),
        "valid": np.stack([s.valid for s in samples]),
        "label": np.stack([s.label for s in samples]),
        "scene": np.array([scenes[s.scene_id] for s in samples], dtype=np.int32),
        "row": np.array([s.row for s in samples], dtype=np.int32),
        "col": np.array([s.col for s in samples], dtype=np.int32),
        "split": np.array([SPLIT_CODES[s.split] for s in samples], dtype=np.int8),
        "valid_fraction": np.array([s.valid_fraction for s in samples], dtype=np.float32),
        "transform": np.array([s.transform or nan6 for s in samples], dtype=np.float64),
        "center_lonlat": np.array([s.center_lonlat or nan2 for s in samples], dtype=np.float64),
        "class_counts": np.stack([s.class_counts for s in samples]).astype(np.int32),
    }
