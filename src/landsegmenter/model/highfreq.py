"""High-frequency branch: band-agnostic edge and texture features from a Laplacian high-pass."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian(x: Tensor) -> Tensor:
    """Per-band 3x3 Laplacian with replicate borders: [B, C, H, W] -> [B, C, H, W]."""
    channels = x.shape[1]
    kernel = _LAPLACIAN.to(x).expand(channels, 1, 3, 3)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=channels)


def band_summary(high_pass: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, 3, H, W]: signed mean, mean magnitude, max magnitude over bands.

    Summarising over bands makes the branch independent of the band count
    and order; the spectral branch carries the band-specific information.
    """
    magnitude = high_pass.abs()
    return torch.stack(
        [high_pass.mean(1), magnitude.mean(1), magnitude.amax(1)], dim=1
    )


class HighFrequencyBranch(nn.Module):
    """[B, C, H, W] any band count -> [B, out_dim, H/4, W/4] high-frequency features."""

    def __init__(self, out_dim: int = 32) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.stem = nn.Sequential(
            nn.Conv2d(3, out_dim, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(out_dim, out_dim, 3, stride=2, padding=1),
            nn.GELU(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.stem(band_summary(laplacian(x)))
