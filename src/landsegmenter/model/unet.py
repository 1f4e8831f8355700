"""A plain U-Net with a fixed band set and class list: the reference network of DPA.

Tong, Xia and Zhu (ISPRS 2023) adapt a randomly initialised U-Net with four
input bands and 25 outputs. :class:`UNet` is that encoder-decoder (double 3x3
conv + BatchNorm + ReLU per level, max-pool down, bilinear up, skip
concatenation); ``width`` sets the first level's channels (64 in the reference),
doubling per level.

:class:`UNetSegmenter` makes it a :class:`~landsegmenter.model.protocol.Segmenter`:
it remembers the bands (centre wavelengths) and classes it was trained on,
accepts any image whose bands match those wavelengths in order, and returns
the logits of the requested class names (any subset, any order).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from landsegmenter.errors import LandSegError
from landsegmenter.model.landsegmenter import crop, pad_to_multiple, validate_class_names, validate_wavelengths
from landsegmenter.taxonomy.legends import normalize_name

WAVELENGTH_TOLERANCE = 0.05  # relative: S2 B11 (1.61 µm) serves a model trained on ETM+ B5 (1.65 µm)


@dataclass
class UNetConfig:
    wavelengths: list[float] = field(default_factory=list)  # [C] band centres in µm, input order
    class_names: list[str] = field(default_factory=list)  # [K] output order
    band_names: list[str] = field(default_factory=list)  # informative: the bands trained on
    width: int = 32
    depth: int = 4
    preset: str = "unet"


def double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """``[B, in_channels, H, W] -> [B, num_classes, H, W]``; H and W multiples of ``2 ** depth``."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 32, depth: int = 4) -> None:
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([double_conv(in_channels, widths[0])])
        self.down.extend(double_conv(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(double_conv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for block, skip in zip(self.up, reversed(skips[:-1])):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


class UNetSegmenter(nn.Module):
    """``model(image [B, C, H, W], wavelengths [C], class_names) -> logits [B, K, H, W]`` for fixed bands/classes."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        if not cfg.wavelengths or not cfg.class_names:
            raise LandSegError("a U-Net needs its band wavelengths and class names")
        validate_wavelengths(cfg.wavelengths)
        validate_class_names(cfg.class_names)
        self.config = cfg
        self.net = UNet(len(cfg.wavelengths), len(cfg.class_names), cfg.width, cfg.depth)

    @property
    def class_names(self) -> list[str]:
        return list(self.config.class_names)

    def class_indices(self, class_names: Sequence[str]) -> list[int]:
        """Output index of each requested name; LandSegError for a name the model was not trained on."""
        validate_class_names(class_names)
        known = {normalize_name(n): i for i, n in enumerate(self.config.class_names)}
        missing = [n for n in class_names if normalize_name(n) not in known]
        if missing:
            raise LandSegError(
                f"this U-Net maps only the classes it was trained on ({', '.join(self.config.class_names)}); "
                f"{missing[0]!r} is not one of them"
            )
        return [known[normalize_name(n)] for n in class_names]

    def validate(self, wavelengths: torch.Tensor | Sequence[float], class_names: Sequence[str]) -> None:
        """LandSegError unless the bands match the trained ones in order and every class is known."""
        self._check_bands(wavelengths)
        self.class_indices(class_names)

    def _check_bands(self, wavelengths: torch.Tensor | Sequence[float]) -> None:
        validate_wavelengths(wavelengths)
        given = torch.as_tensor(wavelengths, dtype=torch.float64).tolist()
        trained = self.config.wavelengths
        far = [(g, t) for g, t in zip(given, trained) if abs(g - t) > WAVELENGTH_TOLERANCE * t]
        if len(given) != len(trained) or far:
            raise LandSegError(
                f"this U-Net was trained on {len(trained)} bands at {', '.join(f'{w:g}' for w in trained)} µm "
                f"(in that order); the input has {len(given)} at {', '.join(f'{w:g}' for w in given)} µm"
            )

    def forward(self, image: torch.Tensor, wavelengths: torch.Tensor, class_names: Sequence[str]) -> torch.Tensor:
        self._check_bands(wavelengths)
        return self.logits(image)[:, self.class_indices(class_names)]

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """All ``K`` trained classes' logits ``[B, K, H, W]`` (no checks; used in training)."""
        size = tuple(image.shape[-2:])
        return crop(self.net(pad_to_multiple(image.float(), 2**self.config.depth)), size)
