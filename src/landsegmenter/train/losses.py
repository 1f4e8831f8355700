"""Losses for batches whose samples may have different class lists.

Logits of a sample with K_i < K classes are padded to K with ``-inf``
(:func:`pad_classes`), so the softmax gives padded classes zero probability and
zero gradient; labels never point at them. Pixels labelled 255 are ignored.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F

from landsegmenter.taxonomy.legends import normalize_name

IGNORE_INDEX = 255


class LossTerms(NamedTuple):
    total: torch.Tensor
    decoder: torch.Tensor
    similarity: torch.Tensor | None


def pad_classes(logits: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, K_i, H, W]`` -> ``[B, k, H, W]`` with the added classes at ``-inf``."""
    extra = k - logits.shape[1]
    return logits if extra == 0 else F.pad(logits, (0, 0, 0, 0, 0, extra), value=float("-inf"))


def cross_entropy(logits: torch.Tensor, label: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean (class-weighted) cross-entropy over labelled pixels.

    logits [B, K, H, W] (padded classes at -inf), label [B, H, W] (255 ignored),
    weights [B, K] per-sample class weights or None. Zero (with a gradient path)
    when no pixel is labelled.
    """
    per_pixel = F.cross_entropy(logits.float(), label, ignore_index=IGNORE_INDEX, reduction="none")
    valid = label != IGNORE_INDEX
    if weights is None:
        pixel_weight = valid.float()
    else:
        safe = torch.where(valid, label, torch.zeros_like(label))
        pixel_weight = torch.gather(weights, 1, safe.flatten(1)).view_as(per_pixel) * valid
    return (per_pixel * pixel_weight).sum() / pixel_weight.sum().clamp_min(1e-8)


def class_weight_table(
    class_names: Sequence[Sequence[str]], weights: dict[str, float], k: int, device: torch.device
) -> torch.Tensor | None:
    """``[B, k]`` weights looked up by class name (others 1, padding 0); None when ``weights`` is empty."""
    if not weights:
        return None
    lookup = {normalize_name(name): float(w) for name, w in weights.items()}
    table = torch.zeros((len(class_names), k), dtype=torch.float32)
    for i, names in enumerate(class_names):
        table[i, : len(names)] = torch.tensor([lookup.get(normalize_name(n), 1.0) for n in names])
    return table.to(device)


def segmentation_loss(
    decoder_logits: torch.Tensor,
    similarity_logits: torch.Tensor | None,
    label: torch.Tensor,
    similarity_weight: float = 0.5,
    weights: torch.Tensor | None = None,
) -> LossTerms:
    """Cross-entropy on the decoder logits + ``similarity_weight`` x cross-entropy on the similarity logits."""
    decoder = cross_entropy(decoder_logits, label, weights)
    if similarity_logits is None or similarity_weight == 0.0:
        return LossTerms(decoder, decoder.detach(), None)
    similarity = cross_entropy(similarity_logits, label, weights)
    return LossTerms(decoder + similarity_weight * similarity, decoder.detach(), similarity.detach())
