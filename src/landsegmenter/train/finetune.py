"""Fine-tuning: a trained model on new labels.

- :func:`finetune_on_labels`: the transfer protocol. A copy of a model is
  tuned on patches of one scene centred on its sparse labels (points or
  polygons) and returned; nothing is written.
- :func:`finetune`: ``landseg finetune``, i.e. :func:`~landsegmenter.train.loop.train`
  starting from ``--init`` weights, with checkpoints, resume and ``model/``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Sequence

from landsegmenter.errors import LandSegError
from landsegmenter.model.landsegmenter import LandSegmenter
from landsegmenter.train.config import (
    AugmentSection, DataSection, ModelSection, OptimSection, SceneSection, TrainConfig, TrainerSection,
    check_config, load_config,
)
from landsegmenter.train.loop import TrainResult, build_trainer, quiet_lightning, resolve_accelerator, train
from landsegmenter.train.module import SegmenterModule
from landsegmenter.train.scene import LabelledScene, SceneDataModule


def finetune_on_labels(
    model: LandSegmenter,
    scene_paths: Sequence[str] | str,
    label_raster: str | Path,
    class_names: Sequence[str],
    *,
    sensor: str | None = None,
    bands: Sequence[str] | None = None,
    steps: int = 300,
    patch_size: int = 128,
    batch_size: int = 8,
    lr: float = 1e-4,
    seed: int = 0,
    device: str = "cpu",
) -> LandSegmenter:
    """A copy of ``model`` fine-tuned on the labelled pixels of a scene, in eval mode on ``device``.

    ``label_raster``: one band on the scene's grid, values = index into
    ``class_names``, 255 = unlabelled. Patches of ``patch_size`` pixels are
    centred on labelled pixels (every labelled pixel inside a patch counts),
    normalised as the model takes its inputs (its recorded ``normalisation``), flipped and rotated at random; AdamW at a constant ``lr``
    for ``steps`` steps of ``batch_size`` patches. The same seed gives the same
    model on the CPU.
    """
    if not isinstance(model, LandSegmenter):
        raise LandSegError(f"only a LandSegmenter can be fine-tuned, got {type(model).__name__}")
    paths = [str(scene_paths)] if isinstance(scene_paths, (str, Path)) else [str(p) for p in scene_paths]
    cfg = transfer_config(paths, str(label_raster), list(class_names), sensor, bands, steps, patch_size,
                          batch_size, lr, seed, device)
    accelerator, _ = resolve_accelerator(device)
    dataset = LabelledScene(paths, label_raster, class_names, sensor=sensor, bands=bands,
                            patch_size=patch_size, augment=cfg.augment,
                            normalisation=getattr(model, "normalisation", "auto"))
    try:
        model.validate(dataset.scene.wavelengths, dataset.class_names)
        tuned = copy.deepcopy(model).train()
        module = SegmenterModule(tuned, cfg)
        with quiet_lightning():
            trainer = build_trainer(cfg, module, None, validate=False, quiet=True)
            trainer.fit(module, datamodule=SceneDataModule(dataset, batch_size, seed))
    finally:
        dataset.close()
    return tuned.to(device if device != "auto" else "cuda" if accelerator == "gpu" else "cpu").eval()


def transfer_config(
    paths: list[str], labels: str, class_names: list[str], sensor: str | None, bands: Sequence[str] | None,
    steps: int, patch_size: int, batch_size: int, lr: float, seed: int, device: str,
) -> TrainConfig:
    """The training config of :func:`finetune_on_labels`."""
    cfg = TrainConfig(
        model=ModelSection(preset=None),
        data=DataSection(
            scene=SceneSection(paths=paths, labels=labels, class_names=class_names, sensor=sensor,
                               bands=None if bands is None else list(bands), patch_size=patch_size),
            batch_size=batch_size, num_workers=0,
        ),
        augment=AugmentSection(flip=True, rotate90=True),
        optim=OptimSection(lr=lr, weight_decay=0.01, schedule="constant", grad_clip=1.0),
        trainer=TrainerSection(max_steps=steps, val_every=0, checkpoint_every=0, seed=seed, device=device),
    )
    check_config(cfg)
    return cfg


def finetune(config: TrainConfig | str | Path, *, init: str | None = None, resume: bool = False,
             **kwargs: Any) -> TrainResult:
    """``landseg finetune``: :func:`train` from ``init`` ('default' or a model directory)."""
    cfg = load_config(config) if isinstance(config, (str, Path)) else config
    if init is None and cfg.model.init is None and not resume:
        raise LandSegError("fine-tuning needs a model to start from: pass --init default or --init DIR")
    return train(cfg, init=init, resume=resume, **kwargs)
