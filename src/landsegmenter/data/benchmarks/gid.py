"""GID, the Gaofen Image Dataset (Tong et al. 2020): Gaofen-2 scenes of 6800 x 7200 px at 4 m.

Layout of the release (https://x-ytong.github.io/project/GID.html)::

    <root>/Large-scale Classification_5classes/image_NirRGB/<scene>.tif           NIR, R, G, B uint8
    <root>/Large-scale Classification_5classes/image_RGB/<scene>.tif              R, G, B uint8
    <root>/Large-scale Classification_5classes/label_5classes/<scene>_label.tif   RGB colour codes
    <root>/Fine Land-cover Classification_15classes/{image_NirRGB,image_RGB}/<scene>.tif
    <root>/Fine Land-cover Classification_15classes/label_15classes/<scene>_label.tif

``PATH`` may be the set's folder or the folder holding it. GID-5 (the
large-scale classification set) has 150 labelled scenes in 5 classes, GID-15
(the fine land-cover set) 10 labelled scenes in 15 classes; black (0, 0, 0) is
"other" / unlabeled and is not scored. Labels are decoded with the colours of
the ``gid_5`` and ``gid_15`` legends; any other colour is an error. A CMYK-tagged
NirRGB TIFF is read as its stored bands (:func:`~landsegmenter.geo.raster.open_raster`), as for
Five-Billion-Pixels. Folder names are matched ignoring case, spaces and ``_``
(mirrors spell ``Large-scale_Classification_5classes``); ``.tiff`` is read too.

Confirmed from public code that reads the release: the two set folders with
their ``image_NirRGB``, ``image_RGB`` and ``label_5classes`` / ``label_15classes``
sub-folders, the ``<scene>_label.tif`` label names and ``GF2_PMS<n>__L1A...-MSS<n>.tif``
scene names, and the GID-15 colours. Assumed: the band order NIR, R, G, B of
``image_NirRGB`` (from the folder name and the paper) and that labels are exact
colours (no binarising is applied). The GID-15 patch sets for training and the
later GID-15 challenge layout (``img_dir``/``ann_dir``) are not read.

Splits: GID publishes no split file (papers use their own 120/30 draws of
GID-5). ``test`` (the framework's default) and ``all`` both read every scene of
the set; ``scenes=[...]`` reads named scenes only.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, require_files
from landsegmenter.data.benchmarks.decoding import decode_colors
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

OTHER_COLOR = (0, 0, 0)
IMAGERY = {
    "nirrgb": ("image_NirRGB", BandLayout("gaofen2_pms", ("nir", "red", "green", "blue"))),
    "rgb": ("image_RGB", BandLayout("gaofen2_pms", ("red", "green", "blue"))),
}


def _evaluation(legend_key: str) -> Evaluation:
    names = get_legend(legend_key).names
    return Evaluation.per_class(
        f"GID (Tong et al. 2020): overall accuracy and Cohen's kappa over the {len(names)} classes; IoU per "
        "class and mIoU over the classes present in the reference; black 'other' pixels are not scored",
        names,
        metrics=("OA", "Kappa", "mIoU"),
        ignored="black (0, 0, 0) other / unlabeled pixels",
    )


class GID(BenchmarkDataset):
    """The scenes of one GID set (see :class:`GID5`, :class:`GID15`).

    Args:
        imagery: ``"NirRGB"`` (default; NIR, R, G, B) or ``"RGB"``.
        scenes: scene names (``GF2_PMS1__L1A0000647767-MSS1``; a ``.tif`` suffix is
            allowed) to read instead of every scene of the set.
        **kwargs: see :class:`BenchmarkDataset`.
    """

    splits = ("test", "all")
    layout = IMAGERY["nirrgb"][1]
    set_folder: ClassVar[str]
    gsd_m: ClassVar[float] = 4.0  # Gaofen-2 multispectral
    label_folder: ClassVar[str]

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        imagery: str = "NirRGB",
        scenes: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        key = str(imagery).strip().lower()
        if key not in IMAGERY:
            raise LandSegError(f"{self.name}: unknown imagery '{imagery}'; choose NirRGB or RGB")
        self.imagery = key
        self.layout = IMAGERY[key][1]
        self.scenes = scenes
        super().__init__(root, split, **kwargs)

    def _scan(self) -> list[Tile]:
        release = self._release()
        image_dir = self._folder(release, IMAGERY[self.imagery][0])
        label_dir = self._folder(release, self.label_folder)
        images = tiff_files(image_dir)
        stems = list(images) if self.scenes is None else pick_stems(list(images), self.scenes, image_dir, self.name)
        tiles = [Tile(sample_id=s, image=images[s], label=tiff_path(label_dir, f"{s}_label")) for s in stems]
        require_files((t.label for t in tiles), f"{self.name} labels")
        for tile in tiles:
            require_same_size(tile.image, tile.label)
        return tiles

    def _release(self) -> Path:
        """``root`` when it is the set's folder, else the set's folder inside it."""
        if find_folder(self.root, self.label_folder) is not None:
            return self.root
        inner = find_folder(self.root, self.set_folder)
        if inner is not None and find_folder(inner, self.label_folder) is not None:
            return inner
        raise LandSegError(
            f"{self.name}: neither {self.root} nor a '{self.set_folder}' folder in it holds {self.label_folder}/; "
            f"expected the release layout <root>/{self.set_folder}/{{image_NirRGB,image_RGB,{self.label_folder}}}"
        )

    def _folder(self, release: Path, name: str) -> Path:
        found = find_folder(release, name)
        if found is None:
            raise LandSegError(f"{self.name}: folder {release / name} not found")
        return found

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        rgb = read_raster(tile.label, [1, 2, 3], window)
        return decode_colors(rgb, self.legend.colors, str(tile.label), ignore_colors=[OTHER_COLOR])


class GID5(GID):
    """GID-5, the large-scale classification set: 150 scenes, 5 classes."""

    name = "gid5"
    set_folder = "Large-scale Classification_5classes"
    label_folder = "label_5classes"
    legend_key = "gid_5"
    evaluation = _evaluation("gid_5")


class GID15(GID):
    """GID-15, the fine land-cover classification set: 10 labelled scenes, 15 classes."""

    name = "gid15"
    set_folder = "Fine Land-cover Classification_15classes"
    label_folder = "label_15classes"
    legend_key = "gid_15"
    evaluation = _evaluation("gid_15")
