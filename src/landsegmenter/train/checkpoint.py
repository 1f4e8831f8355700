"""Training checkpoints and the run directory.

A checkpoint is a directory::

    step-000200/
      model.safetensors, config.yaml   the model (model.io.save_model): loadable by load_model / --model
      trainer_state.pt                 optimizer, scheduler, loop and callback state: plain tensors and
                                       containers (torch.save), read with weights_only=True

written under a temporary name and renamed, so a checkpoint directory is
always complete. A run directory holds ``train.yaml`` (the resolved config),
``checkpoints/``, ``logs/`` (CSV metrics) and, at the end, ``model/``.
"""
from __future__ import annotations

import dataclasses
import os
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from lightning.fabric.plugins import CheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint

from landsegmenter.errors import LandSegError
from landsegmenter.geo.cog import atomic_write_bytes
from landsegmenter.model.io import Model, load_model, save_model
from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.train.config import TrainConfig

TRAINER_STATE = "trainer_state.pt"
STEP_DIR = re.compile(r"^step-(\d+)$")
MODEL_PREFIX = "model."
# Settings a resumed run may change: they do not alter what is learned step by step.
RESUMABLE_CHANGES = ("trainer.max_steps", "trainer.device", "trainer.log_every", "data.num_workers", "model.init")


def read_trainer_state(directory: Path) -> dict[str, Any]:
    path = directory / TRAINER_STATE
    if not path.is_file():
        raise LandSegError(f"{directory} is not a training checkpoint: {TRAINER_STATE} is missing")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise LandSegError(f"cannot read {path}: {type(exc).__name__}; the checkpoint is corrupt") from None
    if not isinstance(state, dict) or "global_step" not in state:
        raise LandSegError(f"{path} is not a training state")
    return state


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished directory ``tmp`` to ``target``, replacing an older one."""
    old = target.with_name(f".{target.name}.old")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def publish_model(model: Model, target: Path, provenance: dict[str, Any] | None = None,
                  extra_files: dict[str, bytes] | None = None) -> Path:
    """``save_model`` (plus ``extra_files``) into ``target`` atomically (temporary directory + rename)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp, provenance)
    for name, data in (extra_files or {}).items():
        (tmp / name).write_bytes(data)
    replace_dir(tmp, target)
    return target


class SafetensorsCheckpointIO(CheckpointIO):
    """Lightning checkpoint I/O in the checkpoint layout above; the model comes from ``get_model()``."""

    def __init__(self, get_model: Callable[[], LandSegmenter], preset: str | None) -> None:
        self.get_model, self.preset = get_model, preset

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        save_model(self.get_model(), tmp)
        torch.save({k: v for k, v in checkpoint.items() if k != "state_dict"}, tmp / TRAINER_STATE)
        replace_dir(tmp, target)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        directory = Path(path)
        state = read_trainer_state(directory)
        model = load_model(directory, preset=self.preset)
        state["state_dict"] = {MODEL_PREFIX + k: v for k, v in model.state_dict().items()}
        return state

    def remove_checkpoint(self, path: Any) -> None:
        shutil.rmtree(path, ignore_errors=True)


class StepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` writing ``step-NNNNNN`` directories every ``every`` steps (``train`` adds the last)."""

    FILE_EXTENSION = ""

    def __init__(self, dirpath: Path, every: int, keep_all: bool) -> None:
        super().__init__(
            dirpath=dirpath, filename="step-{step:06d}", auto_insert_metric_name=False,
            every_n_train_steps=every if every > 0 else None, save_top_k=-1 if keep_all else 1,
            save_on_train_epoch_end=False, enable_version_counter=False,
        )


class TrainRun:
    """The output directory of a training run (see module doc)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.config_file = self.root / "train.yaml"
        self.checkpoints = self.root / "checkpoints"
        self.model_dir = self.root / "model"
        self.logs = self.root / "logs"

    def checkpoint_dirs(self) -> list[tuple[int, Path]]:
        if not self.checkpoints.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.checkpoints.iterdir() if (m := STEP_DIR.match(p.name))]
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoint_dirs()
        return found[-1][1] if found else None

    def exists(self) -> bool:
        return self.config_file.exists() or self.model_dir.exists() or bool(self.checkpoint_dirs())

    def check(self, config: dict[str, Any], *, resume: bool, overwrite: bool) -> Path | None:
        """LandSegError unless the flags fit the directory; the checkpoint to resume from. Writes nothing."""
        if resume and overwrite:
            raise LandSegError("--resume continues a run and --overwrite replaces it: pass only one")
        if resume:
            checkpoint = self.latest_checkpoint()
            if checkpoint is None:
                raise LandSegError(f"nothing to resume: {self.checkpoints} holds no checkpoint")
            read_trainer_state(checkpoint)
            self._check_same_config(config)
            return checkpoint
        if self.exists() and not overwrite:
            raise LandSegError(
                f"{self.root} already holds a training run; pass --resume to continue it or --overwrite to start again"
            )
        return None

    def start(self, config: dict[str, Any], resume: bool = False) -> None:
        """Write train.yaml; a new run first removes an earlier run's checkpoints, logs and model."""
        if resume and self.config_file.is_file():  # keep the record of the weights the run started from
            saved = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
            config = {**config, "model": {**config["model"], "init": saved["model"]["init"]}}
        if not resume:
            for path in (self.checkpoints, self.model_dir, self.logs, self.root / "best"):
                shutil.rmtree(path, ignore_errors=True)
            (self.root / "best.json").unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.config_file, yaml.safe_dump(config, sort_keys=False, allow_unicode=True).encode())

    def _check_same_config(self, config: dict[str, Any]) -> None:
        if not self.config_file.is_file():
            return
        saved = yaml.safe_load(self.config_file.read_text(encoding="utf-8"))
        saved = with_defaults(saved, dataclasses.asdict(TrainConfig()))  # runs from before newer settings
        difference = first_difference(saved, config, ignore=RESUMABLE_CHANGES)
        if difference is not None:
            raise LandSegError(
                f"{self.root} was trained with a different configuration ({difference}); "
                "resume with the same config, or start again with --overwrite"
            )


def with_defaults(saved: Any, defaults: Any) -> Any:
    """``saved`` with the keys it lacks (settings added later) taken from ``defaults``."""
    if not isinstance(saved, dict) or not isinstance(defaults, dict):
        return saved
    merged = {key: value for key, value in defaults.items() if key not in saved}
    return {**{k: with_defaults(v, defaults.get(k)) for k, v in saved.items()}, **merged}


def first_difference(a: Any, b: Any, where: str = "", ignore: tuple[str, ...] = ()) -> str | None:
    """The first key path where two nested configs differ, e.g. ``"data.batch_size: 8 -> 4"``."""
    if where in ignore:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(dict.fromkeys([*a, *b])):
            found = first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key), ignore)
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} -> {b!r}"
