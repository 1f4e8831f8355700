"""Attention fusion module (AFM): inject adapter features into one backbone stage.

    G   = Conv1x1([F_backbone; P_s(F_spectral); P_h(F_highfreq)])
    a_c = sigmoid(MLP(GAP(G)))                      channel attention [B, C, 1, 1]
    a_s = sigmoid(Conv7x7([mean_c G; max_c G]))     spatial attention [B, 1, h, w]
    F'  = F_backbone + gamma * (a_c * a_s * G)

``gamma`` starts at zero, so an untrained AFM returns the backbone features
unchanged and training starts from the pretrained backbone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def project_to(x: Tensor, projection: nn.Conv2d, size: tuple[int, int]) -> Tensor:
    """1x1-project [B, D, H', W'] and resize to ``size``: area average when shrinking,
    bilinear when enlarging. Both commute with a 1x1 conv, so the projection runs
    at whichever resolution is smaller."""
    if tuple(x.shape[-2:]) == tuple(size):
        return projection(x)
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return projection(F.adaptive_avg_pool2d(x, size))
    return F.interpolate(projection(x), size=size, mode="bilinear", align_corners=False)


class AttentionFusion(nn.Module):
    """Fuse a stage's features [B, C, h, w] with spectral and/or high-frequency features.

    ``spectral_dim`` / ``highfreq_dim`` of ``None`` remove that input (and its
    parameters). Inputs at any resolution are resampled to [h, w] and
    projected to C channels before fusion.
    """

    def __init__(
        self,
        channels: int,
        spectral_dim: int | None,
        highfreq_dim: int | None,
        reduction: int = 4,
    ) -> None:
        super().__init__()
        if spectral_dim is None and highfreq_dim is None:
            raise ValueError("AttentionFusion needs at least one adapter input")
        self.spectral_proj = nn.Conv2d(spectral_dim, channels, 1) if spectral_dim else None
        self.highfreq_proj = nn.Conv2d(highfreq_dim, channels, 1) if highfreq_dim else None
        inputs = 1 + (spectral_dim is not None) + (highfreq_dim is not None)
        self.mix = nn.Conv2d(inputs * channels, channels, 1)
        hidden = max(channels // reduction, 8)
        self.channel_mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1)
        )
        self.spatial_conv = nn.Conv2d(2, 1, 7, padding=3)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(
        self, feature: Tensor, spectral: Tensor | None = None, highfreq: Tensor | None = None
    ) -> Tensor:
        """[B, C, h, w] (+ [B, Ds, *, *], [B, Dh, *, *]) -> [B, C, h, w]."""
        size = (feature.shape[-2], feature.shape[-1])
        parts = [feature]
        if self.spectral_proj is not None:
            parts.append(project_to(spectral, self.spectral_proj, size))
        if self.highfreq_proj is not None:
            parts.append(project_to(highfreq, self.highfreq_proj, size))
        g = self.mix(torch.cat(parts, dim=1))
        channel_att = torch.sigmoid(self.channel_mlp(g.mean(dim=(2, 3), keepdim=True)))
        pooled = torch.cat([g.mean(1, keepdim=True), g.amax(1, keepdim=True)], dim=1)
        spatial_att = torch.sigmoid(self.spatial_conv(pooled))
        return feature + self.gamma * (channel_att * spatial_att * g)
