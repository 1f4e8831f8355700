"""LoveDA: 0.3 m Google Earth RGB of Nanjing, Changzhou and Wuhan, urban and rural domains.

Layout of the release (Zenodo record 5706578: ``Train.zip``, ``Val.zip``, ``Test.zip``)::

    <root>/{Train,Val,Test}/{Urban,Rural}/images_png/<n>.png   RGB, 1024 x 1024
    <root>/{Train,Val}/{Urban,Rural}/masks_png/<n>.png         uint8: 0 no-data, 1..7 classes

Test masks are withheld (the benchmark server scores test predictions).
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.windows import Window

from landsegmenter.data.benchmarks.bands import BandLayout
from landsegmenter.data.benchmarks.base import BenchmarkDataset, Tile, require_files
from landsegmenter.data.benchmarks.decoding import decode_codes
from landsegmenter.data.benchmarks.evaluation import Evaluation
from landsegmenter.data.benchmarks.io import read_raster
from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend

_LEGEND = "loveda"
DOMAINS = ("urban", "rural")


class LoveDA(BenchmarkDataset):
    """LoveDA tiles of one split and one or both domains.

    Args:
        domains: ``"urban"``, ``"rural"`` or both (default).
        **kwargs: see :class:`BenchmarkDataset`.
    """

    name = "loveda"
    splits = ("train", "val", "test")
    layout = BandLayout("rgb", ("red", "green", "blue"))
    legend_key = _LEGEND
    evaluation = Evaluation.per_class(
        "LoveDA semantic segmentation benchmark: IoU of each of the 7 classes and their mean; "
        "no-data (0) pixels are not scored; test masks are scored by the benchmark server",
        get_legend(_LEGEND).names,
        ignored="mask value 0 (no-data)",
    )

    def __init__(self, root: str | Path, split: str = "test", domains: Sequence[str] = DOMAINS, **kwargs: Any) -> None:
        self.domains = _check_domains(domains)
        super().__init__(root, split, **kwargs)

    def _scan(self) -> list[Tile]:
        tiles = [tile for domain in self.domains for tile in self._domain_tiles(domain)]
        hint = "the test masks are not public; evaluate on 'val'" if self.split == "test" else ""
        require_files((t.label for t in tiles), f"LoveDA {self.split} masks", hint)
        return tiles

    def _domain_tiles(self, domain: str) -> list[Tile]:
        folder = self.root / self.split.capitalize() / domain.capitalize()
        images = folder / "images_png"
        if not images.is_dir():
            raise LandSegError(
                f"loveda: folder {images} not found; expected the release layout "
                "<root>/{Train,Val,Test}/{Urban,Rural}/images_png"
            )
        files = sorted(images.glob("*.png"), key=_numeric_stem)
        return [
            Tile(sample_id=f"{domain}/{f.stem}", image=f, label=folder / "masks_png" / f.name) for f in files
        ]

    def _read_label(self, tile: Tile, window: Window | None) -> np.ndarray:
        raw = read_raster(tile.label, [1], window)[0]
        return decode_codes(raw, self.legend, str(tile.label))


def _check_domains(domains: Sequence[str]) -> tuple[str, ...]:
    chosen = (domains,) if isinstance(domains, str) else tuple(domains)
    chosen = tuple(d.strip().lower() for d in chosen)
    unknown = [d for d in chosen if d not in DOMAINS]
    if not chosen or unknown:
        raise LandSegError(f"loveda: unknown domain(s) {unknown or chosen}; choose from {', '.join(DOMAINS)}")
    return tuple(dict.fromkeys(chosen))


def _numeric_stem(path: Path) -> tuple[int, str]:
    return (int(path.stem), path.stem) if path.stem.isdigit() else (1 << 62, path.stem)
