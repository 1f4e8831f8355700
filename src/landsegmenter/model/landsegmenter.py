"""LandSegmenter: any sensor, any band set, any list of class names -> class logits.

image [B, C, H, W] + wavelengths [C] --ImageEncoder--> stride-16 embedding + stride-4/8 skips
class names --TextPrompter--> K prompt tokens + K frozen text embeddings
decoder(embedding, skips, tokens)        -> decoder logits    [B, K, H, W]
similarity_head(embedding, skip, text)   -> similarity logits [B, K, H, W]
fusion(decoder logits, similarity logits) -> logits           [B, K, H, W]
knowledge(reflectance, class names)      -> spectral logits   [B, K, H, W] (known classes only)
fusion(logits, spectral logits)          -> logits           [B, K, H, W]
    (precision-guided when the expert's class precision was measured: model/precision_fusion.py)

At inference both heads are fused at the decoder's stride-4 resolution and the
result is upsampled bilinearly; ``forward_train`` returns both heads at input
resolution.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landsegmenter.errors import LandSegError
from landsegmenter.geo.reflectance import reflectance_stats
from landsegmenter.model.decoder import DecoderConfig, VisionTextDecoder
from landsegmenter.model.fusion import ConfidenceGuidedFusion, class_weights
from landsegmenter.model.knowledge import SpectralKnowledge
from landsegmenter.model.image_encoder import ImageEncoder, ImageEncoderConfig, ImageFeatures
from landsegmenter.model.precision_fusion import DOUBTS, coverage_doubt, precision_guided_fusion
from landsegmenter.model.similarity_head import SimilarityHead
from landsegmenter.model.text_prompter import Prompts, TextConfig, TextPrompter, build_text_encoder, prompt_name

PAD_MULTIPLE = 32  # the backbone's coarsest stride


@dataclass
class LandSegmenterConfig:
    preset: str = "custom"
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    text: TextConfig = field(default_factory=TextConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    similarity_head: bool = True
    fusion: bool = True
    fusion_threshold: float = 0.7
    fusion_min_area: float = 0.0
    knowledge: bool = False  # spectral knowledge as a second fusion expert (needs reflectance inputs)
    # per concept, the knowledge expert's precision on the training labels (train/knowledge_precision.py);
    # None: fuse it by the class-wise confidence rule instead
    knowledge_precision: dict[str, float] | None = None
    knowledge_doubt: str = "confidence"  # how the precision-guided fusion measures the decoder's doubt (DOUBTS)
    decoder_temperature: float = 1.0  # divides the decoder logits (fitted on held-out data: train/calibration.py)


class TrainOutputs(NamedTuple):
    decoder_logits: torch.Tensor  # [B, K, H, W]
    similarity_logits: torch.Tensor | None  # [B, K, H, W]; None without a similarity head


class LandSegmenter(nn.Module):
    """``model(image [B, C, H, W], wavelengths [C] in µm, class_names) -> logits [B, K, H, W]``.

    H and W need not be multiples of 32: the image is zero-padded at the bottom
    and right (zero is the value of a masked pixel after normalisation) and the
    logits are cropped back. ``model.fusion = False`` returns the decoder
    logits alone, so the effect of the confidence-guided fusion can be measured;
    ``model.knowledge`` switches the spectral-knowledge expert, which needs a model
    whose ``normalisation`` is ``reflectance`` (it recovers reflectance from its input).
    """

    normalisation = "auto"

    def __init__(self, cfg: LandSegmenterConfig, text_encoder: nn.Module | None = None) -> None:
        super().__init__()
        if cfg.knowledge_doubt not in DOUBTS:
            raise LandSegError(f"knowledge_doubt must be one of {', '.join(DOUBTS)}, got {cfg.knowledge_doubt!r}")
        self.config = cfg
        self.image_encoder = ImageEncoder(cfg.image)
        d_model = self.image_encoder.d_model
        encoder = text_encoder if text_encoder is not None else build_text_encoder(cfg.text)
        self.prompter = TextPrompter(encoder, d_model, cfg.text.templates)
        self.decoder = VisionTextDecoder(d_model, cfg.decoder)
        self.similarity_head = SimilarityHead(d_model, self.prompter.text_dim) if cfg.similarity_head else None
        self.fusion_rule = ConfidenceGuidedFusion(
            cfg.fusion_threshold, cfg.fusion_min_area, enabled=cfg.fusion and cfg.similarity_head
        )
        self.knowledge_expert = SpectralKnowledge()
        self.knowledge_rule = ConfidenceGuidedFusion(cfg.fusion_threshold, cfg.fusion_min_area, enabled=cfg.knowledge)

    @property
    def fusion(self) -> bool:
        return self.fusion_rule.enabled

    @fusion.setter
    def fusion(self, enabled: bool) -> None:
        if enabled and self.similarity_head is None:
            raise LandSegError("this model has no similarity head, so confidence-guided fusion cannot be enabled")
        self.fusion_rule.enabled = bool(enabled)

    @property
    def decoder_temperature(self) -> float:
        return self.config.decoder_temperature

    @property
    def fusion_threshold(self) -> float:
        return self.config.fusion_threshold

    @fusion_threshold.setter
    def fusion_threshold(self, threshold: float) -> None:
        """θ of both fusion rules (similarity head and spectral knowledge), kept in the config."""
        if not 0 < threshold <= 1:
            raise LandSegError(f"fusion threshold must be in (0, 1], got {threshold}")
        self.config.fusion_threshold = self.fusion_rule.threshold = self.knowledge_rule.threshold = float(threshold)

    @property
    def knowledge(self) -> bool:
        return self.knowledge_rule.enabled

    @knowledge.setter
    def knowledge(self, enabled: bool) -> None:
        self.knowledge_rule.enabled = bool(enabled)

    def validate(self, wavelengths: torch.Tensor | Sequence[float], class_names: Sequence[str]) -> None:
        """LandSegError when the classes or bands cannot be served (empty, blank, duplicate, bad wavelength)."""
        validate_class_names(class_names)
        validate_wavelengths(wavelengths)

    def _features(
        self, image: torch.Tensor, wavelengths: torch.Tensor, class_names: Sequence[str]
    ) -> tuple[ImageFeatures, Prompts]:
        """Validate, pad to a multiple of 32, and run the image encoder and the prompter."""
        self.validate(wavelengths, class_names)
        if image.dim() != 4:
            raise LandSegError(f"expected an image batch [B, C, H, W], got shape {tuple(image.shape)}")
        wavelengths = torch.as_tensor(wavelengths, dtype=torch.float32, device=image.device)
        if image.shape[1] != wavelengths.numel():
            raise LandSegError(f"image has {image.shape[1]} bands but {wavelengths.numel()} wavelengths were given")
        features = self.image_encoder(pad_to_multiple(image.float(), PAD_MULTIPLE), wavelengths)
        return features, self.prompter(class_names)

    def forward_train(
        self, image: torch.Tensor, wavelengths: torch.Tensor, class_names: Sequence[str]
    ) -> TrainOutputs:
        """Both heads' logits [B, K, H, W], unfused, so each can be supervised."""
        features, prompts = self._features(image, wavelengths, class_names)
        size, padded = tuple(image.shape[-2:]), padded_size(image.shape[-2:])
        decoder_logits = self.decoder(features.embedding, features.high_res, prompts.tokens, output_size=padded)
        similarity_logits = None
        if self.similarity_head is not None:
            similarity_logits = crop(
                self.similarity_head(features.embedding, features.high_res[1], prompts.text, output_size=padded), size
            )
        return TrainOutputs(crop(decoder_logits, size), similarity_logits)

    def forward(self, image: torch.Tensor, wavelengths: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        features, prompts = self._features(image, wavelengths, class_names)
        size, padded = tuple(image.shape[-2:]), padded_size(image.shape[-2:])
        logits = self.decoder(features.embedding, features.high_res, prompts.tokens) / self.decoder_temperature
        # Fusing at stride 4 costs 1/16 of fusing at full resolution and gives the same maps up to interpolation.
        region, grid = (math.ceil(size[0] / 4), math.ceil(size[1] / 4)), tuple(logits.shape[-2:])
        valid = pixels_with_data(image, grid) if self.fusion or self.knowledge else None
        if self.fusion:
            similarity_logits = self.similarity_head(
                features.embedding, features.high_res[1], prompts.text, output_size=grid
            )
            logits = self.fusion_rule(logits, similarity_logits, region=region, valid=valid)
        if self.knowledge and self.normalisation == "reflectance":
            spectral_logits, known = self.knowledge_expert(
                reflectance_at(image, wavelengths, grid), wavelengths, class_names, self.prompter
            )
            logits = self._fuse_knowledge(logits, spectral_logits, known, class_names, region, valid)
        return crop(F.interpolate(logits, size=padded, mode="bilinear", align_corners=False), size)

    def _fuse_knowledge(
        self, logits: torch.Tensor, spectral_logits: torch.Tensor, known: torch.Tensor,
        class_names: Sequence[str], region: tuple[int, int], valid: torch.Tensor,
    ) -> torch.Tensor:
        """The knowledge expert's fusion: precision-guided when its precision was measured, else class-wise."""
        table = self.config.knowledge_precision
        if table is None:
            return self.knowledge_rule(logits, spectral_logits, region=region, available=known, valid=valid)
        h, w = region
        inside, threshold = (..., slice(0, h), slice(0, w)), self.knowledge_rule.threshold
        precision = self.knowledge_expert.class_precision(class_names, self.prompter, table) * known.cpu()
        if self.config.knowledge_doubt == "coverage":
            doubt = coverage_doubt(logits[inside], spectral_logits[inside], precision, threshold, valid[:, :h, :w])
        else:
            doubt = class_weights(logits[inside], spectral_logits[inside], threshold,
                                  self.knowledge_rule.min_area, known, valid[:, :h, :w])
        return precision_guided_fusion(logits, spectral_logits, precision, doubt)


def pixels_with_data(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[B, *size] bool: cells mostly covered by pixels with data. The mapper and the LAS loader write
    pixels without data as 0 in every band, which real normalised data never is."""
    has_data = (pad_to_multiple(image, PAD_MULTIPLE) != 0).any(dim=1, keepdim=True).float()
    return F.adaptive_avg_pool2d(has_data, size)[:, 0] > 0.5


def reflectance_at(image: torch.Tensor, wavelengths: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Reflectance from a globally normalised image [B, C, H, W], area-averaged onto ``size``
    (the zero padding of the image reads as the mean reflectance, outside the fused region)."""
    mean, std = (torch.from_numpy(v).to(image.device).view(1, -1, 1, 1)
                 for v in reflectance_stats(torch.as_tensor(wavelengths).tolist()))
    reflectance = pad_to_multiple(image.float(), PAD_MULTIPLE) * std + mean
    return F.adaptive_avg_pool2d(reflectance, size)


FUSION_MODES = ("off", "similarity", "knowledge", "on")


def set_fusion_mode(model: LandSegmenter, mode: str) -> None:
    """``off``: the decoder alone; ``similarity``/``knowledge``: fused with that expert; ``on``: with
    every expert the model can use (the similarity head if it has one; spectral knowledge if it
    takes reflectance)."""
    if mode not in FUSION_MODES:
        raise LandSegError(f"fusion must be one of {', '.join(FUSION_MODES)}, got {mode!r}")
    takes_reflectance = model.normalisation == "reflectance"
    if mode == "knowledge" and not takes_reflectance:
        raise LandSegError("this model was not trained on reflectance inputs, so it has no spectral-knowledge expert")
    model.fusion = mode == "similarity" or (mode == "on" and model.similarity_head is not None)
    model.knowledge = mode == "knowledge" or (mode == "on" and takes_reflectance)


@contextmanager
def fusion_set(segmenter: nn.Module, mode: str | bool | None) -> Iterator[None]:
    """Temporarily set a model's fusion mode (see ``set_fusion_mode``; True/False: on/off);
    a no-op for models without fusion."""
    if mode is None or not hasattr(segmenter, "fusion"):
        yield
        return
    before = (segmenter.fusion, segmenter.knowledge)
    set_fusion_mode(segmenter, {True: "on", False: "off"}.get(mode, mode))
    try:
        yield
    finally:
        segmenter.fusion, segmenter.knowledge = before


def padded_size(size: Sequence[int], multiple: int = PAD_MULTIPLE) -> tuple[int, int]:
    return tuple(math.ceil(s / multiple) * multiple for s in size)


def crop(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Keep the top-left ``size`` (h, w) of [..., H, W]."""
    return x[..., : size[0], : size[1]]


def pad_to_multiple(image: torch.Tensor, multiple: int) -> torch.Tensor:
    """Zero-pad [B, C, H, W] at the bottom and right so H and W are multiples of ``multiple``."""
    height, width = image.shape[-2:]
    target_h, target_w = padded_size((height, width), multiple)
    if (target_h, target_w) == (height, width):
        return image
    return F.pad(image, (0, target_w - width, 0, target_h - height))


def validate_class_names(class_names: Sequence[str]) -> None:
    if isinstance(class_names, str) or not isinstance(class_names, Sequence):
        raise LandSegError("class names must be a list of strings, e.g. ['water', 'forest']")
    if len(class_names) == 0:
        raise LandSegError("no class names given: pass at least one class name")
    seen: dict[str, str] = {}
    for name in class_names:
        if not isinstance(name, str):
            raise LandSegError(f"class name {name!r} is not a string")
        key = prompt_name(name).casefold()
        if not key:
            raise LandSegError("a class name is blank: every class needs a non-empty name")
        if key in seen:
            raise LandSegError(f"duplicate class names {seen[key]!r} and {name!r}: class names must be distinct")
        seen[key] = name


def validate_wavelengths(wavelengths: torch.Tensor | Sequence[float]) -> None:
    try:
        values = torch.as_tensor(wavelengths, dtype=torch.float32)
    except (TypeError, ValueError, RuntimeError):
        raise LandSegError("wavelengths must be a list of numbers (band centres in µm)") from None
    if values.dim() != 1 or values.numel() == 0:
        raise LandSegError(f"wavelengths must be a non-empty 1-D list (one per band), got shape {tuple(values.shape)}")
    if not torch.isfinite(values).all() or (values <= 0).any():
        raise LandSegError(f"wavelengths must be positive band centres in µm, got {values.tolist()}")
