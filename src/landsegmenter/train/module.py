"""The LightningModule that trains a LandSegmenter.

Per step: the batch is split into groups sharing bands and classes, each group
is augmented (bands, class-name synonyms) and run through ``forward_train``,
and the loss is cross-entropy on the decoder logits plus a weighted
cross-entropy on the similarity logits. All randomness of step ``s`` comes
from a generator seeded with (seed, s), so a resumed run repeats an
uninterrupted one exactly (in data-parallel training, rank ``r`` of ``n`` seeds
step ``s`` with the global batch index ``s * n + r``, as its sampler does).
Validation reports the loss, the decoder's pixel
accuracy, and pixel accuracy and mIoU of the inference output (heads fused as
the mapper runs them; mIoU over the classes present in the reference, per
subset, then averaged over subsets); with several processes the metrics are
reduced over all ranks.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import lightning as L
import numpy as np
import torch
from torch import nn
from torchmetrics.functional.classification import multiclass_confusion_matrix

from landsegmenter.errors import LandSegError
from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.train.augment import BatchAugment, class_synonyms, prompt_templates
from landsegmenter.train.config import TrainConfig
from landsegmenter.train.forward import BatchOutputs, forward_batch, predict_batch
from landsegmenter.train.losses import IGNORE_INDEX, LossTerms, class_weight_table, segmentation_loss

BACKBONE = "image_encoder.backbone"
TEXT_ENCODER = "prompter.encoder"


def step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, 0x5EED])


class SegmenterModule(L.LightningModule):
    """Trains ``model`` with the ``loss``, ``optim``, ``augment`` and ``freeze`` sections of ``cfg``."""

    def __init__(self, model: LandSegmenter, cfg: TrainConfig, legends: dict[str, str | None] | None = None) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg
        self.augment = BatchAugment(cfg.augment)
        self.legends = legends or {}
        self.frozen = [resolve_module(model, path) for path in cfg.freeze.modules]
        self._confusion: dict[str, torch.Tensor] = {}

    # ---------------------------------------------------------------- training
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.apply_freeze(self.global_step)

    def apply_freeze(self, step: int) -> None:
        """Freeze the configured modules and, during the first ``backbone_steps`` steps, the backbone."""
        steps = self.cfg.freeze.backbone_steps
        backbone = resolve_module(self.model, BACKBONE)
        set_trainable(backbone, not (steps < 0 or step < steps))
        for module in self.frozen:
            set_trainable(module, False)

    def _augment_group(
        self, wavelengths: Sequence[float], names: Sequence[str], subset: str, rng: np.random.Generator
    ) -> tuple[np.ndarray | None, list[str]]:
        """Kept bands and prompted names for one group of a training batch."""
        bands = self.augment.bands(wavelengths, rng)
        synonyms = class_synonyms(tuple(names), self.legends.get(subset))
        return bands, self.augment.names(names, synonyms, rng)

    def compute_loss(self, batch: dict[str, Any], rng: np.random.Generator | None) -> tuple[LossTerms, BatchOutputs]:
        """Loss of a batch; ``rng`` enables the band, name and template augmentation."""
        templates = self.augment.templates(rng) if rng is not None else None
        with prompt_templates(self.model.prompter, templates):
            out = forward_batch(self.model, batch, self._augment_group if rng is not None else None, rng)
        weights = class_weight_table(out.class_names, self.cfg.loss.class_weights,
                                     out.decoder_logits.shape[1], out.decoder_logits.device)
        terms = segmentation_loss(out.decoder_logits, out.similarity_logits, out.label,
                                  self.cfg.loss.similarity_weight, weights)
        return terms, out

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        rank, world = self._rank()
        terms, out = self.compute_loss(batch, step_rng(self.cfg.trainer.seed, self.global_step * world + rank))
        if not torch.isfinite(terms.total):
            raise LandSegError(f"training diverged at step {self.global_step}: the loss is {terms.total.item()}")
        size = len(out.subsets)
        self.log("train/loss", terms.total.detach(), prog_bar=True, batch_size=size)
        self.log("train/decoder_loss", terms.decoder, batch_size=size)
        if terms.similarity is not None:
            self.log("train/similarity_loss", terms.similarity, batch_size=size)
        return terms.total

    # -------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._confusion = {}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        terms, out = self.compute_loss(batch, None)
        size = len(out.subsets)
        labelled = out.label != IGNORE_INDEX
        decoder_correct = (out.decoder_logits.argmax(1) == out.label) & labelled
        self.log("val/loss", terms.total, batch_size=size, sync_dist=True)
        self.log("val/decoder_acc", decoder_correct.sum() / labelled.sum().clamp_min(1), batch_size=size,
                 sync_dist=True)
        prediction = predict_batch(self.model, batch)
        for i, subset in enumerate(out.subsets):
            k = len(out.class_names[i])
            matrix = multiclass_confusion_matrix(prediction[i], out.label[i], k, ignore_index=IGNORE_INDEX)
            self._confusion[subset] = self._confusion.get(subset, 0) + matrix

    def on_validation_epoch_end(self) -> None:
        """Pixel accuracy and mIoU of the inference output (both heads fused, as the mapper runs)."""
        confusion = self._all_ranks_confusion()
        if not confusion:
            return
        correct = sum(m.diagonal().sum() for m in confusion.values())
        total = sum(m.sum() for m in confusion.values())
        per_subset = {s: mean_iou(m) for s, m in sorted(confusion.items())}
        scores = [v for v in per_subset.values() if not math.isnan(v)]
        # the same values on every rank (the matrices are summed over ranks): sync_dist only averages equals
        self.log("val/acc", (correct / total.clamp_min(1)).float(), sync_dist=True)
        self.log("val/miou", float(np.mean(scores)) if scores else float("nan"), sync_dist=True)
        for subset, value in per_subset.items():
            self.log(f"val/miou/{subset}", value, sync_dist=True)

    def _rank(self) -> tuple[int, int]:
        """(global rank, world size); (0, 1) outside a trainer."""
        trainer = getattr(self, "_trainer", None)
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _all_ranks_confusion(self) -> dict[str, torch.Tensor]:
        """The per-subset confusion matrices summed over all processes (a collective: every rank calls it)."""
        rank, world = self._rank()
        if world == 1 or not torch.distributed.is_available() or not torch.distributed.is_initialized():
            return self._confusion
        parts: list[Any] = [None] * world
        torch.distributed.all_gather_object(parts, {s: m.cpu() for s, m in self._confusion.items()})
        merged: dict[str, torch.Tensor] = {}
        for part in parts:
            for subset, matrix in part.items():
                merged[subset] = merged.get(subset, 0) + matrix
        return {s: m.to(self.device) for s, m in merged.items()}

    # --------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> dict[str, Any]:
        o, steps = self.cfg.optim, self.cfg.trainer.max_steps
        groups = parameter_groups(self.model, o.lr, o.weight_decay, o.backbone_lr_scale)
        optimizer = torch.optim.AdamW(groups, lr=o.lr)
        schedule = warmup_cosine(o.warmup_steps, steps, cosine=o.schedule == "cosine")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def warmup_cosine(warmup: int, total: int, cosine: bool = True) -> Callable[[int], float]:
    """LR factor: linear warm-up over ``warmup`` steps, then constant or cosine decay to 0 at ``total``.

    A plain function, so the scheduler state does not store it: a resumed run
    with a larger ``total`` stretches the schedule.
    """

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def mean_iou(confusion: torch.Tensor) -> float:
    """Mean IoU over the classes present in the reference (rows: reference, columns: prediction)."""
    confusion = confusion.double()
    tp, reference, predicted = confusion.diagonal(), confusion.sum(1), confusion.sum(0)
    present = reference > 0
    if not present.any():
        return float("nan")
    return float((tp / (reference + predicted - tp))[present].mean())


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise LandSegError(f"freeze: the model has no module {path!r} (e.g. image_encoder.backbone)") from None


def set_trainable(module: nn.Module, trainable: bool) -> None:
    """(Un)freeze the parameters; frozen modules also keep their normalisation statistics (eval mode)."""
    module.requires_grad_(trainable)
    module.train(trainable)


def parameter_groups(model: LandSegmenter, lr: float, weight_decay: float, backbone_scale: float) -> list[dict]:
    """AdamW groups: backbone at ``lr * backbone_scale``; no decay on biases and norms; text encoder excluded."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if name.startswith(TEXT_ENCODER):
            continue
        key = (name.startswith(BACKBONE), param.ndim > 1)
        groups.setdefault(key, []).append(param)
    return [
        {"params": params, "lr": lr * (backbone_scale if backbone else 1.0),
         "weight_decay": weight_decay if decay else 0.0}
        for (backbone, decay), params in sorted(groups.items())
    ]
