"""Dynamic Pseudo-label Assignment (DPA) for unsupervised domain adaptation.

After Tong, Xia and Zhu, "Enabling country-scale land cover mapping with
meter-resolution satellite imagery", ISPRS J. 2023 (Five-Billion-Pixels):

* class weights are fixed once from the *source* class frequencies with the
  ENet rule ``w_c = 1 / ln(1.02 + p_c)`` (:func:`enet_class_weights`);
* the share of target pixels that receive a pseudo-label grows linearly with
  the epoch, ``r(e) = factor * (e + 1) / E`` (:func:`selection_ratio`);
* every step, pseudo-labels are the argmax of the current target prediction,
  and only the most certain fraction ``r`` of the batch's target pixels is kept
  (:func:`select_by_entropy`; variants :func:`select_class_balanced` and
  :func:`select_by_confidence`); the rest is set to the ignore index;
* the loss is the class-weighted cross-entropy on the source labels plus the
  same weighted cross-entropy on the target pseudo-labels (:func:`dpa_loss`),
  with source and target batches passed through the shared-weight network in
  one forward so BatchNorm sees both domains (:func:`siamese_forward`).

Counting rule: a selection over ``N`` pixels (the valid ones when a ``valid``
mask ``[B, H, W]`` is given; invalid pixels never get a pseudo-label) keeps
exactly ``floor(r * N)`` of them (``r * N`` is rounded to 6 decimals first, so ``0.29 * 100`` counts as
29). Pixels are ranked by a stable sort of their score; ties go to the pixel
that comes first in ``[B, H, W]`` (row-major) order, so the result is
deterministic.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F

from landsegmenter.errors import LandSegError

IGNORE_INDEX = 255
Selection = Literal["entropy", "class_balanced", "confidence"]


def count_classes(labels: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX) -> torch.Tensor:
    """Pixel counts ``[K]`` (int64) of the classes in ``labels`` (any shape), ``ignore_index`` left out."""
    flat = labels.reshape(-1).long()
    flat = flat[flat != ignore_index]
    if flat.numel() and (flat.min() < 0 or flat.max() >= num_classes):
        raise LandSegError(f"labels must lie in [0, {num_classes}) or be {ignore_index}")
    return torch.bincount(flat, minlength=num_classes)


def enet_class_weights(counts: torch.Tensor) -> torch.Tensor:
    """ENet weights ``[K]`` from source pixel counts ``[K]``: ``1 / ln(1.02 + p_c)``.

    ``p_c = counts[c] / counts.sum()`` over labelled pixels only (the ignore
    index is not a class and gets no weight; the loss ignores it). A class with
    no pixels gets the largest weight, ``1 / ln(1.02)``.
    """
    counts = torch.as_tensor(counts, dtype=torch.float64)
    if counts.ndim != 1 or counts.numel() == 0:
        raise LandSegError("class counts must be a non-empty 1-D tensor")
    if (counts < 0).any() or counts.sum() <= 0:
        raise LandSegError("class counts must be non-negative with at least one labelled pixel")
    p = counts / counts.sum()
    return (1.0 / torch.log(1.02 + p)).float()


def selection_ratio(epoch: int, epochs: int, factor: float = 0.5) -> float:
    """Share of target pixels to pseudo-label at ``epoch`` (0-based): ``factor * (epoch + 1) / epochs``."""
    if epochs < 1:
        raise LandSegError(f"epochs must be at least 1, got {epochs}")
    if not 0 <= epoch < epochs:
        raise LandSegError(f"epoch must lie in [0, {epochs}), got {epoch}")
    if not 0 < factor <= 1:
        raise LandSegError(f"selection factor must lie in (0, 1], got {factor}")
    return factor * (epoch + 1) / epochs


def _check(logits: torch.Tensor, ratio: float) -> None:
    if logits.ndim != 4:
        raise LandSegError(f"logits must be [B, K, H, W], got shape {tuple(logits.shape)}")
    if not 0 <= ratio <= 1:
        raise LandSegError(f"selection ratio must lie in [0, 1], got {ratio}")


def _n_keep(ratio: float, n: int) -> int:
    return math.floor(round(ratio * n, 6))


def pixel_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Softmax entropy (nats) ``[B, H, W]`` of logits ``[B, K, H, W]``."""
    logp = F.log_softmax(logits.float(), dim=1)
    return -(logp.exp() * logp).sum(dim=1)


