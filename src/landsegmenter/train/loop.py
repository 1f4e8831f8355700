"""``train``: build the model, data and Lightning trainer from a config and fit.

Precision: ``auto`` is ``bf16-mixed`` on CUDA GPUs that support it,
``16-mixed`` (with gradient scaling) on other GPUs, ``32-true`` on CPU.

Data-parallel training (``trainer.devices`` x ``trainer.num_nodes`` processes,
or ``trainer.strategy: ddp``) uses Lightning's DDP strategy on the NCCL backend
on GPUs and gloo on the CPU. Every process runs :func:`train`; only global rank
0 checks and prepares the output directory, writes checkpoints and publishes
``model/``. Setting the environment variable ``LANDSEG_RANK_TRACE=1`` makes
every rank write ``rank-trace/rank-N.json`` in the output directory: the sample
ids of its training batches and a checksum of its final weights.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies import DDPStrategy

from landsegmenter.errors import LandSegError
from landsegmenter.model.io import load_model
from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.model.precision_fusion import DOUBTS
from landsegmenter.model.presets import build_model
from landsegmenter.model.zoo import bundled_model_dir
from landsegmenter.train.calibration import fit_temperature
from landsegmenter.train.checkpoint import (SafetensorsCheckpointIO, StepCheckpoint, TrainRun, publish_model,
                                            replace_dir)
from landsegmenter.train.config import TrainConfig, check_config, config_to_dict, load_config
from landsegmenter.train.datamodule import LASDataModule
from landsegmenter.train.fusion_selection import select_fusion_threshold
from landsegmenter.train.knowledge_precision import MIN_PIXELS, knowledge_precision, not_labelled_by_rule
from landsegmenter.train.module import SegmenterModule
from landsegmenter.train.scene import LabelledScene, SceneDataModule


@dataclass
class TrainResult:
    output: Path
    model_dir: Path
    steps: int
    metrics: dict[str, float]


def train(
    config: TrainConfig | str | Path,
    *,
    output: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    max_steps: int | None = None,
    init: str | None = None,
    device: str | None = None,
    quiet: bool = False,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train (or fine-tune, with ``init``) as ``config`` says; writes checkpoints and ``model/`` under ``output``."""
    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    check_config(cfg)
    cfg = with_overrides(cfg, output=output, max_steps=max_steps, init=init, device=device)
    if cfg.output is None:
        raise LandSegError("no output directory: pass --output DIR or set 'output' in the config")
    run = TrainRun(cfg.output)
    leader = launch_rank(cfg) == 0  # other ranks were started by a launcher after (or with) rank 0
    if leader:
        resume_from = run.check(config_to_dict(cfg), resume=resume, overwrite=overwrite)
    else:
        resume_from = run.latest_checkpoint() if resume else None
    L.seed_everything(cfg.trainer.seed, verbose=False)
    model = initial_model(cfg, resume_from)
    model.normalisation = cfg.data.normalisation or getattr(model, "normalisation", "auto")
    data = build_datamodule(cfg, model.normalisation)
    try:
        if leader:
            run.start(config_to_dict(cfg), resume=resume_from is not None)
        module = SegmenterModule(model, cfg, data.legends)
        extra = [*callbacks, ResumeHint(), *([RankTrace(run.root / "rank-trace")] if trace_ranks() else [])]
        with quiet_lightning():
            trainer = build_trainer(cfg, module, run, data.has_validation(), quiet, extra)
            trainer.fit(module, datamodule=data, ckpt_path=str(resume_from) if resume_from else None,
                        weights_only=True)
    finally:
        if isinstance(data, SceneDataModule):
            data.close()
    save_final_checkpoint(trainer, run)
    if trainer.is_global_zero:
        best = best_weights(run) if cfg.trainer.publish == "best" else None
        if best is not None:
            replace_dir(best, run.model_dir)
        else:
            publish_model(module.model.cpu().eval(), run.model_dir)
        if cfg.trainer.calibrate and isinstance(data, LASDataModule) and data.has_validation():
            calibrate_published(run.model_dir, data.val_set, data.train_set)
    trainer.strategy.barrier("landseg.publish_model")
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return TrainResult(run.root, run.model_dir, trainer.global_step, metrics)


