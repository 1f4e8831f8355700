"""``landseg adapt``: unsupervised domain adaptation with Dynamic Pseudo-label Assignment.

One network with shared weights (and shared BatchNorm statistics) sees a
labelled source batch and an unlabelled target batch in every step
(:func:`~landsegmenter.train.dpa.siamese_forward`). The loss is the ENet-weighted
cross-entropy on the source labels plus the same weighted cross-entropy on the
target pseudo-labels that :func:`~landsegmenter.train.dpa.dpa_loss` picks from the
current prediction, a share ``r(e) = factor * (e + 1) / epochs`` of the target
pixels that grows every epoch. ``method: source_only`` drops the target term
(and the target batch): the baseline with the same schedule and weights.

SGD with Nesterov momentum and a poly learning-rate decay, mixed precision on
CUDA. The target is read at the source GSD. The adapted model is written as a
model directory that ``landseg map`` and ``landseg evaluate`` take as
``--model``, with ``adapt.json`` (config, class weights, per-epoch history).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from landsegmenter.errors import LandSegError
from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.model.presets import build_model
from landsegmenter.model.unet import UNetConfig, UNetSegmenter
from landsegmenter.taxonomy.legends import get_legend
from landsegmenter.train.adapt_config import AdaptConfig, check_adapt_config
from landsegmenter.train.adapt_data import (
    SourceInfo, SourcePatches, TargetScene, benchmark_source, las_source, scene_source,
)
from landsegmenter.train.checkpoint import publish_model
from landsegmenter.train.dpa import IGNORE_INDEX, dpa_loss, enet_class_weights, selection_ratio, siamese_forward, weighted_ce
from landsegmenter.train.loop import load_init
from landsegmenter.train.module import resolve_module, set_trainable

REPORT_FILE = "adapt.json"


@dataclass
class AdaptResult:
    model_dir: Path | None
    model: torch.nn.Module
    history: list[dict[str, Any]]
    class_weights: list[float]
    dropped_labels: dict[str, int]
    seconds: float


def open_source(cfg: AdaptConfig) -> SourceInfo:
    s = cfg.source
    if s.store is not None:
        source = las_source(s.store, s.subsets, s.splits, cfg.target.normalisation)
    elif s.benchmark is not None:
        source = benchmark_source(s.benchmark, s.split)
    else:
        source = scene_source(s.scene, s.labels, s.legend, sensor=s.sensor, bands=s.bands, resolution=s.gsd_m,
                              patch=2 * cfg.trainer.crop, normalisation=cfg.target.normalisation)
    gsd = s.gsd_m or source.gsd_m
    if gsd is None:
        raise LandSegError(f"the source {source.description} records no pixel size: set source.gsd_m")
    return dataclasses.replace(source, gsd_m=gsd)


def build_adapt_model(cfg: AdaptConfig, wavelengths: list[float], band_names: list[str]) -> torch.nn.Module:
    """The model to adapt: ``init`` (e.g. a source-only model: a warm start), else a new U-Net on the
    target bands and output classes, or a new LandSegmenter of ``preset``."""
    names = list(get_legend(cfg.classes).names)
    m = cfg.model
    if m.init is not None:
        model = load_init(m.init)
        if not isinstance(model, UNetSegmenter if m.architecture == "unet" else LandSegmenter):
            raise LandSegError(f"model.init {m.init} is not a {m.architecture} model")
        model.validate(wavelengths, names)
        takes = getattr(model, "normalisation", "auto")
        if takes == "reflectance" and cfg.target.normalisation != "reflectance":
            raise LandSegError(f"model.init {m.init} takes globally normalised reflectance: set target.normalisation: "
                               "reflectance (and give the target in reflectance units)")
        if isinstance(model, UNetSegmenter) and model.class_names != names:
            raise LandSegError(f"model.init {m.init} maps {', '.join(model.class_names)}, not the classes of "
                               f"'{cfg.classes}'")
        return model
    if m.architecture == "unet":
        return UNetSegmenter(UNetConfig(wavelengths=list(wavelengths), class_names=names,
                                        band_names=list(band_names), width=m.width, depth=m.depth))
    return build_model(m.preset)


def head_weights(model: torch.nn.Module, similarity_weight: float) -> list[float]:
    """Loss weight of each head: the U-Net's one, or LandSegmenter's decoder and similarity heads."""
    if isinstance(model, UNetSegmenter) or model.similarity_head is None or similarity_weight == 0:
        return [1.0]
    return [1.0, similarity_weight]


def head_logits(model: torch.nn.Module, images: torch.Tensor, wavelengths: list[float],
                class_names: list[str], n_heads: int) -> list[torch.Tensor]:
    """The first ``n_heads`` heads' logits ``[B, K, H, W]`` (see :func:`head_weights`)."""
    if isinstance(model, UNetSegmenter):
        return [model.logits(images)]
    out = model.forward_train(images, wavelengths, class_names)
    return [out.decoder_logits, out.similarity_logits][:n_heads]


