"""Labelled source patches and unlabelled target patches for domain adaptation.

Both domains are cut into ``crop`` x ``crop`` patches on the same bands (the
target's, matched to the nearest source band by centre wavelength) and at the
same pixel size (the target is resampled to the source GSD, as in DPA), with
their labels recoded into one output legend:

- :class:`SourcePatches` wraps any dataset of labelled samples (a LAS store, a
  benchmark, or :class:`ScenePatches` over one labelled raster) and draws
  randomly cropped, flipped and rotated patches ``(image [C, s, s], label [s, s])``;
  labels of classes without an output class become 255 and are counted.
- :class:`TargetScene` draws random windows ``(image [C, s, s], valid [s, s])``
  of an unlabelled scene, normalised with the sensor's or the scene's statistics.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from rasterio.enums import Resampling
from rasterio.windows import Window
from torch.utils.data import Dataset

from landsegmenter.data.benchmarks import open_benchmark
from landsegmenter.data.las_dataset import LASDataset
from landsegmenter.errors import LandSegError
from landsegmenter.geo.raster import Scene, on_grid, open_raster
from landsegmenter.las.store import LASStore
from landsegmenter.taxonomy.crosswalk import index_mapping
from landsegmenter.taxonomy.legends import get_legend
from landsegmenter.train.augment import SWIR_START_UM, SWIR_TOLERANCE_UM, VNIR_TOLERANCE_UM, geometric
from landsegmenter.train.scene import scene_statistics, standardise

IGNORE = 255
MIN_VALID = 0.5  # target windows with less valid area are redrawn
CACHE_BYTES = 1 << 30  # a target scene up to this size is read once and kept in memory
DRAWS = 20


def matching_bands(source: Sequence[float], target: Sequence[float]) -> np.ndarray | None:
    """Index of the source band nearest each target wavelength ``[C_target]``; None if one has no match."""
    wl = np.asarray(source, dtype=np.float64)
    picks = []
    for centre in target:
        best = int(np.abs(wl - centre).argmin())
        tolerance = SWIR_TOLERANCE_UM if centre >= SWIR_START_UM else VNIR_TOLERANCE_UM
        if abs(wl[best] - centre) > tolerance:
            return None
        picks.append(best)
    return np.array(picks)


def scene_normalisation(scene: Scene, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (mean, std): ``auto`` the sensor's when known, else (and with ``scene``) sampled ones;
    ``reflectance`` the global reflectance normalisation of the band's wavelength."""
    if mode == "reflectance":
        return scene.statistics("reflectance")
    return scene_statistics(scene) if mode == "auto" else scene.sample_statistics()