class BestValidation(Callback):
    """Tracks the highest ``val/miou``: keeps its weights in ``<run>/best/`` (with ``best.json``) when
    ``keep`` is set, and stops training after ``patience`` validations without a better one (0: never)."""

    monitor = "val/miou"

    def __init__(self, run: TrainRun | None, keep: bool, patience: int) -> None:
        self.run, self.keep, self.patience = run, keep, patience
        self.best, self.since_best = float("-inf"), 0

    @classmethod
    def score(cls, trainer: L.Trainer) -> float | None:
        value = trainer.callback_metrics.get(cls.monitor)
        return None if value is None else float(value)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        value = self.score(trainer)
        if value is None or trainer.sanity_checking:
            return
        if value > self.best:
            self.best, self.since_best = value, 0
            if self.keep and self.run is not None and trainer.is_global_zero:
                publish_model(pl_module.model, self.run.root / "best")
                (self.run.root / "best.json").write_text(json.dumps({"step": trainer.global_step, self.monitor: value}))
        else:
            self.since_best += 1
        if self.patience and self.since_best >= self.patience:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "since_best": self.since_best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.since_best = state["best"], state["since_best"]


def calibrate_published(model_dir: Path, held_out, training=None) -> tuple[float, float | None]:
    """Fit the published model's decoder temperature on ``held_out`` samples; for a model with the
    spectral-knowledge expert, measure the expert's precision on the ``training`` samples (a LAS
    dataset); then choose its fusion threshold on ``held_out`` (with both), and publish it again:
    (temperature, threshold)."""
    model = load_model(model_dir).eval()
    samples = [held_out[i] for i in range(len(held_out))]
    temperature, fit = fit_temperature(model, samples)
    model.config.decoder_temperature = temperature
    knowledge = {}
    if model.knowledge and training is not None:
        model.config.knowledge_precision = knowledge_precision(not_labelled_by_rule(training), model.prompter)
        knowledge = {"knowledge_precision_split": "train", "knowledge_precision_min_pixels": MIN_PIXELS}
    threshold, scores = None, {}
    if model.fusion or model.knowledge:
        doubts = DOUBTS if model.knowledge and model.config.knowledge_precision is not None else None
        threshold, scores = select_fusion_threshold(model, samples, doubts=doubts)
        if doubts:
            knowledge["knowledge_doubt"] = model.config.knowledge_doubt
    publish_model(model, model_dir, provenance={"calibration": {
        "decoder_temperature": temperature, "split": "validation", **fit, **knowledge,
        "fusion_threshold": threshold, "fusion_threshold_miou": scores}})
    return temperature, threshold


def best_weights(run: TrainRun) -> Path | None:
    """A copy of the best-validation weights, ready to be moved into place (None without validation)."""
    best = run.root / "best"
    if not best.is_dir():
        return None
    copy = run.root / ".best-publish.tmp"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(best, copy)
    return copy


def stopping_callbacks(cfg: TrainConfig, run: TrainRun | None) -> list[Callback]:
    """Best-weights tracking and early stopping on ``val/miou``, as the trainer section asks."""
    t = cfg.trainer
    if t.publish != "best" and not t.patience:
        return []
    return [BestValidation(run, keep=t.publish == "best", patience=t.patience)]


class ResumeHint(Callback):
    """On Ctrl-C (Lightning then exits with status 1), say how to continue."""

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            print(f"landseg: interrupted at step {trainer.global_step}; continue with --resume", file=sys.stderr)


def launch_rank(cfg: TrainConfig) -> int:
    """The global rank a launcher gave this process before Lightning starts: torchrun sets ``RANK``,
    ``srun`` ``SLURM_PROCID``, Lightning's own launcher ``LOCAL_RANK`` (and ``NODE_RANK``) in the
    processes it starts (a user sets ``NODE_RANK`` on further machines); 0 for a process started by hand."""
    env = os.environ
    if "RANK" in env:
        return int(env["RANK"])
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return int(env["SLURM_PROCID"])
    if "LOCAL_RANK" in env or "NODE_RANK" in env:  # NODE_RANK alone: the first process of a further machine
        return int(env.get("NODE_RANK", "0")) * cfg.trainer.devices + int(env.get("LOCAL_RANK", "0"))
    return 0


def trace_ranks() -> bool:
    return os.environ.get("LANDSEG_RANK_TRACE", "").lower() not in ("", "0", "false", "no")