class Adaptation:
    """The state of one run: data, model, optimiser, class weights (see module doc)."""

    def __init__(self, cfg: AdaptConfig, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        tr = cfg.trainer
        self.class_names = list(get_legend(cfg.classes).names)
        source_info = open_source(cfg)
        t = cfg.target
        self.gsd = source_info.gsd_m if t.gsd == "source" else None
        self.target = TargetScene(t.paths, tr.crop, sensor=t.sensor, bands=t.bands, resolution=self.gsd,
                                  normalisation=t.normalisation)
        self.source = SourcePatches(source_info, self.target.wavelengths, cfg.classes, tr.crop)
        counts, self.dropped = self.source.class_counts(seed=tr.seed)
        if counts.sum() == 0:
            raise LandSegError(f"no source pixel has a class of legend '{cfg.classes}'")
        self.counts = counts
        self.weights = enet_class_weights(torch.as_tensor(counts)).to(device)
        self.target_weights = self.weights if cfg.adapt.target_weights == "source" else torch.ones_like(self.weights)
        torch.manual_seed(tr.seed)
        self.model = build_adapt_model(cfg, self.target.wavelengths, self.target.scene.band_names).to(device).train()
        for path in cfg.model.freeze:
            set_trainable(resolve_module(self.model, path), False)
        self.head_weights = head_weights(self.model, cfg.adapt.similarity_weight)
        self.teacher = copy.deepcopy(self.model).eval().requires_grad_(False) if cfg.adapt.teacher == "init" else None
        o = cfg.optim
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(trainable, lr=o.lr, momentum=o.momentum,
                                         nesterov=o.nesterov, weight_decay=o.weight_decay)
        self.amp = tr.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.rng = np.random.default_rng(tr.seed)

    def heads(self, images: torch.Tensor) -> list[torch.Tensor]:
        return head_logits(self.model, images, self.target.wavelengths, self.class_names, len(self.head_weights))

    def step_loss(self, ratio: float) -> tuple[torch.Tensor, dict[str, Any]]:
        b = self.cfg.trainer.batch_size
        xs, ys = (t.to(self.device) for t in self.source.batch(self.rng, b))
        if self.cfg.adapt.method == "source_only":
            pairs = zip(self.heads(xs), self.head_weights)
            return sum(w * weighted_ce(logits, ys, self.weights, IGNORE_INDEX) for logits, w in pairs), {}
        xt, valid = (t.to(self.device) for t in self.target.batch(self.rng, b))
        (main_s, main_t), *rest = siamese_forward(self.heads, xs, xt)
        loss, stats = dpa_loss(main_s, ys, main_t, ratio, self.weights, selection=self.cfg.adapt.selection,
                               target_valid=valid, target_class_weights=self.target_weights,
                               teacher_logits=self.teacher_logits(xt))
        for (src, tgt), w in zip(rest, self.head_weights[1:]):
            loss = loss + w * (weighted_ce(src, ys, self.weights, IGNORE_INDEX)
                               + weighted_ce(tgt, stats["pseudo_labels"], self.target_weights, IGNORE_INDEX))
        return loss, stats

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor | None:
        """The fixed teacher's main-head logits of the target batch (None: the network labels itself)."""
        if self.teacher is None:
            return None
        return head_logits(self.teacher, images, self.target.wavelengths, self.class_names, 1)[0]

    def set_lr(self, step: int, total: int) -> None:
        o = self.cfg.optim
        for group in self.optimizer.param_groups:
            group["lr"] = o.lr * (1 - step / total) ** o.poly_power

    def run(self, progress: bool) -> list[dict[str, Any]]:
        tr, history = self.cfg.trainer, []
        total = tr.epochs * tr.steps_per_epoch
        with tqdm(total=total, desc=f"adapt ({self.cfg.adapt.method})", unit="step", disable=not progress) as bar:
            for epoch in range(tr.epochs):
                ratio = selection_ratio(epoch, tr.epochs, self.cfg.adapt.factor)
                history.append(self.epoch(epoch, ratio, total, bar))
        return history

    def epoch(self, epoch: int, ratio: float, total: int, bar: tqdm) -> dict[str, Any]:
        tr = self.cfg.trainer
        losses, selected = [], []
        pseudo = np.zeros(len(self.class_names), np.int64)
        for i in range(tr.steps_per_epoch):
            self.set_lr(epoch * tr.steps_per_epoch + i, total)
            with torch.autocast(device_type=self.device.type, enabled=self.amp):
                loss, stats = self.step_loss(ratio)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            losses.append(float(loss.detach()))
            if stats:
                selected.append(stats["selected_fraction"])
                pseudo += stats["pseudo_counts"].cpu().numpy()
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}", r=f"{ratio:.3f}")
        record = {"epoch": epoch, "ratio": ratio, "loss": float(np.mean(losses))}
        if selected:
            record["selected_fraction"] = float(np.mean(selected))
            record["pseudo_label_share"] = {n: round(float(c / max(pseudo.sum(), 1)), 4)
                                            for n, c in zip(self.class_names, pseudo)}
        return record

    def close(self) -> None:
        self.target.close()
        close_source = getattr(self.source.source.dataset, "close", None)  # a labelled scene holds files open
        if close_source is not None:
            close_source()


