"""Named model configurations and ``build_model``.

- ``tiny``: micro Hiera, tiny adapter, small decoder, random init; for tests and CI.
- ``default``: the bundled model; ImageNet EfficientNet-Lite0 backbone, the
  spectral/high-frequency adapter, MiniLM text, a 128-wide decoder. Chosen by
  CPU forward time per 512 x 512 tile (13 bands, 7 classes, 2 threads, fastest
  of 3 on an otherwise idle run): Lite0 0.15 s, Lite2 0.18 s, the multispectral
  ukis-csmask EfficientNet-B4 0.30 s, Hiera-tiny 3.1 s; Lite0 was also the
  fastest in every interleaved run on a busy machine (B4 2-3x slower).
  ``image={"backbone": "efficientnet-b4", "pretrained": "ukis-csmask"}``
  switches to the B4 encoder. ``benchmarks/model_presets.py`` re-measures.
- ``paper``: the published architecture: Hiera-B+, a DOFA ViT-B adapter, a CLIP
  ViT-B-32 text tower (width 512, 12 layers, 8 heads, context 77, vocabulary
  49408), a 256-wide decoder. The CLIP tower is used when its weights and BPE
  vocabulary are given (``text={"clip_weights": ..., "clip_vocab": ...}``);
  without them the frozen text encoder falls back to MiniLM, since a
  random-initialised frozen text tower carries no class semantics.

Every preset accepts any band set. ``build_model(preset, **overrides)``
overrides top-level fields; the nested ``image``, ``text`` and ``decoder``
sections take a dict of the fields to change.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from landsegmenter.errors import LandSegError
from landsegmenter.model.clip_text import ClipTextConfig
from landsegmenter.model.decoder import DecoderConfig
from landsegmenter.model.image_encoder import ImageEncoderConfig
from landsegmenter.model.landsegmenter import LandSegmenter, LandSegmenterConfig
from landsegmenter.model.text_prompter import TextConfig

PRESETS = ("tiny", "default", "paper")


def tiny() -> LandSegmenterConfig:
    return LandSegmenterConfig(
        preset="tiny",
        image=ImageEncoderConfig(
            backbone="hiera", hiera_size="micro", d_model=64, adapter_dim=32, adapter_depth=1,
            adapter_heads=2, adapter_patch=16, pretrained=None,
        ),
        text=TextConfig(encoder="minilm"),
        decoder=DecoderConfig(depth=2, num_heads=4, mlp_dim=128),
    )


def default() -> LandSegmenterConfig:
    return LandSegmenterConfig(
        preset="default",
        image=ImageEncoderConfig(
            backbone="efficientnet-lite0", d_model=128, adapter_dim=96, adapter_depth=2,
            adapter_heads=4, adapter_patch=16, pretrained="efficientnet-lite0",
        ),
        text=TextConfig(encoder="minilm"),
        decoder=DecoderConfig(depth=2, num_heads=4, mlp_dim=512),
    )


def paper() -> LandSegmenterConfig:
    return LandSegmenterConfig(
        preset="paper",
        image=ImageEncoderConfig(
            backbone="hiera", hiera_size="base_plus", d_model=256, adapter_dim=768, adapter_depth=12,
            adapter_heads=12, adapter_patch=16, pretrained=None,
        ),
        text=TextConfig(encoder="clip", clip=ClipTextConfig()),
        decoder=DecoderConfig(depth=2, num_heads=8, mlp_dim=2048),
    )


_FACTORIES = {"tiny": tiny, "default": default, "paper": paper}


def preset_config(name: str, **overrides: Any) -> LandSegmenterConfig:
    """The named preset's config with ``overrides`` applied."""
    if name not in _FACTORIES:
        raise LandSegError(f"unknown model preset {name!r}: use one of {', '.join(PRESETS)}")
    cfg = _apply_overrides(_FACTORIES[name](), overrides)
    if cfg.text.encoder == "clip" and (cfg.text.clip_weights is None or cfg.text.clip_vocab is None):
        if name == "paper" and "text" not in overrides:
            cfg.text = TextConfig(encoder="minilm", templates=cfg.text.templates)
    return cfg


def build_model(preset: str = "default", **overrides: Any) -> LandSegmenter:
    """A randomly initialised model (pretrained parts loaded as configured) of the named preset."""
    return LandSegmenter(preset_config(preset, **overrides))


def _apply_overrides(cfg: Any, overrides: Mapping[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise LandSegError(f"unknown model option {key!r} for {type(cfg).__name__}: use one of {', '.join(fields)}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = _apply_overrides(current, value)
        changes[key] = value
    return dataclasses.replace(cfg, **changes)


def config_to_dict(cfg: LandSegmenterConfig) -> dict[str, Any]:
    """Plain YAML-safe dict (tuples as lists)."""
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_from_dict(data: Mapping[str, Any]) -> LandSegmenterConfig:
    """Inverse of :func:`config_to_dict`; LandSegError on unknown fields."""
    if not isinstance(data, Mapping):
        raise LandSegError("model config must be a mapping")
    return _build(LandSegmenterConfig(), data)


def _build(template: Any, data: Mapping[str, Any]) -> Any:
    fields = {f.name for f in dataclasses.fields(template)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise LandSegError(f"unknown model config field {unknown[0]!r} in {type(template).__name__}")
    changes = {}
    for key, value in data.items():
        current = getattr(template, key)
        if dataclasses.is_dataclass(current) and isinstance(value, Mapping):
            value = _build(current, value)
        elif isinstance(current, tuple) and isinstance(value, list):
            value = tuple(value)
        changes[key] = value
    return dataclasses.replace(template, **changes)
