"""Configuration of ``landseg adapt``: typed sections read from YAML; unknown keys are errors.

Sections: ``source`` (exactly one of a LAS ``store``, a ``benchmark`` ``NAME:PATH``
or a labelled ``scene``), ``target`` (the unlabelled scene), ``classes`` (the
output legend), ``model``, ``adapt``, ``optim``, ``trainer`` and ``output``.
Defaults are the reference settings of DPA (Tong et al. 2023) except the
number of steps, which depends on the data. Relative paths are relative to the
config file.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from landsegmenter.errors import LandSegError
from landsegmenter.taxonomy.legends import get_legend
from landsegmenter.train.config import build_section, choice, read_yaml_config

ARCHITECTURES = ("unet", "landsegmenter")
METHODS = ("dpa", "source_only")
SELECTIONS = ("entropy", "class_balanced", "confidence")
TARGET_WEIGHTS = ("source", "none")
TEACHERS = ("self", "init")
NORMALISATIONS = ("auto", "scene", "reflectance")
TARGET_GSDS = ("source", "native")


@dataclass
class SourceSection:
    store: str | None = None  # LAS store directory
    subsets: list[str] | None = None
    splits: list[str] = field(default_factory=lambda: ["train", "val"])
    benchmark: str | None = None  # NAME:PATH
    split: str = "train"
    scene: list[str] | None = None  # raster file(s) of one labelled scene
    labels: str | None = None  # its label raster, in ``legend`` codes
    legend: str | None = None
    sensor: str | None = None
    bands: list[str] | None = None
    gsd_m: float | None = None  # pixel size of the source when the data does not record it


@dataclass
class TargetSection:
    paths: list[str] = field(default_factory=list)  # raster file(s) of one scene
    sensor: str | None = None
    bands: list[str] | None = None
    # auto: sensor statistics when known; scene: statistics of each domain; reflectance: one global
    # reflectance normalisation of source and target (physical units; what a reflectance model takes)
    normalisation: str = "auto"
    gsd: str = "source"  # source: read the target at the source's pixel size (reference); native: as it is


@dataclass
class ModelSection:
    architecture: str = "unet"
    width: int = 32  # U-Net: channels of the first level (64 in the reference)
    depth: int = 4
    init: str | None = None  # start from: a model directory of this architecture (LandSegmenter also 'default')
    preset: str = "default"  # LandSegmenter without init
    # modules kept fixed, with their normalisation statistics (e.g. image_encoder.backbone: the recipe
    # of the bundled model, whose validation fell whenever its backbone moved)
    freeze: list[str] = field(default_factory=list)


@dataclass
class AdaptSection:
    method: str = "dpa"
    selection: str = "entropy"
    factor: float = 0.5  # r(e) = factor * (e + 1) / epochs
    similarity_weight: float = 0.5  # LandSegmenter: weight of the similarity head's loss
    # class weights of the pseudo-label term: source (the ENet weights of the source term, as the
    # reference) or none (plain cross-entropy: a class rare in the source is not amplified on the target)
    target_weights: str = "source"
    # who labels the target: self (the network being trained, as the reference) or init (model.init,
    # kept fixed: the selection cannot feed on its own drift)
    teacher: str = "self"


@dataclass
class OptimSection:
    lr: float = 0.005
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-5
    poly_power: float = 0.9


@dataclass
class TrainerSection:
    epochs: int = 120
    steps_per_epoch: int = 50
    batch_size: int = 16  # per domain
    crop: int = 256
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision on CUDA


@dataclass
class AdaptConfig:
    source: SourceSection = field(default_factory=SourceSection)
    target: TargetSection = field(default_factory=TargetSection)
    classes: str = ""  # output legend key
    model: ModelSection = field(default_factory=ModelSection)
    adapt: AdaptSection = field(default_factory=AdaptSection)
    optim: OptimSection = field(default_factory=OptimSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    output: str | None = None


def load_adapt_config(path: str | Path | None) -> AdaptConfig:
    """The config file's sections (defaults without a file), relative paths made absolute; unchecked."""
    if path is None:
        return AdaptConfig()
    path = Path(path)
    doc = read_yaml_config(path)
    try:
        cfg = build_section(AdaptConfig, doc, "")
    except LandSegError as exc:
        raise LandSegError(f"{path}: {exc}") from None
    return resolve_paths(cfg, path.parent)


