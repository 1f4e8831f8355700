"""FLAIR #1 (IGN): 0.2 m aerial patches of metropolitan France, 19 land-cover classes.

Layout of the release (https://ignf.github.io/FLAIR/, one zip per folder)::

    <root>/flair_aerial_train/<domain>/<zone>/img/IMG_<n>.tif    5 bands uint8: R, G, B, NIR, elevation
    <root>/flair_labels_train/<domain>/<zone>/msk/MSK_<n>.tif    uint8 codes 1..19
    <root>/flair_1_aerial_test/... and <root>/flair_1_labels_test/...  same structure

The official split is train (50 domains) / test (10 other domains). The FLAIR-1
repository's ``flair-1-paths-{train,val,test}.csv`` (image and mask path per
line), placed in ``<root>`` or ``<root>/csv_full``, select the tiles of a split
and define the validation domains; without them ``val`` is unavailable and
``train`` is the whole training folder.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, require_files
from landsegmenter.data.benchmarks.decoding import decode_codes
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import read_raster
from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.crosswalk import get_crosswalk
from landsegmenter.taxonomy.legends import get_legend

FOLDERS = {
    "train": ("flair_aerial_train", "flair_labels_train"),
    "test": ("flair_1_aerial_test", "flair_1_labels_test"),
}
ELEVATION_BAND = 5
LEGENDS = {19: "flair_1", 13: "flair_1_13"}
_PROTOCOL = (
    "FLAIR #1 challenge: classes above 12 grouped into 'other', IoU per class on the summed "
    "confusion matrix, mIoU over the 12 classes without 'other'"
)


class FLAIR1(BenchmarkDataset):
    """FLAIR #1 aerial patches of one split.

    Args:
        num_classes: 13 (default; the official nomenclature, codes 13..19 merged
            into "other") or 19 (the full nomenclature; :attr:`evaluation` still
            groups 13..19 into "other" as the official protocol does).
        **kwargs: see :class:`BenchmarkDataset`; ``with_elevation=True`` adds the
            5th band (elevation) as ``sample["elevation"]``.
    """

    name = "flair1"
    splits = ("train", "val", "test")
    layout = BandLayout("rgbn", ("red", "green", "blue", "nir"))
    has_elevation = True

    def __init__(self, root: str | Path, split: str = "test", num_classes: int = 13, **kwargs: Any) -> None:
        if num_classes not in LEGENDS:
            raise LandSegError(f"flair1: num_classes must be 13 or 19, got {num_classes}")
        self.num_classes = num_classes
        self.legend_key = LEGENDS[num_classes]
        self.evaluation = _evaluation(num_classes)
        super().__init__(root, split, **kwargs)

    def _scan(self) -> list[Tile]:
        pairs = self._listed_pairs()
        tiles = [_tile(image, label) for image, label in pairs]
        require_files((t.image for t in tiles), f"FLAIR-1 {self.split} images")
        require_files((t.label for t in tiles), f"FLAIR-1 {self.split} masks")
        return tiles

    def _listed_pairs(self) -> list[tuple[Path, Path]]:
        csv = self._split_csv(self.split)
        if csv is not None:
            return _read_pairs(csv, self.root)
        if self.split == "val":
            raise LandSegError(
                "flair1: FLAIR-1 has no validation folder; put the official flair-1-paths-val.csv "
                f"(and flair-1-paths-train.csv) of the FLAIR-1 repository in {self.root}"
            )
        pairs = self._folder_pairs(self.split)
        val_csv = self._split_csv("val") if self.split == "train" else None
        if val_csv is not None:
            held_out = {image for image, _ in _read_pairs(val_csv, self.root)}
            pairs = [p for p in pairs if p[0] not in held_out]
        return pairs

    def _split_csv(self, split: str) -> Path | None:
        name = f"flair-1-paths-{split}.csv"
        for folder in (self.root, self.root / "csv_full"):
            if (folder / name).is_file():
                return folder / name
        return None

    def _folder_pairs(self, split: str) -> list[tuple[Path, Path]]:
        image_dir, label_dir = (self.root / f for f in FOLDERS[split])
        if not image_dir.is_dir():
            raise LandSegError(
                f"flair1: folder {image_dir} not found; expected the release layout "
                f"<root>/{FOLDERS[split][0]}/<domain>/<zone>/img/IMG_*.tif"
            )
        images = sorted(image_dir.glob("*/*/img/IMG_*.tif"))
        return [(image, _mask_path(image, image_dir, label_dir)) for image in images]

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        raw = read_raster(tile.label, [1], window)[0]
        crosswalk = get_crosswalk("flair_1", "flair_1_13") if self.num_classes == 13 else None
        return decode_codes(raw, self.legend, str(tile.label), crosswalk)


def _evaluation(num_classes: int) -> Evaluation:
    names13 = get_legend("flair_1_13").names
    if num_classes == 13:
        return Evaluation.per_class(_PROTOCOL, names13, mean_over=range(12), ignored="mask value 0 (absent)")
    groups = tuple((i,) for i in range(12)) + (tuple(range(12, 19)),)
    return Evaluation(_PROTOCOL, names13, groups, tuple(range(12)), ignored="mask value 0 (absent)")


def _mask_path(image: Path, image_dir: Path, label_dir: Path) -> Path:
    relative = image.relative_to(image_dir)
    name = "MSK_" + relative.name.removeprefix("IMG_")
    return label_dir / relative.parent.parent / "msk" / name


def _tile(image: Path, label: Path) -> Tile:
    domain, zone = image.parent.parent.parent.name, image.parent.parent.name
    return Tile(
        sample_id=f"{domain}/{zone}/{image.stem}",
        image=image,
        label=label,
        elevation=image,
        elevation_band=ELEVATION_BAND,
    )


def _read_pairs(csv: Path, root: Path) -> list[tuple[Path, Path]]:
    pairs = []
    for number, line in enumerate(csv.read_text(encoding="utf-8").splitlines(), start=1):
        fields = [f.strip() for f in line.split(",")]
        if not any(fields):
            continue
        if len(fields) < 2:
            raise LandSegError(f"{csv}, line {number}: expected 'image path,mask path'")
        pairs.append((_under_root(fields[0], root), _under_root(fields[1], root)))
    if not pairs:
        raise LandSegError(f"{csv}: lists no tiles")
    return pairs


def _under_root(listed: str, root: Path) -> Path:
    """A CSV path (relative to the FLAIR-1 code folder) re-rooted at the release's top folder."""
    parts = PurePosixPath(listed.replace("\\", "/")).parts
    tops = {name for pair in FOLDERS.values() for name in pair}
    for i, part in enumerate(parts):
        if part in tops:
            return root.joinpath(*parts[i:])
    return root.joinpath(*(p for p in parts if p not in ("..", ".", "/")))
