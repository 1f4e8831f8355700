"""SAM2's hierarchical image encoder trunk (Hiera with windowed attention).

Module and parameter names follow SAM2's ``image_encoder.trunk`` so that
official checkpoints load key for key (see ``checkpoints.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

StageHook = Callable[[int, Tensor], Tensor]


@dataclass(frozen=True)
class HieraSpec:
    embed_dim: int
    num_heads: int
    stages: tuple[int, int, int, int]
    global_att_blocks: tuple[int, ...]
    window_pos_embed_bkg_spatial_size: tuple[int, int]
    window_spec: tuple[int, int, int, int] = (8, 4, 14, 7)


HIERA_SPECS: dict[str, HieraSpec] = {
    # Not a SAM2 size: a few-block trunk for tests and CI.
    "micro": HieraSpec(16, 1, (1, 1, 2, 1), (3,), (7, 7)),
    "tiny": HieraSpec(96, 1, (1, 2, 7, 2), (5, 7, 9), (7, 7)),
    "small": HieraSpec(96, 1, (1, 2, 11, 2), (7, 10, 13), (7, 7)),
    "base_plus": HieraSpec(112, 2, (2, 3, 16, 3), (12, 16, 20), (14, 14)),
}


def window_partition(x: Tensor, window: int) -> tuple[Tensor, tuple[int, int]]:
    """[B, H, W, C] -> [B * nWin, window, window, C], zero-padding H, W up to a multiple."""
    b, h, w, c = x.shape
    pad_h, pad_w = (window - h % window) % window, (window - w % window) % window
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    hp, wp = h + pad_h, w + pad_w
    x = x.view(b, hp // window, window, wp // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window, window, c), (hp, wp)


def window_unpartition(
    windows: Tensor, window: int, padded_hw: tuple[int, int], hw: tuple[int, int]
) -> Tensor:
    """Inverse of :func:`window_partition`: -> [B, H, W, C] with the padding cropped."""
    hp, wp = padded_hw
    b = windows.shape[0] // ((hp // window) * (wp // window))
    x = windows.reshape(b, hp // window, wp // window, window, window, -1)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, : hw[0], : hw[1], :]


def pool_nhwc(x: Tensor, pool: nn.Module | None) -> Tensor:
    """Apply an NCHW pooling layer to an NHWC tensor."""
    if pool is None:
        return x
    return pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PatchEmbed(nn.Module):
    """7x7 stride-4 convolution: [B, 3, H, W] -> [B, H/4, W/4, D]."""

    def __init__(self, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class MLP(nn.Module):
    """Two linear layers with GELU between (SAM2's ``MLP`` with ``layers.{0,1}``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(dim, hidden), nn.Linear(hidden, dim)])
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.layers[1](self.act(self.layers[0](x)))


class MultiScaleAttention(nn.Module):
    """Self-attention whose queries may be max-pooled (stage transitions)."""

    def __init__(self, dim: int, dim_out: int, num_heads: int, q_pool: nn.Module | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q_pool = q_pool
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """[B, H, W, dim] -> [B, H', W', dim_out] (H' = H / q_stride when pooling)."""
        b, h, w, _ = x.shape
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1)
        q, k, v = torch.unbind(qkv, 2)
        if self.q_pool is not None:
            q = pool_nhwc(q.reshape(b, h, w, -1), self.q_pool)
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.num_heads, -1)
        x = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(x.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    """Pre-norm transformer block with windowed attention and optional q-pooling."""

    def __init__(
        self,
        dim: int,
        dim_out: int,
        num_heads: int,
        window_size: int,
        q_stride: tuple[int, int] | None = None,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        self.dim, self.dim_out = dim, dim_out
        self.window_size = window_size
        self.q_stride = q_stride
        self.pool = nn.MaxPool2d(q_stride, stride=q_stride) if q_stride else None
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, num_heads, q_pool=self.pool)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, int(dim_out * mlp_ratio))
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: Tensor) -> Tensor:
        """[B, H, W, dim] -> [B, H', W', dim_out]."""
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = pool_nhwc(self.proj(x), self.pool)
        window = self.window_size
        if window > 0:
            hw = (x.shape[1], x.shape[2])
            x, padded_hw = window_partition(x, window)
        x = self.attn(x)
        if window > 0:
            if self.q_stride:
                # Query pooling shrank every window; the unpartition grid follows the shortcut.
                window = window // self.q_stride[0]
                hw = (shortcut.shape[1], shortcut.shape[2])
                padded_hw = tuple(s + (window - s % window) % window for s in hw)
            x = window_unpartition(x, window, padded_hw, hw)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


class Hiera(nn.Module):
    """Four-stage Hiera trunk: [B, 3, H, W] -> features at strides 4, 8, 16, 32.

    ``channels`` lists the stage widths shallow to deep (``embed_dim * 2**i``).
    """

    def __init__(self, spec: HieraSpec, q_stride: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        self.stage_ends = [sum(spec.stages[: i + 1]) - 1 for i in range(4)]
        q_pool_blocks = [end + 1 for end in self.stage_ends[:-1]]
        self.patch_embed = PatchEmbed(spec.embed_dim)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, spec.embed_dim, *spec.window_pos_embed_bkg_spatial_size)
        )
        self.pos_embed_window = nn.Parameter(
            torch.zeros(1, spec.embed_dim, spec.window_spec[0], spec.window_spec[0])
        )
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed_window, std=0.02)
        self.blocks = nn.ModuleList()
        dim, heads, stage = spec.embed_dim, spec.num_heads, 0
        for i in range(sum(spec.stages)):
            # The first block of a stage still uses the previous stage's window.
            window = 0 if i in spec.global_att_blocks else spec.window_spec[stage]
            dim_out = dim
            if i - 1 in self.stage_ends:
                dim_out, heads, stage = dim * 2, heads * 2, stage + 1
            pool = q_stride if i in q_pool_blocks else None
            self.blocks.append(MultiScaleBlock(dim, dim_out, heads, window, pool))
            dim = dim_out
        self.channels = tuple(self.blocks[end].dim_out for end in self.stage_ends)

    def position_embedding(self, hw: tuple[int, int]) -> Tensor:
        """Background embedding resized to ``hw`` plus the tiled window embedding: [1, h, w, D]."""
        pos = F.interpolate(self.pos_embed, size=hw, mode="bicubic")
        reps = [p // w for p, w in zip(pos.shape, self.pos_embed_window.shape)]
        return (pos + self.pos_embed_window.tile(reps)).permute(0, 2, 3, 1)

    def forward_stages(self, x: Tensor, hook: StageHook | None = None) -> list[Tensor]:
        """[B, 3, H, W] (H, W multiples of 32) -> 4 maps [B, C_i, H/2^(i+2), W/2^(i+2)].

        ``hook(i, feature)`` may replace each stage output (NCHW) before the
        next stage consumes it; the returned list holds the replaced maps.
        """
        x = self.patch_embed(x)
        x = x + self.position_embedding((x.shape[1], x.shape[2]))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                feature = x.permute(0, 3, 1, 2)
                if hook is not None:
                    feature = hook(len(outputs), feature)
                    x = feature.permute(0, 2, 3, 1)
                outputs.append(feature)
        return outputs

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_stages(x)
