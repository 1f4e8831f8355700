"""Run a collated batch through the model, one call per group of samples with the same bands and classes.

The model takes one wavelength list and one class list per call. A batch from
:class:`~landsegmenter.data.samplers.GroupedBatchSampler` is one group; a mixed
batch (``collate_las`` padding) is split into groups, each group's logits are
padded to the batch's K with ``-inf`` and the groups are concatenated, with
labels, class names and subsets reordered to match.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.train.losses import pad_classes

# (wavelengths, class names, subset, rng) -> (kept band indices or None, class names to prompt with)
GroupAugment = Callable[[Sequence[float], Sequence[str], str, np.random.Generator], tuple[np.ndarray | None, list[str]]]


@dataclass
class Group:
    indices: list[int]  # positions in the batch
    n_bands: int
    wavelengths: list[float]
    class_names: list[str]
    subset: str


@dataclass
class BatchOutputs:
    decoder_logits: torch.Tensor  # [B, K, H, W], padded classes at -inf
    similarity_logits: torch.Tensor | None  # [B, K, H, W]
    label: torch.Tensor  # [B, H, W], same order
    class_names: list[list[str]]  # the original (unaugmented) names, same order
    subsets: list[str]


def batch_groups(batch: dict[str, Any]) -> list[Group]:
    """Samples grouped by (real bands, class names), in order of first appearance."""
    groups: dict[tuple, Group] = {}
    n_bands = batch["band_mask"].sum(1).tolist()
    for i, names in enumerate(batch["class_names"]):
        wavelengths = batch["wavelengths"][i, : n_bands[i]].tolist()
        key = (tuple(wavelengths), tuple(names), batch["subset"][i])
        if key not in groups:
            groups[key] = Group([], int(n_bands[i]), wavelengths, list(names), batch["subset"][i])
        groups[key].indices.append(i)
    return list(groups.values())


def group_image(
    batch: dict[str, Any], group: Group, bands: np.ndarray | None = None
) -> tuple[torch.Tensor, list[float]]:
    """The group's images [b, C_kept, H, W] and the kept bands' wavelengths (all real bands when None)."""
    image = batch["image"]
    keep = np.arange(group.n_bands) if bands is None else bands
    rows = torch.tensor(group.indices, device=image.device)
    selected = image.index_select(0, rows)[:, torch.as_tensor(keep, device=image.device)]
    return selected, [group.wavelengths[j] for j in keep]


def forward_batch(
    model: LandSegmenter,
    batch: dict[str, Any],
    augment: GroupAugment | None = None,
    rng: np.random.Generator | None = None,
) -> BatchOutputs:
    """Both heads' logits for every sample of a collated batch (see module doc)."""
    k = batch["class_mask"].shape[1]
    decoder, similarity, order = [], [], []
    for group in batch_groups(batch):
        bands, names = None, group.class_names
        if augment is not None:
            bands, names = augment(group.wavelengths, group.class_names, group.subset, rng)
        out = model.forward_train(*group_image(batch, group, bands), names)
        decoder.append(pad_classes(out.decoder_logits, k))
        if out.similarity_logits is not None:
            similarity.append(pad_classes(out.similarity_logits, k))
        order.extend(group.indices)
    label = batch["label"]
    return BatchOutputs(
        decoder_logits=torch.cat(decoder),
        similarity_logits=torch.cat(similarity) if similarity else None,
        label=label.index_select(0, torch.tensor(order, device=label.device)),
        class_names=[list(batch["class_names"][i]) for i in order],
        subsets=[batch["subset"][i] for i in order],
    )


def predict_batch(model: LandSegmenter, batch: dict[str, Any]) -> torch.Tensor:
    """Class index [B, H, W] of the inference path (fused heads), in the order of :func:`forward_batch`."""
    predictions = []
    for group in batch_groups(batch):
        image, wavelengths = group_image(batch, group)
        predictions.append(model(image, wavelengths, group.class_names).argmax(1))
    return torch.cat(predictions)
