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

The expert's class wins a pixel where its doubt-weighted precision exceeds the decoder's probability
of its own top class: a reliable expert (water) recovers a class the decoder omits, an unreliable
one (crops) almost never overrides it, and a class the decoder maps confidently keeps its pixels.
On LAS-wide validation this beats both the class-wise rule and precision without the doubt
weight at every threshold (``benchmarks/fusion_validation.py``). Returned as ``log F``, like logits.
"""
from __future__ import annotations

import torch

from landsegmenter.model.fusion import EPS


def precision_guided_fusion(
    decoder_logits: torch.Tensor, expert_logits: torch.Tensor, precision: torch.Tensor, doubt: torch.Tensor
) -> torch.Tensor:
    """Fused log-probabilities [B, K, H, W] from decoder and expert logits [B, K, H, W], the expert's
    class precision [K] (0 for a class it has no opinion on: it chooses among the others) and the
    decoder's doubt per image and class [B, K] (``model.fusion.class_weights``)."""
    p = decoder_logits.softmax(dim=1, dtype=torch.promote_types(decoder_logits.dtype, torch.float32))
    precision = precision.to(device=p.device, dtype=p.dtype)
    support = (doubt.to(p) * precision[None])[:, :, None, None].expand_as(p)  # [B, K, H, W]
    choice = expert_logits.masked_fill((precision <= 0)[None, :, None, None], float("-inf")).argmax(1, keepdim=True)
    fused = torch.maximum(p, torch.zeros_like(p).scatter_(1, choice, support.gather(1, choice)))
    return (fused / fused.sum(dim=1, keepdim=True)).clamp(min=EPS).log()
