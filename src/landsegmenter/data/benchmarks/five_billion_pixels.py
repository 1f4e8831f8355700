"""Five-Billion-Pixels (Tong, Xia, Zhu 2023): 150 Gaofen-2 scenes at 4 m labelled in 24 classes.

Layout of the release (https://x-ytong.github.io/project/Five-Billion-Pixels.html)::

    <root>/Image_16bit_BGRNir/<scene>.tiff          B, G, R, NIR uint16, raw GF-2 DN
    <root>/Image__8bit_NirRGB/<scene>.tiff          NIR, R, G, B uint8, re-quantised, tagged CMYK
    <root>/Annotation__index/<scene>_24label.png    uint8: 0 unlabeled, 1..24 classes
    <root>/Annotation__color/<scene>_24label.tif    the same labels as RGB colours, (0, 0, 0) unlabeled
    <root>/Coordinate_files/<scene>.rpb             RPCs (not read; the labels carry no CRS)

Scenes are named like ``GF2_PMS1__L1A0001064454-MSS1`` and are about 6908 x 7300
px; image and label sizes are checked to agree, not assumed. Images may end in
``.tif`` or ``.tiff`` and folder names are matched ignoring case and ``_``
(mirrors spell ``Image_8bit_NirRGB``). The 8-bit TIFFs are tagged CMYK; their
stored bands are read (:func:`~landsegmenter.geo.raster.open_raster`). Labels are read from
``Annotation__index``; only a release without that folder is read from the
colour labels of ``Annotation__color``.

Confirmed from the release readme (as copied into public repositories) and
public loaders of the dataset: folder and file names, band orders, the index
and colour codes (identical to the ``five_billion_pixels`` legend), and the 30
"test images for baseline (Table 4 in our article)" the readme lists.
Assumed: the 16-bit files hold the 10-bit DN of GF-2 level-1A products; they
are scaled by 1/4 onto the 8-bit range of the ``gaofen2_pms`` statistics, as
the sensor registry prescribes for raw DN.

Splits: the release has no split file. ``test`` is the readme's 30 baseline
test scenes, ``train`` the other scenes, ``all`` every scene; ``scenes=[...]``
narrows a split to named scenes.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout, SelectedBands
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, require_files
from landsegmenter.data.benchmarks.decoding import decode_codes, decode_colors
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import (
    find_folder,
    pick_stems,
    read_raster,
    require_same_size,
    tiff_files,
    tiff_path,
)
from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend

_LEGEND = "five_billion_pixels"
UNLABELED_COLOR = (0, 0, 0)
RAW_DN_SCALE = 0.25
"""16-bit files: raw 10-bit GF-2 DN, divided by 4 onto the 8-bit range of the ``gaofen2_pms`` statistics."""
INDEX_FOLDER, COLOR_FOLDER, LABEL_SUFFIX = "Annotation__index", "Annotation__color", "_24label"


@dataclass(frozen=True)
class Imagery:
    """One image product of the release: its folder, band order and DN scaling."""

    folder: str
    layout: BandLayout
    dn_scale: float


IMAGERY = {
    "16bit": Imagery("Image_16bit_BGRNir", BandLayout("gaofen2_pms", ("blue", "green", "red", "nir")), RAW_DN_SCALE),
    "8bit": Imagery("Image__8bit_NirRGB", BandLayout("gaofen2_pms", ("nir", "red", "green", "blue")), 1.0),
}

TEST_SCENES = (
    "GF2_PMS1__L1A0001064454-MSS1", "GF2_PMS1__L1A0001118839-MSS1", "GF2_PMS1__L1A0001344822-MSS1",
    "GF2_PMS1__L1A0001348919-MSS1", "GF2_PMS1__L1A0001366278-MSS1", "GF2_PMS1__L1A0001366284-MSS1",
    "GF2_PMS1__L1A0001395956-MSS1", "GF2_PMS1__L1A0001432972-MSS1", "GF2_PMS1__L1A0001670888-MSS1",
    "GF2_PMS1__L1A0001680857-MSS1", "GF2_PMS1__L1A0001680858-MSS1", "GF2_PMS1__L1A0001757429-MSS1",
    "GF2_PMS1__L1A0001765574-MSS1", "GF2_PMS2__L1A0000607677-MSS2", "GF2_PMS2__L1A0000607681-MSS2",
    "GF2_PMS2__L1A0000718813-MSS2", "GF2_PMS2__L1A0001038935-MSS2", "GF2_PMS2__L1A0001038936-MSS2",
    "GF2_PMS2__L1A0001119060-MSS2", "GF2_PMS2__L1A0001367840-MSS2", "GF2_PMS2__L1A0001378491-MSS2",
    "GF2_PMS2__L1A0001378501-MSS2", "GF2_PMS2__L1A0001396036-MSS2", "GF2_PMS2__L1A0001396037-MSS2",
    "GF2_PMS2__L1A0001416129-MSS2", "GF2_PMS2__L1A0001471436-MSS2", "GF2_PMS2__L1A0001517494-MSS2",
    "GF2_PMS2__L1A0001591676-MSS2", "GF2_PMS2__L1A0001787564-MSS2", "GF2_PMS2__L1A0001821754-MSS2",
)
"""The readme's "test images for baseline (Table 4 in our article)"."""


