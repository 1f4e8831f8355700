"""Training augmentations: geometry per sample, bands and class prompts per batch group.

- :func:`geometric` (in the data loader, per sample): a random crop, flips and
  90° rotations applied identically to image and label.
- :class:`BatchAugment` (in the training step, per group of samples that share
  bands and classes, since the model takes one band set and one class list per
  forward): keep only the bands of a simulated sensor (RGB, RGBN, Landsat-like,
  matched by wavelength) or a random subset of at least ``min_bands`` bands;
  replace class names by registry synonyms; prompt with a random subset of
  templates. Labels stay valid: names are replaced in place, bands are only
  selected, never reordered.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import Iterator, Sequence

import numpy as np
import torch

from landsegmenter.errors import LandSegError
from landsegmenter.geo.sensors import get_sensor
from landsegmenter.model.text_prompter import TextPrompter, prompt_name
from landsegmenter.taxonomy.legends import Legend, get_legend, list_legends, normalize_name
from landsegmenter.train.config import AugmentSection

VNIR_TOLERANCE_UM = 0.05
SWIR_TOLERANCE_UM = 0.15
SWIR_START_UM = 1.0


def geometric(
    image: torch.Tensor, label: torch.Tensor, rng: np.random.Generator,
    crop_size: int | None = None, flip: bool = True, rotate90: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The same random crop, flips and rotation of ``image [C, H, W]`` and ``label [H, W]``."""
    height, width = label.shape
    if crop_size is not None:
        h, w = min(crop_size, height), min(crop_size, width)
        top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
        image, label = image[:, top : top + h, left : left + w], label[top : top + h, left : left + w]
    if flip and rng.random() < 0.5:
        image, label = image.flip(-1), label.flip(-1)
    if flip and rng.random() < 0.5:
        image, label = image.flip(-2), label.flip(-2)
    if rotate90:
        k = int(rng.integers(0, 4))
        image, label = torch.rot90(image, k, (-2, -1)), torch.rot90(label, k, (-2, -1))
    return image.contiguous(), label.contiguous()


def sensor_wavelengths(spec: str) -> tuple[float, ...]:
    """``"rgb"`` or ``"landsat7:B1,B2,B3"`` -> the centre wavelengths (µm) of those registry bands."""
    name, _, bands = spec.partition(":")
    sensor = get_sensor(name.strip())
    chosen = sensor.select([b.strip() for b in bands.split(",")]) if bands else sensor.bands
    return tuple(b.wavelength for b in chosen)


def sensor_bands(wavelengths: Sequence[float], target: Sequence[float]) -> np.ndarray | None:
    """Indices (ascending) of the input bands nearest to each ``target`` wavelength, within tolerance.

    None when fewer than two target bands are found (e.g. SAR input).
    """
    wl = np.asarray(wavelengths, dtype=np.float64)
    chosen = set()
    for centre in target:
        distance = np.abs(wl - centre)
        best = int(distance.argmin())
        tolerance = SWIR_TOLERANCE_UM if centre >= SWIR_START_UM else VNIR_TOLERANCE_UM
        if distance[best] <= tolerance:
            chosen.add(best)
    return np.array(sorted(chosen)) if len(chosen) >= 2 else None


def band_dropout(n_bands: int, rng: np.random.Generator, min_bands: int = 2) -> np.ndarray | None:
    """A random subset (ascending) of ``min_bands .. n_bands - 1`` band indices; None when none can be dropped."""
    if n_bands <= min_bands:
        return None
    keep = int(rng.integers(min_bands, n_bands))
    return np.sort(rng.choice(n_bands, size=keep, replace=False))


@functools.cache
def _registry_legends() -> tuple[Legend, ...]:
    return tuple(get_legend(key) for key in list_legends())


@functools.cache
def class_synonyms(class_names: tuple[str, ...], legend: str | None = None) -> tuple[tuple[str, ...], ...]:
    """Registry synonyms of each class name.

    From ``legend`` when it is a registered legend that has the class; otherwise
    from every registered legend with a class of that name (its name and synonyms).
    """
    own = _legend_or_none(legend)
    result = []
    for name in class_names:
        found = own.find(name) if own is not None else None
        matches = [found] if found is not None else [c for lg in _registry_legends() if (c := lg.find(name))]
        words = [w for cls in matches for w in (cls.name, *cls.synonyms)]
        result.append(tuple(dict.fromkeys(w for w in words if normalize_name(w) != normalize_name(name))))
    return tuple(result)


def _legend_or_none(key: str | None) -> Legend | None:
    if key is None:
        return None
    try:
        return get_legend(key)
    except LandSegError:
        return None


def replace_synonyms(
    names: Sequence[str], synonyms: Sequence[Sequence[str]], p: float, rng: np.random.Generator
) -> list[str]:
    """Each name replaced with probability ``p`` by one of its synonyms; index i stays class i.

    A synonym that would duplicate another class's (current) name is not used.
    """
    out = list(names)
    for i, options in enumerate(synonyms):
        if not options or rng.random() >= p:
            continue
        taken = {prompt_name(n).casefold() for j, n in enumerate(out) if j != i}
        free = [s for s in options if prompt_name(s).casefold() not in taken]
        if free:
            out[i] = free[int(rng.integers(len(free)))]
    return out


@contextmanager
def prompt_templates(prompter: TextPrompter, templates: Sequence[str] | None) -> Iterator[None]:
    """Temporarily prompt with ``templates`` (None: unchanged); text embeddings are recomputed."""
    if templates is None:
        yield
        return
    original = prompter.templates
    prompter.templates = tuple(templates)
    prompter.clear_cache()
    try:
        yield
    finally:
        prompter.templates = original
        prompter.clear_cache()


class BatchAugment:
    """Band, class-name and template augmentation for one training step (see module doc)."""

    def __init__(self, cfg: AugmentSection) -> None:
        self.cfg = cfg
        self.sensors = [sensor_wavelengths(spec) for spec in cfg.sensors]

    def bands(self, wavelengths: Sequence[float], rng: np.random.Generator) -> np.ndarray | None:
        """Indices of the bands to keep (ascending), or None for all."""
        u = rng.random()
        if u < self.cfg.sensor_simulation and self.sensors:
            return sensor_bands(wavelengths, self.sensors[int(rng.integers(len(self.sensors)))])
        if u < self.cfg.sensor_simulation + self.cfg.band_dropout:
            return band_dropout(len(wavelengths), rng, self.cfg.min_bands)
        return None

    def names(self, names: Sequence[str], synonyms: Sequence[Sequence[str]], rng: np.random.Generator) -> list[str]:
        if self.cfg.synonyms == 0.0:
            return list(names)
        return replace_synonyms(names, synonyms, self.cfg.synonyms, rng)

    def templates(self, rng: np.random.Generator) -> tuple[str, ...] | None:
        if rng.random() >= self.cfg.templates:
            return None
        pool = self.cfg.template_pool
        count = int(rng.integers(1, len(pool) + 1))
        return tuple(pool[i] for i in sorted(rng.choice(len(pool), size=count, replace=False)))
