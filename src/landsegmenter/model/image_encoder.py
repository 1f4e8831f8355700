"""Image side of the model: backbone + FPN neck, with the remote-sensing adapter fused into every stage.

Data flow for ``image [B, C, H, W]`` (any band set) and ``wavelengths [C]`` µm::

    image --StemInput--> [B, S, H, W] (the S bands the pretrained stem expects)
          --backbone stage 1..4, each output fused by an AFM with
              DOFA features (all C bands, stride = adapter_patch) and
              high-frequency features (stride 4)
          --FpnNeck--> stride 4, 8, 16 maps of d_model channels (stride 32 dropped)

Band choice for the backbone stem: for each stem channel (RGB for Hiera and
EfficientNet-Lite, B/G/R/NIR/SWIR1.6/SWIR2.2 for the ukis-csmask EfficientNet-B4)
the input band with the nearest centre wavelength is used when it lies within
0.06 µm (visible/NIR) or 0.15 µm (SWIR); otherwise the stem channel receives the
mean of all input bands, so SAR or panchromatic input still runs. The adapter
always sees every band with its wavelength.

Scaling: the image arrives standardised per band ((x - mean) / std with sensor
statistics). Hiera (ImageNet mean/std) and the ukis-csmask encoder (its own
per-band mean/std) expect standardised input too and get it unchanged. The
EfficientNet-Lite stems expect (pixel - 127) / 128 with 0..255 pixels, so each
stem channel is mapped by the fixed affine ``z * std_in * 255/128 + (mean_in * 255 - 127)/128``
with ImageNet's RGB mean/std, which turns a standardised band into that range.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from landsegmenter.errors import LandSegError
from landsegmenter.model import checkpoints
from landsegmenter.model.afm import AttentionFusion
from landsegmenter.model.dofa import DofaEncoder
from landsegmenter.model.efficientnet import EFFICIENTNET_SPECS, EfficientNetEncoder
from landsegmenter.model.fpn import FpnNeck
from landsegmenter.model.hiera import HIERA_SPECS, Hiera, StageHook
from landsegmenter.model.highfreq import HighFrequencyBranch

BACKBONES = ("hiera", "efficientnet-b4", "efficientnet-lite0", "efficientnet-lite2")
RGB_WAVELENGTHS = (0.665, 0.560, 0.490)  # Sentinel-2 B4, B3, B2 centres, µm
UKIS_6B_WAVELENGTHS = (0.490, 0.560, 0.665, 0.842, 1.610, 2.190)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VNIR_TOLERANCE_UM = 0.06
SWIR_TOLERANCE_UM = 0.15
SWIR_START_UM = 1.0
STRIDE = 32


@dataclass
class ImageEncoderConfig:
    backbone: str = "hiera"  # "hiera" | "efficientnet-b4" | "efficientnet-lite0" | "efficientnet-lite2"
    hiera_size: str = "tiny"  # "micro" (tests), "tiny", "small", "base_plus"
    d_model: int = 256  # neck width: channels of embedding and high-res features
    adapter_dim: int = 128  # DOFA-style encoder width
    adapter_depth: int = 2  # its transformer blocks
    adapter_heads: int = 4
    adapter_patch: int = 16
    use_spectral: bool = True  # RS adapter's DOFA branch on/off
    use_highfreq: bool = True  # high-frequency branch on/off
    # Backbone weights: an official SAM2 .pt (hiera), "ukis-csmask" (efficientnet-b4),
    # "efficientnet-lite0" / "efficientnet-lite2"; an official DOFA .pth is also accepted.
    pretrained: str | None = None
    dofa_pretrained: str | None = None  # official DOFA .pth for the spectral branch
    highfreq_dim: int = 32
    afm_reduction: int = 4


@dataclass
class ImageFeatures:
    embedding: Tensor  # [B, d_model, H/16, W/16] = stage3 + upsampled stage4 after the neck
    high_res: tuple[Tensor, Tensor]  # ([B, d_model, H/4, W/4], [B, d_model, H/8, W/8])


class StemInput(nn.Module):
    """Pick (or synthesise) the bands a pretrained stem expects: [B, C, H, W] -> [B, S, H, W]."""

    def __init__(
        self,
        stem_wavelengths: tuple[float, ...],
        scale: tuple[float, ...] | None = None,
        shift: tuple[float, ...] | None = None,
    ) -> None:
        super().__init__()
        n = len(stem_wavelengths)
        self.register_buffer("stem_wavelengths", torch.tensor(stem_wavelengths), persistent=False)
        self.register_buffer("scale", torch.tensor(scale or (1.0,) * n), persistent=False)
        self.register_buffer("shift", torch.tensor(shift or (0.0,) * n), persistent=False)

    def selection(self, wavelengths: Tensor) -> Tensor:
        """[C] µm -> [S, C] weights: one-hot on the nearest band in tolerance, else uniform."""
        stem = self.stem_wavelengths.to(wavelengths)
        distance = (stem[:, None] - wavelengths[None, :]).abs()
        nearest = distance.argmin(dim=1)
        tolerance = torch.where(stem >= SWIR_START_UM, SWIR_TOLERANCE_UM, VNIR_TOLERANCE_UM)
        matched = distance.gather(1, nearest[:, None]).squeeze(1) <= tolerance
        one_hot = nn.functional.one_hot(nearest, wavelengths.shape[0]).to(wavelengths)
        uniform = torch.full_like(one_hot, 1.0 / wavelengths.shape[0])
        return torch.where(matched[:, None], one_hot, uniform)

    def forward(self, image: Tensor, wavelengths: Tensor) -> Tensor:
        weights = self.selection(wavelengths).to(image.dtype)
        x = torch.einsum("sc,bchw->bshw", weights, image)
        return x * self.scale[:, None, None].to(x) + self.shift[:, None, None].to(x)


def build_stem_input(backbone: str) -> StemInput:
    if backbone == "efficientnet-b4":
        return StemInput(UKIS_6B_WAVELENGTHS)
    if backbone.startswith("efficientnet-lite"):
        scale = tuple(s * 255.0 / 128.0 for s in IMAGENET_STD)
        shift = tuple((m * 255.0 - 127.0) / 128.0 for m in IMAGENET_MEAN)
        return StemInput(RGB_WAVELENGTHS, scale, shift)
    return StemInput(RGB_WAVELENGTHS)


def build_backbone(cfg: ImageEncoderConfig) -> Hiera | EfficientNetEncoder:
    if cfg.backbone == "hiera":
        if cfg.hiera_size not in HIERA_SPECS:
            raise LandSegError(
                f"unknown hiera_size {cfg.hiera_size!r}; choose one of {', '.join(HIERA_SPECS)}"
            )
        return Hiera(HIERA_SPECS[cfg.hiera_size])
    if cfg.backbone in EFFICIENTNET_SPECS:
        return EfficientNetEncoder(EFFICIENTNET_SPECS[cfg.backbone])
    raise LandSegError(f"unknown backbone {cfg.backbone!r}; choose one of {', '.join(BACKBONES)}")


class RSAdapter(nn.Module):
    """Spectral (DOFA) and high-frequency branches plus one AFM per backbone stage."""

    def __init__(self, cfg: ImageEncoderConfig, stage_channels: tuple[int, ...]) -> None:
        super().__init__()
        self.dofa = (
            DofaEncoder(cfg.adapter_dim, cfg.adapter_depth, cfg.adapter_heads, cfg.adapter_patch)
            if cfg.use_spectral
            else None
        )
        self.highfreq = HighFrequencyBranch(cfg.highfreq_dim) if cfg.use_highfreq else None
        spectral_dim = cfg.adapter_dim if cfg.use_spectral else None
        highfreq_dim = cfg.highfreq_dim if cfg.use_highfreq else None
        self.fusions = nn.ModuleList(
            AttentionFusion(c, spectral_dim, highfreq_dim, cfg.afm_reduction) for c in stage_channels
        )

    def stage_hook(self, image: Tensor, wavelengths: Tensor) -> StageHook:
        """Run both branches once and return ``hook(i, stage_feature) -> fused feature``."""
        spectral = self.dofa(image, wavelengths) if self.dofa is not None else None
        highfreq = self.highfreq(image) if self.highfreq is not None else None

        def fuse(stage: int, feature: Tensor) -> Tensor:
            return self.fusions[stage](feature, spectral, highfreq)

        return fuse


class ImageEncoder(nn.Module):
    """``forward(image [B, C, H, W], wavelengths [C] µm) -> ImageFeatures``.

    H and W must be multiples of 32; C and the band set are free.
    """

    def __init__(self, cfg: ImageEncoderConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.d_model = cfg.d_model
        self.stem_input = build_stem_input(cfg.backbone)
        self.backbone = build_backbone(cfg)
        self.neck = FpnNeck(self.backbone.channels, cfg.d_model)
        self.adapter = (
            RSAdapter(cfg, self.backbone.channels)
            if cfg.use_spectral or cfg.use_highfreq
            else None
        )
        if cfg.pretrained:
            checkpoints.load_pretrained(self, cfg.pretrained)
        if cfg.dofa_pretrained:
            checkpoints.load_dofa_checkpoint(self.require_dofa(), cfg.dofa_pretrained)

    def require_dofa(self) -> DofaEncoder:
        if self.adapter is None or self.adapter.dofa is None:
            raise LandSegError("DOFA weights given but the spectral branch is off (use_spectral=False)")
        return self.adapter.dofa

    def check_input(self, image: Tensor, wavelengths: Tensor) -> None:
        if image.ndim != 4:
            raise LandSegError(f"image must be [B, C, H, W], got shape {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % STRIDE or w % STRIDE:
            raise LandSegError(f"image height and width must be multiples of {STRIDE}, got {h}x{w}")
        if wavelengths.ndim != 1 or wavelengths.shape[0] != image.shape[1]:
            raise LandSegError(
                f"got {tuple(wavelengths.shape)} wavelengths for an image with {image.shape[1]} bands"
            )

    def stage_features(self, image: Tensor, wavelengths: Tensor, fuse: bool = True) -> list[Tensor]:
        """Backbone stage outputs [B, C_i, H/2^(i+2), W/2^(i+2)], i = 0..3, fused unless ``fuse`` is False."""
        self.check_input(image, wavelengths)
        wavelengths = wavelengths.to(device=image.device, dtype=torch.float32)
        hook = None
        if fuse and self.adapter is not None:
            hook = self.adapter.stage_hook(image, wavelengths)
        return self.backbone.forward_stages(self.stem_input(image, wavelengths), hook)

    def forward(self, image: Tensor, wavelengths: Tensor) -> ImageFeatures:
        levels = self.neck(self.stage_features(image, wavelengths))
        # SAM2's scalp=1: the stride-32 level only feeds the top-down sum.
        return ImageFeatures(embedding=levels[2], high_res=(levels[0], levels[1]))