class FiveBillionPixels(BenchmarkDataset):
    """Five-Billion-Pixels scenes of one split.

    Args:
        imagery: ``"16bit"`` (default; B, G, R, NIR raw DN) or ``"8bit"`` (NIR, R, G, B
            re-quantised, the images of the paper's experiments).
        scenes: scene names (``GF2_PMS1__L1A0001064454-MSS1``; a ``.tif``/``.tiff``
            suffix is allowed) to read instead of the whole split; each must be in it.
        **kwargs: see :class:`BenchmarkDataset`.
    """

    name = "five_billion_pixels"
    gsd_m = 4.0  # Gaofen-2 multispectral
    splits = ("test", "train", "all")
    layout = IMAGERY["16bit"].layout
    legend_key = _LEGEND
    evaluation = Evaluation.per_class(
        "Five-Billion-Pixels (Tong et al. 2023): overall accuracy, F1 and IoU per class; mean F1 and mIoU "
        "over the classes present in the reference; unlabeled (0) pixels are not scored",
        get_legend(_LEGEND).names,
        metrics=("OA", "F1", "mIoU"),
        ignored="label index 0 / black (unlabeled)",
    )

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        imagery: str = "16bit",
        scenes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.imagery = _check_imagery(imagery)
        self.layout = IMAGERY[self.imagery].layout
        self.scenes = scenes
        super().__init__(root, split, **kwargs)
        self.selected = _rescaled(self.selected, IMAGERY[self.imagery].dn_scale)

    def _scan(self) -> list[Tile]:
        release = self._release()
        image_dir = find_folder(release, IMAGERY[self.imagery].folder)
        images = tiff_files(image_dir)
        label_path = _label_paths(release)
        tiles = [Tile(sample_id=s, image=images[s], label=label_path(s)) for s in self._split_stems(images, image_dir)]
        require_files((t.label for t in tiles), f"Five-Billion-Pixels {self.split} labels")
        for tile in tiles:
            require_same_size(tile.image, tile.label)
        return tiles

    def _release(self) -> Path:
        """``root``, or the archive's top folder inside it, holding the image folder of ``imagery``."""
        folder = IMAGERY[self.imagery].folder
        candidates = [self.root, *(p for p in sorted(self.root.iterdir()) if p.is_dir())]
        found = next((c for c in candidates if find_folder(c, folder) is not None), None)
        if found is None:
            raise LandSegError(
                f"five_billion_pixels: no {folder} folder in {self.root} or its sub-folders; expected the release "
                f"layout <root>/{folder}/<scene>.tiff and <root>/{INDEX_FOLDER}/<scene>{LABEL_SUFFIX}.png"
            )
        return found

    def _split_stems(self, images: dict[str, Path], image_dir: Path) -> list[str]:
        in_split = {
            "test": [s for s in images if s in TEST_SCENES],
            "train": [s for s in images if s not in TEST_SCENES],
            "all": list(images),
        }[self.split]
        if self.scenes is not None:
            return pick_stems(in_split, self.scenes, f"the {self.split} split of {image_dir}", self.name)
        missing = [s for s in TEST_SCENES if s not in images] if self.split == "test" else []
        if missing:
            raise LandSegError(
                f"five_billion_pixels: {len(missing)} of the {len(TEST_SCENES)} test scenes are missing from "
                f"{image_dir} (e.g. {missing[0]}); pass scenes=[...] to read a subset"
            )
        return in_split

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        if tile.label.suffix.lower() == ".png":
            return decode_codes(read_raster(tile.label, [1], window)[0], self.legend, str(tile.label))
        rgb = read_raster(tile.label, [1, 2, 3], window)
        return decode_colors(rgb, self.legend.colors, str(tile.label), ignore_colors=[UNLABELED_COLOR])


def _label_paths(release: Path) -> Callable[[str], Path]:
    """Scene name -> its index label, or its colour label where the release has no index labels."""
    index_dir = find_folder(release, INDEX_FOLDER)
    if index_dir is not None:
        return lambda stem: index_dir / f"{stem}{LABEL_SUFFIX}.png"
    color_dir = find_folder(release, COLOR_FOLDER)
    if color_dir is not None:
        return lambda stem: tiff_path(color_dir, f"{stem}{LABEL_SUFFIX}")
    raise LandSegError(f"five_billion_pixels: neither {INDEX_FOLDER} nor {COLOR_FOLDER} found in {release}")


def _check_imagery(imagery: str) -> str:
    key = str(imagery).strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    if key not in IMAGERY:
        raise LandSegError(f"five_billion_pixels: unknown imagery '{imagery}'; choose one of {', '.join(IMAGERY)}")
    return key


def _rescaled(selected: SelectedBands, factor: float) -> SelectedBands:
    """``selected`` with every DN -> physical scale multiplied by ``factor``."""
    return replace(selected, scales=tuple(s * factor for s in selected.scales))
