"""SAM2's feature-pyramid neck: lateral 1x1 convolutions plus a partial top-down path."""
from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class FpnNeck(nn.Module):
    """Project each backbone level to ``d_model`` channels and add upsampled deeper levels.

    ``backbone_channels`` is given shallow to deep; as in SAM2, ``convs[0]``
    belongs to the deepest level (parameter names ``convs.N.conv.*``). Only
    levels in ``top_down_levels`` (indices shallow to deep) receive the
    nearest-neighbour x2 upsampled deeper map; the others pass on as plain
    lateral projections.
    """

    def __init__(
        self,
        backbone_channels: Sequence[int],
        d_model: int = 256,
        top_down_levels: Sequence[int] = (2, 3),
    ) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        for dim in reversed(list(backbone_channels)):
            lateral = nn.Sequential()
            lateral.add_module("conv", nn.Conv2d(dim, d_model, kernel_size=1))
            self.convs.append(lateral)
        self.top_down_levels = set(top_down_levels)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Maps [B, C_i, H_i, W_i] shallow to deep -> [B, d_model, H_i, W_i] in the same order."""
        last = len(self.convs) - 1
        out: list[Tensor] = [None] * len(features)  # type: ignore[list-item]
        deeper: Tensor | None = None
        for i in range(last, -1, -1):
            lateral = self.convs[last - i](features[i])
            if i in self.top_down_levels and deeper is not None:
                lateral = lateral + F.interpolate(deeper, scale_factor=2.0, mode="nearest")
            out[i] = deeper = lateral
        return out