def pad_to(image: torch.Tensor, label: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad ``image [C, h, w]`` and 255-pad ``label [h, w]`` at the bottom/right to at least ``size``."""
    h, w = label.shape
    if h >= size and w >= size:
        return image, label
    ph, pw = max(0, size - h), max(0, size - w)
    image = torch.nn.functional.pad(image, (0, pw, 0, ph))
    label = torch.nn.functional.pad(label, (0, pw, 0, ph), value=IGNORE)
    return image, label


@dataclass
class SourceInfo:
    """What an adaptation needs to know about a labelled dataset besides its samples."""

    dataset: Dataset  # items: image [C, H, W] normalised, label [H, W], wavelengths [C], subset
    legend_of: dict[str, str]  # subset -> legend key of its labels
    gsd_m: float | None  # pixel size of the samples
    description: str


class SourcePatches:
    """Random labelled patches of a source dataset on ``wavelengths``, labels in ``legend`` (see module doc)."""

    def __init__(self, source: SourceInfo, wavelengths: Sequence[float], legend: str, crop: int) -> None:
        self.source, self.crop = source, crop
        self.legend = get_legend(legend)
        self.luts = {s: index_mapping(key, legend) for s, key in source.legend_of.items()}
        self.bands: dict[str, np.ndarray] = {}
        self.wavelengths = list(wavelengths)
        if len(source.dataset) == 0:
            raise LandSegError(f"the source {source.description} has no samples")

    def __len__(self) -> int:
        return len(self.source.dataset)

    def item(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        """Whole sample ``index`` on the target bands: ``(image [C, H, W], label [H, W] output indices, subset)``."""
        return self._on_target(self.source.dataset[index])

    def _on_target(self, sample: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, str]:
        subset = sample["subset"]
        if subset not in self.bands:
            picks = matching_bands(sample["wavelengths"].tolist(), self.wavelengths)
            if picks is None:
                raise LandSegError(
                    f"source subset {subset!r} has no band near each of {', '.join(f'{w:g}' for w in self.wavelengths)} µm; "
                    "choose source subsets with the target's bands"
                )
            self.bands[subset] = picks
        lut = self.luts[subset]
        label = sample["label"].numpy()
        labelled = label != IGNORE
        recoded = np.full(label.shape, IGNORE, np.int64)
        recoded[labelled] = lut[label[labelled]]
        return sample["image"][torch.as_tensor(self.bands[subset])], torch.from_numpy(recoded), subset

    def patch(self, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A random crop (padded when the sample is smaller), flip and rotation of sample ``index``."""
        image, label, _ = self.item(index)
        image, label = geometric(image, label, rng, self.crop)
        return pad_to(image, label, self.crop)

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images [size, C, crop, crop], labels [size, crop, crop])`` of random samples."""
        pairs = [self.patch(int(i), rng) for i in rng.integers(0, len(self), size)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def class_counts(self, max_items: int = 500, seed: int = 0) -> tuple[np.ndarray, Counter]:
        """Output-class pixel counts ``[K]`` over up to ``max_items`` samples, and dropped source labels by name."""
        counts = np.zeros(len(self.legend.classes), np.int64)
        dropped: Counter = Counter()
        indices = np.arange(len(self))
        if len(indices) > max_items:
            indices = np.sort(np.random.default_rng(seed).choice(indices, max_items, replace=False))
        for index in indices:
            sample = self.source.dataset[int(index)]
            _, label, _ = self._on_target(sample)
            counts += np.bincount(label[label != IGNORE].numpy(), minlength=len(counts))
            raw = sample["label"].numpy()
            lost = (raw != IGNORE) & (label.numpy() == IGNORE)
            for value, n in zip(*np.unique(raw[lost], return_counts=True)):
                dropped[sample["class_names"][int(value)]] += int(n)
        return counts, dropped


class ScenePatches(Dataset):
    """Grid patches of one scene with a label raster in ``legend`` codes (any grid: resampled nearest).

    Items have the keys of LAS items; only patches with a labelled pixel are kept.
    """

    def __init__(self, paths: Sequence[str], labels: str, legend: str, *, sensor: str | None = None,
                 bands: Sequence[str] | None = None, resolution: float | None = None, patch: int = 256,
                 normalisation: str = "auto") -> None:
        self.legend = get_legend(legend)
        self.scene = Scene(list(paths), sensor=sensor, bands=bands, resolution=resolution)
        try:
            self.mean, self.std = scene_normalisation(self.scene, normalisation)
            self.labels = self._read_labels(labels)
        except Exception:
            self.scene.close()
            raise
        h, w = self.labels.shape
        windows = [Window(c, r, min(patch, w - c), min(patch, h - r))
                   for r in range(0, h, patch) for c in range(0, w, patch)]
        self.windows = [win for win in windows if (self.labels[win.toslices()] != IGNORE).any()]
        if not self.windows:
            self.scene.close()
            raise LandSegError(f"{labels} has no pixel with a class of legend '{self.legend.key}'")

    def _read_labels(self, path: str) -> np.ndarray:
        """Label raster on the scene grid as contiguous class indices [H, W], 255 elsewhere."""
        with open_raster(path) as src:
            reader = on_grid(src, self.scene.grid, Resampling.nearest)
            codes = reader.read(1, masked=True)
            if reader is not src:
                reader.close()
        lut = np.full(65536, IGNORE, np.int64)
        lut[list(self.legend.codes)] = np.arange(len(self.legend.codes))
        filled = np.clip(np.asarray(codes.filled(0)), 0, 65535).astype(np.int64)
        out = lut[filled]
        out[np.ma.getmaskarray(codes)] = IGNORE
        return out

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        win = self.windows[index]
        data, valid = self.scene.read(win)
        label = np.where(valid, self.labels[win.toslices()], IGNORE)
        return {"image": standardise(data, valid, self.mean, self.std), "label": torch.from_numpy(label),
                "wavelengths": torch.tensor(self.scene.wavelengths, dtype=torch.float32),
                "class_names": list(self.legend.names), "subset": "scene"}

    def close(self) -> None:
        self.scene.close()


class TargetScene:
    """Random windows of an unlabelled scene at ``resolution`` (see module doc)."""

    def __init__(self, paths: Sequence[str], crop: int, *, sensor: str | None = None,
                 bands: Sequence[str] | None = None, resolution: float | None = None,
                 normalisation: str = "auto") -> None:
        self.scene = Scene(list(paths), sensor=sensor, bands=bands, resolution=resolution)
        try:
            self.mean, self.std = scene_normalisation(self.scene, normalisation)
        except Exception:
            self.scene.close()
            raise
        self.crop = crop
        w, h = self.scene.width, self.scene.height
        if min(w, h) < crop:
            self.scene.close()
            raise LandSegError(f"the target scene ({w} x {h} px at the source GSD) is smaller than the {crop} px crop")
        small = w * h * len(self.scene.bands) * 4 <= CACHE_BYTES
        self._cache = self.scene.read(Window(0, 0, w, h)) if small else None

    @property
    def wavelengths(self) -> list[float]:
        return self.scene.wavelengths

    def window(self, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A random window with at least half its pixels valid (the last of 20 draws otherwise)."""
        for _ in range(DRAWS):
            row = int(rng.integers(0, self.scene.height - self.crop + 1))
            col = int(rng.integers(0, self.scene.width - self.crop + 1))
            data, valid = self._read(Window(col, row, self.crop, self.crop))
            if valid.mean() >= MIN_VALID:
                break
        return geometric(standardise(data, valid, self.mean, self.std), torch.from_numpy(valid), rng)

    def _read(self, window: Window) -> tuple[np.ndarray, np.ndarray]:
        if self._cache is None:
            return self.scene.read(window)
        rows, cols = window.toslices()
        return self._cache[0][:, rows, cols], self._cache[1][rows, cols]

    def batch(self, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images [size, C, crop, crop], valid [size, crop, crop] bool)``."""
        pairs = [self.window(rng) for _ in range(size)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def close(self) -> None:
        self.scene.close()


def las_source(root: str | Path, subsets: Sequence[str] | None, splits: Sequence[str],
               normalisation: str = "auto") -> SourceInfo:
    """A LAS store as a source; the chosen subsets' GSDs must agree within 5 % (their median is used);
    ``normalisation`` as the LAS dataset's (``reflectance``: one global reflectance normalisation)."""
    dataset = LASDataset(root, subsets=subsets, splits=splits,
                         normalisation="reflectance" if normalisation == "reflectance" else "auto")
    store = LASStore.open(Path(root))
    infos = {name: store.subset(name).info for name in dataset.subsets}
    gsds = sorted(float(info["gsd_m"]) for info in infos.values())
    if gsds and gsds[-1] > 1.05 * gsds[0]:
        raise LandSegError(f"source subsets have different GSDs ({', '.join(f'{g:g}' for g in sorted(set(gsds)))} m); "
                           "choose subsets with one GSD")
    legends = {name: info["taxonomy"]["legend"] for name, info in infos.items()}
    return SourceInfo(dataset, legends, float(np.median(gsds)) if gsds else None, f"LAS store {root} ({', '.join(dataset.subsets)})")


def benchmark_source(spec: str, split: str) -> SourceInfo:
    """A benchmark (``NAME:PATH``) as a source."""
    dataset = open_benchmark(spec, split=split)
    return SourceInfo(dataset, {dataset.name: dataset.legend_key}, getattr(dataset, "gsd_m", None),
                      f"benchmark {spec} ({split})")


def scene_source(paths: Sequence[str], labels: str, legend: str, **options: Any) -> SourceInfo:
    """One labelled scene as a source (its GSD after ``resolution``)."""
    dataset = ScenePatches(paths, labels, legend, **options)
    return SourceInfo(dataset, {"scene": dataset.legend.key}, dataset.scene.grid.res[0],
                      f"scene {paths[0]} with labels {labels}")