def _keep_lowest(score: torch.Tensor, labels: torch.Tensor, n: int, ignore_index: int) -> torch.Tensor:
    """Keep ``labels`` at the ``n`` lowest ``score`` pixels (stable order), ``ignore_index`` elsewhere."""
    order = torch.argsort(score.reshape(-1), stable=True)
    out = torch.full_like(labels.reshape(-1), ignore_index)
    keep = order[:n]
    out[keep] = labels.reshape(-1)[keep]
    return out.view_as(labels)


def _valid_count(labels: torch.Tensor, valid: torch.Tensor | None) -> int:
    if valid is None:
        return labels.numel()
    if valid.shape != labels.shape:
        raise LandSegError(f"valid mask must be [B, H, W] {tuple(labels.shape)}, got {tuple(valid.shape)}")
    return int(valid.sum())


def _masked(score: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """``score`` with invalid pixels ranked last."""
    return score if valid is None else score.masked_fill(~valid.to(score.device, torch.bool), float("inf"))


def select_by_entropy(logits: torch.Tensor, ratio: float, ignore_index: int = IGNORE_INDEX,
                      valid: torch.Tensor | None = None) -> torch.Tensor:
    """Pseudo-labels ``[B, H, W]`` int64 from logits ``[B, K, H, W]``, lowest-entropy ``floor(r*N)`` kept.

    Class-agnostic over the whole batch (``N = B * H * W``, or the valid pixels);
    other pixels get ``ignore_index``.
    """
    _check(logits, ratio)
    logits = logits.detach()
    labels = logits.argmax(dim=1)
    n = _n_keep(ratio, _valid_count(labels, valid))
    return _keep_lowest(_masked(pixel_entropy(logits), valid), labels, n, ignore_index)


def select_by_confidence(logits: torch.Tensor, ratio: float, ignore_index: int = IGNORE_INDEX,
                         valid: torch.Tensor | None = None) -> torch.Tensor:
    """As :func:`select_by_entropy`, ranked by the highest softmax probability instead of entropy."""
    _check(logits, ratio)
    logits = logits.detach()
    prob, labels = F.softmax(logits.float(), dim=1).max(dim=1)
    n = _n_keep(ratio, _valid_count(labels, valid))
    return _keep_lowest(_masked(-prob, valid), labels, n, ignore_index)


def select_class_balanced(logits: torch.Tensor, ratio: float, ignore_index: int = IGNORE_INDEX,
                          valid: torch.Tensor | None = None) -> torch.Tensor:
    """Class-balanced pseudo-labels ``[B, H, W]`` int64 from logits ``[B, K, H, W]``.

    For each predicted class ``c`` with ``N_c`` (valid) pixels in the batch, the
    ``floor(r * N_c)`` lowest-entropy ones are kept (per-class quantiles), so
    rare classes keep pseudo-labels; the total can be below ``floor(r * N)``.
    """
    _check(logits, ratio)
    logits = logits.detach()
    labels = logits.argmax(dim=1)
    _valid_count(labels, valid)
    labels = labels.reshape(-1)
    entropy = pixel_entropy(logits).reshape(-1)
    candidates = labels if valid is None else labels.masked_fill(~valid.reshape(-1).to(labels.device, torch.bool), -1)
    out = torch.full_like(labels, ignore_index)
    for c in candidates.unique().tolist():
        if c < 0:
            continue
        idx = (candidates == c).nonzero().squeeze(1)
        keep = idx[torch.argsort(entropy[idx], stable=True)[: _n_keep(ratio, idx.numel())]]
        out[keep] = c
    return out.view(logits.shape[0], *logits.shape[2:])


SELECTORS = {
    "entropy": select_by_entropy,
    "class_balanced": select_class_balanced,
    "confidence": select_by_confidence,
}


def weighted_ce(logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Weighted-mean cross-entropy; zero (with a graph) when every pixel is ignored."""
    if not (labels != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, labels, weight=weight, ignore_index=ignore_index)


def dpa_loss(
    source_logits: torch.Tensor,
    source_labels: torch.Tensor,
    target_logits: torch.Tensor,
    ratio: float,
    class_weights: torch.Tensor,
    *,
    selection: Selection = "entropy",
    ignore_index: int = IGNORE_INDEX,
    target_valid: torch.Tensor | None = None,
    target_class_weights: torch.Tensor | None = None,
    teacher_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict]:
    """DPA loss: weighted CE on source labels + the same weighted CE on target pseudo-labels.

    ``source_logits`` ``[Bs, K, H, W]``, ``source_labels`` ``[Bs, H, W]``,
    ``target_logits`` ``[Bt, K, H, W]``, ``class_weights`` ``[K]``. Pseudo-labels
    come from ``target_logits.detach()`` with the ``selection`` rule, so the
    gradient flows through the logits only; ``target_valid`` ``[Bt, H, W]`` keeps
    pseudo-labels off pixels without data; ``target_class_weights`` ``[K]`` weigh the pseudo-label term
    (default: ``class_weights``); ``teacher_logits`` ``[Bt, K, H, W]``: pseudo-labels from these instead
    of ``target_logits`` (a fixed teacher). Returns ``(loss, stats)`` with
    ``stats = {"selected_fraction": float, "pseudo_counts": Tensor[K] int64,
    "pseudo_labels": Tensor[Bt, H, W]}`` (the fraction is of all target pixels).
    """
    if selection not in SELECTORS:
        raise LandSegError(f"unknown pseudo-label selection {selection!r}; use one of {sorted(SELECTORS)}")
    k = source_logits.shape[1]
    if target_logits.shape[1] != k or class_weights.numel() != k:
        raise LandSegError("source logits, target logits and class weights must have the same number of classes")
    weight = class_weights.to(device=source_logits.device, dtype=source_logits.dtype)
    labeller = target_logits if teacher_logits is None else teacher_logits
    pseudo = SELECTORS[selection](labeller.detach(), ratio, ignore_index, target_valid)
    loss = weighted_ce(source_logits, source_labels.long(), weight, ignore_index)
    target_weight = weight if target_class_weights is None else target_class_weights.to(weight)
    loss = loss + weighted_ce(target_logits, pseudo, target_weight, ignore_index)
    counts = count_classes(pseudo, k, ignore_index)
    stats = {"selected_fraction": counts.sum().item() / max(pseudo.numel(), 1), "pseudo_counts": counts,
             "pseudo_labels": pseudo}
    return loss, stats


def siamese_forward(
    model: Callable[[torch.Tensor], Any], source_images: torch.Tensor, target_images: torch.Tensor
) -> Any:
    """One shared-weight forward of ``[Bs, C, H, W]`` and ``[Bt, C, H, W]`` images.

    The batches are concatenated, so BatchNorm layers in train mode normalise
    with (and update running stats from) both domains together. Returns
    ``(source_logits [Bs, K, H, W], target_logits [Bt, K, H, W])``; a model with
    several heads (returning a list of logits) gets a list of such pairs.
    """
    if source_images.shape[1:] != target_images.shape[1:]:
        raise LandSegError(
            f"source and target images must share [C, H, W], got {tuple(source_images.shape[1:])} "
            f"and {tuple(target_images.shape[1:])}"
        )
    n = source_images.shape[0]
    out = model(torch.cat([source_images, target_images], dim=0))
    if isinstance(out, torch.Tensor):
        return out[:n], out[n:]
    return [(logits[:n], logits[n:]) for logits in out]
