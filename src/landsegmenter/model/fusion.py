r"""Class-wise confidence-guided fusion of decoder and similarity scores.

On an unseen taxonomy the decoder may never pick some classes, or pick them
with little confidence. A second expert gives another opinion (the text-aligned
similarity head, or the spectral knowledge of :mod:`landsegmenter.model.knowledge`,
which speaks only for the classes it knows); this rule hands a class over to it in proportion to how unsure the
decoder is about that class. Everything is computed per image (tile) ``b``:

- ``P = softmax_k(decoder_logits)``, ``Q = softmax_k(similarity_logits)``.
- Decoder win region of class k: ``A_k = {x : argmax_j P_j(x) = k}``.
- Class-wise decoder confidence:
  ``c_k = mean_{x in A_k} max_j P_j(x)``, and ``c_k = 0`` when ``A_k`` is empty.
- Similarity support: class k is *present* when its similarity win region
  ``{x : argmax_j Q_j(x) = k}`` covers more than ``min_area`` of the pixels
  (default 0: at least one pixel).
- Weight: ``w_k = clip((theta - c_k) / theta, 0, 1)`` if k is present, else 0.
  A class the decoder never predicts (c_k = 0) but the similarity head
  supports gets w_k = 1; a class predicted with confidence >= theta keeps w_k = 0.
- Fused: ``F_k(x) = (1 - w_k) P_k(x) + w_k Q_k(x)``, renormalised over k.

The result is returned as ``log F`` so it can be used like logits.
"""
from __future__ import annotations

import torch
from torch import nn

EPS = 1e-8


def per_class_sums(labels: torch.Tensor, num_classes: int, values: torch.Tensor | None = None) -> torch.Tensor:
    """Per image, the count (or sum of ``values``) of pixels of each label: labels [B, H, W] -> [B, K]."""
    batch = labels.shape[0]
    offsets = torch.arange(batch, device=labels.device)[:, None, None] * num_classes
    weights = None if values is None else values.flatten().double()
    sums = torch.bincount((labels + offsets).flatten(), weights=weights, minlength=batch * num_classes)
    return sums.reshape(batch, num_classes)


def class_confidence(probs: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean max-probability over each class's win region: probs [B, K, H, W] -> c [B, K] (0 where k never wins);
    ``valid`` [B, H, W] bool: only those pixels count."""
    top, winner = probs.max(dim=1)
    weight = None if valid is None else valid.to(top.dtype)
    area = per_class_sums(winner, probs.shape[1], weight)
    total = per_class_sums(winner, probs.shape[1], top if weight is None else top * weight)
    return (total / area.clamp(min=1)).to(probs.dtype)


def class_presence(probs: torch.Tensor, min_area: float = 0.0, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Whether each class wins more than ``min_area`` of the (valid) pixels: probs [B, K, H, W] -> [B, K] bool."""
    weight = None if valid is None else valid.to(probs.dtype)
    area = per_class_sums(probs.argmax(dim=1), probs.shape[1], weight)
    pixels = probs[0, 0].numel() if valid is None else valid.flatten(1).sum(1, keepdim=True).clamp(min=1)
    return area / pixels > min_area


def fusion_weights(confidence: torch.Tensor, present: torch.Tensor, threshold: float) -> torch.Tensor:
    """w_k = clip((theta - c_k) / theta, 0, 1) where present, else 0: [B, K] -> [B, K]."""
    weights = ((threshold - confidence) / threshold).clamp(0.0, 1.0)
    return torch.where(present, weights, torch.zeros_like(weights))


def fuse_probabilities(p: torch.Tensor, q: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """(1 - w) P + w Q, renormalised over classes: [B, K, H, W] x2, [B, K] -> [B, K, H, W]."""
    w = weights[:, :, None, None].to(p.dtype)
    fused = (1 - w) * p + w * q
    return fused / fused.sum(dim=1, keepdim=True).clamp(min=EPS)


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    return logits.softmax(dim=1, dtype=torch.promote_types(logits.dtype, torch.float32))


def class_weights(
    decoder_logits: torch.Tensor, similarity_logits: torch.Tensor, threshold: float = 0.7, min_area: float = 0.0,
    available: torch.Tensor | None = None, valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-image class weights w [B, K] from two [B, K, H, W] logit maps (see module docstring);
    ``available`` [K] bool: the classes the second expert has an opinion on (default: all);
    ``valid`` [B, H, W] bool: the pixels with data (default: all)."""
    p, q = _probabilities(decoder_logits), _probabilities(similarity_logits)
    present = class_presence(q, min_area, valid)
    if available is not None:
        present = present & available.to(present.device)[None]
    return fusion_weights(class_confidence(p, valid), present, threshold)


def fuse_logits(decoder_logits: torch.Tensor, similarity_logits: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """log F [B, K, H, W] for given class weights [B, K]."""
    fused = fuse_probabilities(_probabilities(decoder_logits), _probabilities(similarity_logits), weights)
    return fused.clamp(min=EPS).log()


def confidence_guided_fusion(
    decoder_logits: torch.Tensor, similarity_logits: torch.Tensor, threshold: float = 0.7, min_area: float = 0.0
) -> torch.Tensor:
    """Fused log-probabilities [B, K, H, W] from two [B, K, H, W] logit maps (see module docstring)."""
    weights = class_weights(decoder_logits, similarity_logits, threshold, min_area)
    return fuse_logits(decoder_logits, similarity_logits, weights)


class ConfidenceGuidedFusion(nn.Module):
    """Module form of :func:`confidence_guided_fusion`; ``enabled=False`` passes the decoder logits through."""

    def __init__(self, threshold: float = 0.7, min_area: float = 0.0, enabled: bool = True) -> None:
        super().__init__()
        if not 0 < threshold <= 1:
            raise ValueError(f"fusion threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.min_area = min_area
        self.enabled = enabled

    def forward(
        self, decoder_logits: torch.Tensor, similarity_logits: torch.Tensor, region: tuple[int, int] | None = None,
        available: torch.Tensor | None = None, valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fuse two [B, K, H, W] maps; ``region`` (h, w): only the top-left h x w pixels
        (the unpadded image) count for the class confidences and presence, and of those only the
        ``valid`` [B, H, W] ones (pixels with data); ``available`` [K]: the classes the second map
        has an opinion on."""
        if not self.enabled:
            return decoder_logits
        h, w = region if region is not None else decoder_logits.shape[-2:]
        inside = (..., slice(0, h), slice(0, w))
        weights = class_weights(decoder_logits[inside], similarity_logits[inside], self.threshold, self.min_area,
                                available, None if valid is None else valid[:, :h, :w])
        return fuse_logits(decoder_logits, similarity_logits, weights)
