"""Training configuration: typed sections read from YAML; unknown keys are errors.

A config file has the sections ``model``, ``data``, ``augment``, ``optim``,
``loss``, ``freeze`` and ``trainer`` (every one optional, defaults below) and
an optional ``output`` directory. Relative paths (``data.store``,
``data.scene.*``, ``model.init``, ``output``) are relative to the config file.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from landsegmenter.errors import LandSegError
from landsegmenter.model.text_prompter import DEFAULT_TEMPLATES

EXTRA_TEMPLATES = (
    "{}",
    "satellite imagery of {}.",
    "an overhead view of {}.",
    "a map region covered by {}.",
)
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
SCHEDULES = ("cosine", "constant")
BATCHING = ("grouped", "mixed")
DATA_NORMALISATIONS = ("auto", "reflectance")
KEEP = ("last", "all")
STRATEGIES = ("auto", "ddp")
PUBLISH = ("last", "best")


@dataclass
class ModelSection:
    preset: str | None = "default"  # architecture of a new model; checked against --init / resume checkpoints
    overrides: dict[str, Any] = field(default_factory=dict)  # build_model(preset, **overrides)
    init: str | None = None  # 'default' or a model directory to start from (fine-tuning)


@dataclass
class SceneSection:
    """One scene with a sparse label raster (values index ``class_names``, 255 unlabelled)."""

    paths: list[str] = field(default_factory=list)
    labels: str = ""
    class_names: list[str] = field(default_factory=list)
    sensor: str | None = None
    bands: list[str] | None = None
    patch_size: int = 128


@dataclass
class DataSection:
    store: str | None = None  # LAS store directory
    scene: SceneSection | None = None  # or one labelled scene (fine-tuning)
    subsets: list[str] | None = None
    train_splits: list[str] = field(default_factory=lambda: ["train"])
    val_splits: list[str] = field(default_factory=lambda: ["val"])
    include_low_quality: bool = False
    batching: str = "grouped"  # grouped: one subset per batch; mixed: any subsets, classes padded and masked
    batch_size: int = 8
    num_workers: int = 2
    # auto: each subset's stored statistics; reflectance: one global reflectance normalisation
    # (recorded in the model, which the mapper then follows); unset: the init model's
    normalisation: str | None = None


@dataclass
class AugmentSection:
    crop_size: int | None = None  # random square crop (patches smaller than this are kept whole)
    flip: bool = True
    rotate90: bool = True
    band_dropout: float = 0.0  # probability per batch of keeping a random subset of >= min_bands bands
    min_bands: int = 2
    sensor_simulation: float = 0.0  # probability per batch of keeping only a simulated sensor's bands
    sensors: list[str] = field(default_factory=lambda: ["rgb", "rgbn", "landsat7:B1,B2,B3,B4,B5,B7"])
    synonyms: float = 0.0  # probability per class name of a registry synonym
    templates: float = 0.0  # probability per batch of prompting with a random subset of template_pool
    template_pool: list[str] = field(default_factory=lambda: [*DEFAULT_TEMPLATES, *EXTRA_TEMPLATES])


@dataclass
class OptimSection:
    lr: float = 3e-4
    weight_decay: float = 0.01
    backbone_lr_scale: float = 1.0  # learning-rate factor of the (pretrained) backbone
    warmup_steps: int = 0
    schedule: str = "cosine"
    grad_clip: float | None = 1.0


@dataclass
class LossSection:
    similarity_weight: float = 0.5  # weight of the similarity head's cross-entropy
    class_weights: dict[str, float] = field(default_factory=dict)  # class name -> weight (others 1)


@dataclass
class FreezeSection:
    backbone_steps: int = 0  # backbone frozen for the first N steps; -1: always
    modules: list[str] = field(default_factory=list)  # module paths frozen throughout, e.g. image_encoder.neck


@dataclass
class TrainerSection:
    max_steps: int = 1000
    val_every: int = 100  # 0: no validation
    val_batches: int | None = None  # at most this many validation batches
    checkpoint_every: int = 100  # 0: only the final checkpoint
    keep_checkpoints: str = "last"  # last | all
    precision: str = "auto"  # auto: bf16-mixed (or 16-mixed) on CUDA, 32-true on CPU
    device: str = "auto"
    devices: int = 1  # processes (one per GPU, or CPU processes) per node; > 1: data-parallel (DDP)
    num_nodes: int = 1  # machines; the batch of a step is data.batch_size * devices * num_nodes
    strategy: str = "auto"  # auto: ddp when devices * num_nodes > 1; ddp: always (e.g. launched by torchrun)
    seed: int = 0
    log_every: int = 10
    publish: str = "last"  # the model/ a run ends with: last (final weights) or best (highest val/miou)
    patience: int = 0  # stop after this many validations without a better val/miou (0: run to max_steps)
    calibrate: bool = False  # fit the decoder temperature, then choose the fusion threshold, on the validation split


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    augment: AugmentSection = field(default_factory=AugmentSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    freeze: FreezeSection = field(default_factory=FreezeSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    output: str | None = None


def read_yaml_config(path: Path) -> dict[str, Any]:
    """The YAML mapping of a config file (empty for an empty file); LandSegError when unreadable."""
    if not path.is_file():
        raise LandSegError(f"no such config file: {path}")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LandSegError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if doc is not None and not isinstance(doc, Mapping):
        raise LandSegError(f"{path}: the config must be a mapping, got {type(doc).__name__}")
    return dict(doc or {})


def load_config(path: str | Path) -> TrainConfig:
    """Read and check a YAML training config; relative paths become relative to its folder."""
    path = Path(path)
    doc = read_yaml_config(path)
    try:
        cfg = config_from_dict(doc)
    except LandSegError as exc:
        raise LandSegError(f"{path}: {exc}") from None
    return resolve_paths(cfg, path.parent)


def config_from_dict(doc: Mapping[str, Any]) -> TrainConfig:
    """A checked :class:`TrainConfig` from a plain mapping."""
    cfg = build_section(TrainConfig, doc, "")
    check_config(cfg)
    return cfg


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def resolve_paths(cfg: TrainConfig, base: Path) -> TrainConfig:
    def absolute(p: str | None) -> str | None:
        return None if p is None else str((base / Path(p).expanduser()).resolve())

    data = cfg.data
    if data.scene is not None:
        scene = dataclasses.replace(
            data.scene, paths=[absolute(p) for p in data.scene.paths], labels=absolute(data.scene.labels)
        )
        data = dataclasses.replace(data, scene=scene)
    data = dataclasses.replace(data, store=absolute(data.store))
    init = cfg.model.init
    model = dataclasses.replace(cfg.model, init=init if init in (None, "default") else absolute(init))
    return dataclasses.replace(cfg, data=data, model=model, output=absolute(cfg.output))


def check_config(cfg: TrainConfig) -> None:
    """LandSegError for values out of range or inconsistent sections."""
    d, a, t, o = cfg.data, cfg.augment, cfg.trainer, cfg.optim
    if (d.store is None) == (d.scene is None):
        raise LandSegError("data needs exactly one of 'store' (a LAS store) or 'scene' (a labelled scene)")
    if d.scene is not None and (not d.scene.paths or not d.scene.labels or not d.scene.class_names):
        raise LandSegError("data.scene needs 'paths', 'labels' and 'class_names'")
    choice("data.batching", d.batching, BATCHING)
    if d.normalisation is not None:
        choice("data.normalisation", d.normalisation, DATA_NORMALISATIONS)
    choice("trainer.precision", t.precision, PRECISIONS)
    choice("trainer.keep_checkpoints", t.keep_checkpoints, KEEP)
    choice("trainer.strategy", t.strategy, STRATEGIES)
    choice("trainer.publish", t.publish, PUBLISH)
    if (t.publish == "best" or t.patience or t.calibrate) and not t.val_every:
        raise LandSegError("trainer.publish: best, trainer.patience and trainer.calibrate need validation "
                           "(trainer.val_every > 0)")
    if t.patience < 0:
        raise LandSegError(f"trainer.patience must be >= 0, got {t.patience}")
    choice("optim.schedule", o.schedule, SCHEDULES)
    for name, value in (("data.batch_size", d.batch_size), ("trainer.max_steps", t.max_steps),
                        ("trainer.devices", t.devices), ("trainer.num_nodes", t.num_nodes)):
        if value < 1:
            raise LandSegError(f"{name} must be at least 1, got {value}")
    for name, value in (("data.num_workers", d.num_workers), ("trainer.val_every", t.val_every),
                        ("trainer.checkpoint_every", t.checkpoint_every), ("optim.warmup_steps", o.warmup_steps)):
        if value < 0:
            raise LandSegError(f"{name} must be >= 0, got {value}")
    for name in ("band_dropout", "sensor_simulation", "synonyms", "templates"):
        value = getattr(a, name)
        if not 0.0 <= value <= 1.0:
            raise LandSegError(f"augment.{name} is a probability: give a value in [0, 1], got {value}")
    if a.band_dropout + a.sensor_simulation > 1.0:
        raise LandSegError("augment.band_dropout + augment.sensor_simulation must not exceed 1")
    if a.min_bands < 2:
        raise LandSegError(f"augment.min_bands must be at least 2, got {a.min_bands}")
    if a.crop_size is not None and a.crop_size < 8:
        raise LandSegError(f"augment.crop_size must be at least 8 pixels, got {a.crop_size}")
    if not a.template_pool or any("{}" not in tpl for tpl in a.template_pool):
        raise LandSegError("augment.template_pool: every template must contain '{}' where the class name goes")
    if o.lr <= 0:
        raise LandSegError(f"optim.lr must be positive, got {o.lr}")


def choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise LandSegError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def build_section(cls: type, doc: Any, where: str) -> Any:
    section = where or "the config"
    if not isinstance(doc, Mapping):
        raise LandSegError(f"{section} must be a mapping, got {type(doc).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in doc if k not in names]
    if unknown:
        raise LandSegError(f"unknown key {unknown[0]!r} in {section}; allowed: {', '.join(names)}")
    values = {k: _value(hints[k], v, f"{where}.{k}" if where else k) for k, v in doc.items()}
    return cls(**values)


def _value(hint: Any, value: Any, where: str) -> Any:
    """``value`` checked (and converted, e.g. int -> float) against the type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _value(inner, value, where)
    if dataclasses.is_dataclass(hint):
        return build_section(hint, value, where)
    if origin is list:
        if isinstance(value, str) or not isinstance(value, list):
            raise LandSegError(f"{where} must be a list, got {value!r}")
        return [_value(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise LandSegError(f"{where} must be a mapping, got {value!r}")
        return {str(k): _value(args[1], v, f"{where}.{k}") for k, v in value.items()}
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (bool, str) and isinstance(value, hint):
        return value
    raise LandSegError(f"{where} must be {_article(hint)}, got {value!r}")


def _article(hint: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))