def resolve_paths(cfg: AdaptConfig, base: Path) -> AdaptConfig:
    def absolute(p: str | None) -> str | None:
        return None if p is None else str((base / Path(p).expanduser()).resolve())

    def spec(p: str | None) -> str | None:  # NAME:PATH keeps its name
        if p is None or ":" not in p:
            return p
        name, _, rest = p.partition(":")
        return f"{name}:{absolute(rest)}"

    s, t, m = cfg.source, cfg.target, cfg.model
    source = dataclasses.replace(
        s, store=absolute(s.store), benchmark=spec(s.benchmark), labels=absolute(s.labels),
        scene=None if s.scene is None else [absolute(p) for p in s.scene],
    )
    target = dataclasses.replace(t, paths=[absolute(p) for p in t.paths])
    model = dataclasses.replace(m, init=m.init if m.init in (None, "default") else absolute(m.init))
    return dataclasses.replace(cfg, source=source, target=target, model=model, output=absolute(cfg.output))


def check_adapt_config(cfg: AdaptConfig) -> None:
    """LandSegError for a missing input, a value out of range or inconsistent sections."""
    s, t, tr = cfg.source, cfg.target, cfg.trainer
    if sum(x is not None for x in (s.store, s.benchmark, s.scene)) != 1:
        raise LandSegError("the source needs exactly one of a LAS store, a benchmark (NAME:PATH) or a labelled scene")
    if s.scene is not None and (not s.scene or not s.labels or not s.legend):
        raise LandSegError("a source scene needs 'scene' (raster files), 'labels' and 'legend'")
    if not t.paths:
        raise LandSegError("no target scene given: pass --target FILE [FILE ...]")
    if not cfg.classes:
        raise LandSegError("no output classes given: set 'classes' to a legend key, e.g. nc_landsat7_strata")
    get_legend(cfg.classes)
    choice("model.architecture", cfg.model.architecture, ARCHITECTURES)
    choice("adapt.method", cfg.adapt.method, METHODS)
    choice("adapt.selection", cfg.adapt.selection, SELECTIONS)
    choice("adapt.target_weights", cfg.adapt.target_weights, TARGET_WEIGHTS)
    choice("adapt.teacher", cfg.adapt.teacher, TEACHERS)
    if cfg.adapt.teacher == "init" and cfg.model.init is None:
        raise LandSegError("adapt.teacher: init needs a model.init to label the target")
    choice("target.normalisation", t.normalisation, NORMALISATIONS)
    choice("target.gsd", t.gsd, TARGET_GSDS)
    for name, value in (("trainer.epochs", tr.epochs), ("trainer.steps_per_epoch", tr.steps_per_epoch),
                        ("trainer.batch_size", tr.batch_size), ("model.width", cfg.model.width),
                        ("model.depth", cfg.model.depth)):
        if value < 1:
            raise LandSegError(f"{name} must be at least 1, got {value}")
    if tr.crop < 32:
        raise LandSegError(f"trainer.crop must be at least 32 pixels, got {tr.crop}")
    if not 0 < cfg.adapt.factor <= 1:
        raise LandSegError(f"adapt.factor must lie in (0, 1], got {cfg.adapt.factor}")
    if cfg.optim.lr <= 0:
        raise LandSegError(f"optim.lr must be positive, got {cfg.optim.lr}")
    if s.gsd_m is not None and s.gsd_m <= 0:
        raise LandSegError(f"source.gsd_m must be positive, got {s.gsd_m}")


def with_overrides(cfg: AdaptConfig, *, source: str | None = None, target: list[str] | None = None,
                   sensor: str | None = None, bands: list[str] | None = None, classes: str | None = None,
                   output: str | None = None, **trainer_and_method: object) -> AdaptConfig:
    """``cfg`` with command-line values: ``source`` is a LAS store directory or ``NAME:PATH``;
    other keywords (``method``, ``selection``, ``architecture``, ``epochs``, ``device``...) go to
    the section that has them. None leaves a value as it is."""
    if source is not None:
        is_store = (Path(source) / "zarr.json").is_file()
        if not is_store and ":" not in source:
            raise LandSegError(f"--source {source}: give a LAS store directory or a benchmark as NAME:PATH")
        store = str(Path(source).resolve()) if is_store else None
        cfg = dataclasses.replace(cfg, source=dataclasses.replace(
            cfg.source, store=store, benchmark=None if is_store else source, scene=None))
    if target is not None:
        cfg = dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, paths=[str(Path(p)) for p in target]))
    for name, value in (("sensor", sensor), ("bands", bands)):
        if value is not None:
            cfg = dataclasses.replace(cfg, target=dataclasses.replace(cfg.target, **{name: value}))
    cfg = dataclasses.replace(cfg, classes=classes or cfg.classes, output=output or cfg.output)
    for key, value in trainer_and_method.items():
        if value is None:
            continue
        section = next((n for n in ("adapt", "trainer", "model") if hasattr(getattr(cfg, n), key)), None)
        if section is None:
            raise LandSegError(f"unknown adaptation option {key!r}")
        cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(getattr(cfg, section), **{key: value})})
    return cfg
