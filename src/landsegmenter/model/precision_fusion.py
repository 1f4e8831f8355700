r"""Fusion with an expert of measured class-wise precision, where the decoder is in doubt.

The class-wise confidence-guided fusion (:mod:`landsegmenter.model.fusion`) hands a class to the
second expert in proportion to the decoder's doubt, ``w_k = clip((theta - c_k) / theta, 0, 1)``,
whatever the expert's own record. For the spectral-knowledge expert that record is known: its
precision per concept, measured against the weak labels of the training set
(``train/knowledge_precision.py``; on LAS-wide water 0.80, crops 0.14, built 0.08). Here both count:

- ``P = softmax_k(decoder_logits)`` (temperature-calibrated on held-out data);
- the expert's class at pixel x, ``e(x) = argmax_{k known} Q_k(x)``, is right with probability
  ``rho_{e(x)}``, its class precision; its support ``R_k(x) = w_k rho_k`` if ``k = e(x)`` else 0,
  with ``w_k`` [B, K] the decoder's doubt about class k in the image (as in the class-wise rule);
- fused: ``F_k(x) = max(P_k(x), R_k(x))``, renormalised over k.

The doubt can be measured two ways (``LandSegmenterConfig.knowledge_doubt``):

- ``confidence``: the class-wise rule's ``w_k``, from the decoder's mean top probability ``c_k``
  over its own win region ``A_k``. A few confident pixels of a class give ``w_k = 0``, however
  many more the expert finds.
- ``coverage``: the same confidence sum spread over the larger of the decoder's and the expert's
  regions, ``c_k = sum_{x in A_k} max_j P_j(x) / max(|A_k|, |E_k|)`` with ``E_k`` the pixels where
  the expert chooses k: a decoder that maps a class on a small part of what the expert finds is
  in doubt about it in proportion.

The expert's class wins a pixel where its doubt-weighted precision exceeds the decoder's probability
of its own top class: a reliable expert (water) recovers a class the decoder omits, an unreliable
one (crops) almost never overrides it, and a class the decoder maps confidently keeps its pixels.
On LAS-wide validation this beats both the class-wise rule and precision without the doubt
weight at every threshold (``benchmarks/fusion_validation.py``); ``trainer.calibrate`` chooses the
doubt measure with the threshold. Returned as ``log F``, like logits.
"""
from __future__ import annotations

import torch

from landsegmenter.model.fusion import EPS, fusion_weights, per_class_sums

DOUBTS = ("confidence", "coverage")


def expert_choice(expert_logits: torch.Tensor, precision: torch.Tensor) -> torch.Tensor:
    """The expert's class [B, 1, H, W] among those it has an opinion on (precision > 0)."""
    unknown = (precision.to(expert_logits.device) <= 0)[None, :, None, None]
    return expert_logits.masked_fill(unknown, float("-inf")).argmax(1, keepdim=True)


def coverage_doubt(
    decoder_logits: torch.Tensor, expert_logits: torch.Tensor, precision: torch.Tensor, threshold: float,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """The decoder's doubt [B, K] about each class the expert chooses somewhere (``coverage`` in the
    module docstring), over the ``valid`` [B, H, W] pixels of [B, K, H, W] logits."""
    top, winner = decoder_logits.softmax(dim=1, dtype=torch.float32).max(dim=1)
    choice = expert_choice(expert_logits, precision)[:, 0]
    weight = torch.ones_like(top) if valid is None else valid.to(top.dtype)
    classes = decoder_logits.shape[1]
    decoder_area = per_class_sums(winner, classes, weight)
    expert_area = per_class_sums(choice, classes, weight)
    confidence = per_class_sums(winner, classes, top * weight) / torch.maximum(decoder_area, expert_area).clamp(min=1)
    return fusion_weights(confidence.float(), expert_area > 0, threshold)


def precision_guided_fusion(
    decoder_logits: torch.Tensor, expert_logits: torch.Tensor, precision: torch.Tensor, doubt: torch.Tensor
) -> torch.Tensor:
    """Fused log-probabilities [B, K, H, W] from decoder and expert logits [B, K, H, W], the expert's
    class precision [K] (0 for a class it has no opinion on: it chooses among the others) and the
    decoder's doubt per image and class [B, K] (``model.fusion.class_weights``)."""
    p = decoder_logits.softmax(dim=1, dtype=torch.promote_types(decoder_logits.dtype, torch.float32))
    precision = precision.to(device=p.device, dtype=p.dtype)
    support = (doubt.to(p) * precision[None])[:, :, None, None].expand_as(p)  # [B, K, H, W]
    choice = expert_choice(expert_logits, precision)
    fused = torch.maximum(p, torch.zeros_like(p).scatter_(1, choice, support.gather(1, choice)))
    return (fused / fused.sum(dim=1, keepdim=True)).clamp(min=EPS).log()