def adapt(cfg: AdaptConfig, *, overwrite: bool = False, progress: bool = True) -> AdaptResult:
    """Run the adaptation ``cfg`` describes; writes the model to ``cfg.output`` when it is set."""
    from landsegmenter.model.zoo import resolve_device

    check_adapt_config(cfg)
    output = Path(cfg.output) if cfg.output else None
    if output is not None and output.exists() and not overwrite and (output.is_file() or any(output.iterdir())):
        raise LandSegError(f"{output} exists and is not empty; pass --overwrite to replace it")
    started = time.perf_counter()
    run = Adaptation(cfg, resolve_device(cfg.trainer.device))
    try:
        history = run.run(progress)
    finally:
        run.close()
    model = run.model.cpu().eval()
    model.normalisation = cfg.target.normalisation  # the mapper follows it
    result = AdaptResult(output, model, history, run.weights.cpu().tolist(), dict(run.dropped),
                         time.perf_counter() - started)
    if output is not None:
        report = adapt_report(cfg, result, run)
        publish_model(model, output, provenance=report["provenance"],
                      extra_files={REPORT_FILE: json.dumps(report, indent=2).encode()})
    return result


def adapt_report(cfg: AdaptConfig, result: AdaptResult, run: Adaptation) -> dict[str, Any]:
    return {
        "provenance": {
            "made_by": "landseg adapt",
            "method": cfg.adapt.method,
            "selection": cfg.adapt.selection if cfg.adapt.method == "dpa" else None,
            "source": run.source.source.description,
            "target": list(cfg.target.paths),
            "source_gsd_m": run.source.source.gsd_m,
            "map_at_resolution": run.gsd,  # None: the target's own pixel size
            "classes": cfg.classes,
        },
        "config": dataclasses.asdict(cfg),
        "source_class_pixels": dict(zip(run.class_names, run.counts.tolist())),
        "class_weights": dict(zip(run.class_names, result.class_weights)),
        "dropped_source_labels": result.dropped_labels,
        "history": result.history,
        "seconds": round(result.seconds, 1),
    }