def weights_checksum(model: torch.nn.Module) -> str:
    """SHA-256 over the names and bytes of the model's state dict."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


class RankTrace(Callback):
    """Writes ``rank-N.json`` into ``directory`` at the end of training: rank, world size, the sample
    ids of each training step of this rank, and the checksum of the final weights (see module doc)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.steps = Path(directory), []

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.steps.append({"step": trainer.global_step, "samples": list(batch["sample_id"])})

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size, "steps": self.steps,
                  "weights_sha256": weights_checksum(pl_module.model)}
        path = self.directory / f"rank-{trainer.global_rank}.json"
        path.write_text(json.dumps(record, indent=1), encoding="utf-8")


class StepProgressBar(TQDMProgressBar):
    """Progress in steps of ``max_steps`` (the endless training data has no epochs), without the log version."""

    @property
    def total_train_batches(self) -> int:
        return self.trainer.max_steps

    def on_train_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_start(trainer, *args)  # a resumed run starts mid-epoch: no epoch start
        self._count_steps(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._count_steps(trainer)

    def _count_steps(self, trainer: L.Trainer) -> None:
        bar = self.train_progress_bar
        bar.total, bar.initial = trainer.max_steps, trainer.global_step
        bar.set_description("training")

    def get_metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items


def with_overrides(cfg: TrainConfig, **values: Any) -> TrainConfig:
    """Apply the command-line overrides that are not None."""
    if values.get("output") is not None:
        cfg = dataclasses.replace(cfg, output=str(Path(values["output"]).resolve()))
    trainer = cfg.trainer
    if values.get("max_steps") is not None:
        if values["max_steps"] < 1:
            raise LandSegError(f"--max-steps must be at least 1, got {values['max_steps']}")
        trainer = dataclasses.replace(trainer, max_steps=values["max_steps"])
    if values.get("device") is not None:
        trainer = dataclasses.replace(trainer, device=values["device"])
    model = cfg.model
    if values.get("init") is not None:
        spec = values["init"]
        model = dataclasses.replace(model, init=spec if spec == "default" else str(Path(spec).resolve()))
    return dataclasses.replace(cfg, trainer=trainer, model=model)


def build_datamodule(cfg: TrainConfig, normalisation: str = "auto") -> LASDataModule | SceneDataModule:
    """The training data, normalised as the model to be trained takes its inputs."""
    if cfg.data.store is not None:
        return LASDataModule(cfg.data, cfg.augment, cfg.trainer.seed, normalisation)
    s = cfg.data.scene
    dataset = LabelledScene(s.paths, s.labels, s.class_names, sensor=s.sensor, bands=s.bands,
                            patch_size=s.patch_size, augment=cfg.augment, normalisation=normalisation)
    return SceneDataModule(dataset, cfg.data.batch_size, cfg.trainer.seed)


SWITCHES = {"fusion", "knowledge"}  # model.overrides that change no weights


def initial_model(cfg: TrainConfig, resume_from: Path | None) -> LandSegmenter:
    """From the checkpoint when resuming, else from ``model.init``, else a new ``model.preset``."""
    if resume_from is not None:
        return load_model(resume_from, preset=cfg.model.preset)
    if cfg.model.init is not None:
        model = load_init(cfg.model.init, cfg.model.preset)
        for switch in SWITCHES & cfg.model.overrides.keys():  # they apply to an init too
            setattr(model, switch, bool(cfg.model.overrides[switch]))
        return model
    if cfg.model.preset is None:
        raise LandSegError("model.preset is required to train a new model (or give model.init / --init)")
    return build_model(cfg.model.preset, **cfg.model.overrides)



def load_init(spec: str, preset: str | None = None) -> LandSegmenter:
    """``'default'`` (the bundled model) or a model directory, checked against ``preset`` when given."""
    path = bundled_model_dir() if spec == "default" else Path(spec)
    if spec == "default" and not (path / "config.yaml").is_file():
        raise LandSegError("the bundled default model is not included in this installation; pass --init DIR")
    if not path.exists():
        raise LandSegError(f"no such model: {spec} (use 'default' or a model directory written by landseg train)")
    return load_model(path, preset=preset)


def resolve_accelerator(device: str) -> tuple[str, Any]:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind == "cpu":
        return "cpu", 1
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise LandSegError(f"device {device!r} requested but no CUDA GPU is available")
        return "gpu", [int(index)] if index else 1
    raise LandSegError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")


def resolve_parallel(cfg: TrainConfig) -> tuple[str, Any, Any]:
    """(accelerator, devices, strategy) of the Lightning trainer: DDP over gloo (CPU) or NCCL (GPU) when
    ``trainer.devices * trainer.num_nodes > 1`` or ``trainer.strategy`` is ``ddp``."""
    t = cfg.trainer
    accelerator, devices = resolve_accelerator(t.device)
    if t.devices > 1:
        if isinstance(devices, list):
            raise LandSegError(f"device {t.device!r} names one GPU; use device: cuda (or auto) "
                               f"with devices: {t.devices}")
        devices = t.devices
    if t.strategy == "auto" and t.devices * t.num_nodes == 1:
        return accelerator, devices, "auto"
    backend = "nccl" if accelerator == "gpu" else "gloo"
    # Frozen modules (e.g. the backbone during freeze.backbone_steps) get no gradients in some steps.
    return accelerator, devices, DDPStrategy(process_group_backend=backend, find_unused_parameters=True)


def resolve_precision(precision: str, accelerator: str) -> str:
    if precision == "16-mixed" and accelerator != "gpu":
        raise LandSegError("16-mixed precision needs a CUDA GPU; use bf16-mixed or 32-true on the CPU")
    if precision != "auto":
        return precision
    if accelerator != "gpu":
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def build_trainer(
    cfg: TrainConfig, module: SegmenterModule, run: TrainRun | None, validate: bool, quiet: bool,
    callbacks: Sequence[Callback] = (),
) -> L.Trainer:
    """A Lightning trainer for ``max_steps`` steps; ``run`` None: no logs and no checkpoints."""
    t = cfg.trainer
    accelerator, devices, strategy = resolve_parallel(cfg)
    validate = validate and t.val_every > 0
    extra: list[Callback] = [*callbacks, *stopping_callbacks(cfg, run), *([] if quiet else [StepProgressBar()])]
    plugins = []
    if run is not None:
        extra.append(StepCheckpoint(run.checkpoints, t.checkpoint_every, t.keep_checkpoints == "all"))
        extra.append(LearningRateMonitor(logging_interval="step"))
        plugins.append(SafetensorsCheckpointIO(lambda: module.model, cfg.model.preset))
    return L.Trainer(
        accelerator=accelerator, devices=devices, num_nodes=t.num_nodes, strategy=strategy,
        precision=resolve_precision(t.precision, accelerator),
        max_steps=t.max_steps, max_epochs=-1, check_val_every_n_epoch=None,
        val_check_interval=t.val_every if validate else None,
        limit_val_batches=(t.val_batches if t.val_batches is not None else 1.0) if validate else 0,
        num_sanity_val_steps=0, gradient_clip_val=cfg.optim.grad_clip, log_every_n_steps=t.log_every,
        logger=CSVLogger(run.root, name="logs") if run is not None else False,
        enable_checkpointing=run is not None, callbacks=extra, plugins=plugins or None,
        enable_progress_bar=not quiet, enable_model_summary=False, use_distributed_sampler=False,
        default_root_dir=str(run.root) if run is not None else None,
    )


def save_final_checkpoint(trainer: L.Trainer, run: TrainRun) -> None:
    """A checkpoint at the last step (when the periodic ones missed it); older ones go unless all are kept."""
    step = trainer.global_step
    final = run.checkpoints / f"step-{step:06d}"
    if not trainer.strategy.broadcast(final.exists()):  # saving is collective: every rank decides alike
        trainer.save_checkpoint(final, weights_only=False)  # full training state, for resuming
    callback = trainer.checkpoint_callback
    if callback is not None and callback.save_top_k == 1:
        for other_step, path in run.checkpoint_dirs():
            if other_step != step:
                trainer.strategy.remove_checkpoint(path)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Silence Lightning's start-up banners and the warnings that do not apply here.

    Frozen modules (the text encoder, a frozen backbone) are in eval mode on
    purpose; workers are configured in the data section.
    """
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for message in IGNORED_WARNINGS:
            warnings.filterwarnings("ignore", message)
        try:
            yield
        finally:
            logger.setLevel(level)


IGNORED_WARNINGS = (
    ".*does not have many workers.*",
    ".*exists and is not empty.*",
    ".*module\\(s\\) in eval mode.*",
    ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
)
