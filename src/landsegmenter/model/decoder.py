"""Vision-text mask decoder: K class tokens in, K score maps out, in one pass.

The two-way transformer runs between the stride-16 image embedding (plus a
random-Fourier positional encoding) and the K projected class prompts. The
updated image tokens are upscaled to stride 4 with transposed convolutions,
adding the stride-8 and stride-4 skips on the way; each updated class token
goes through a shared hypernetwork MLP, and its dot product with the upscaled
embedding is that class's score map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from landsegmenter.model.transformer import TwoWayTransformer


@dataclass
class DecoderConfig:
    depth: int = 2
    num_heads: int = 8
    mlp_dim: int = 2048
    attention_downsample_rate: int = 2


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a [B, C, H, W] map."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class PositionEmbeddingRandom(nn.Module):
    """Positional encoding of a feature grid with random spatial frequencies."""

    def __init__(self, num_pos_feats: int, scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn(2, num_pos_feats))

    def forward(self, height: int, width: int) -> torch.Tensor:
        """-> [2 * num_pos_feats, height, width]."""
        device = self.positional_encoding_gaussian_matrix.device
        y = (torch.arange(height, device=device) + 0.5) / height
        x = (torch.arange(width, device=device) + 0.5) / width
        coords = torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)  # [h, w, 2] as (x, y) in [0, 1]
        angles = 2 * math.pi * (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        return torch.cat([angles.sin(), angles.cos()], dim=-1).permute(2, 0, 1)


class MLP(nn.Module):
    def __init__(self, input_dim: int, hidden_dim: int, output_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [input_dim] + [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class VisionTextDecoder(nn.Module):
    """Image features + K class tokens -> K score maps.

    Shapes: embedding [B, D, H/16, W/16], high_res ([B, D, H/4, W/4],
    [B, D, H/8, W/8]), tokens [K, D] or [B, K, D] -> logits [B, K, H/4, W/4],
    or [B, K, *output_size] when ``output_size`` is given.
    """

    def __init__(self, d_model: int, cfg: DecoderConfig) -> None:
        super().__init__()
        if d_model % 8:
            raise ValueError(f"decoder width {d_model} must be a multiple of 8")
        self.d_model = d_model
        self.pe_layer = PositionEmbeddingRandom(d_model // 2)
        self.transformer = TwoWayTransformer(
            cfg.depth, d_model, cfg.num_heads, cfg.mlp_dim, cfg.attention_downsample_rate
        )
        self.conv_s0 = nn.Conv2d(d_model, d_model // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(d_model, d_model // 4, kernel_size=1)
        self.dc1 = nn.ConvTranspose2d(d_model, d_model // 4, kernel_size=2, stride=2)
        self.ln1 = LayerNorm2d(d_model // 4)
        self.dc2 = nn.ConvTranspose2d(d_model // 4, d_model // 8, kernel_size=2, stride=2)
        # One hypernetwork shared by all classes: the number of classes is open.
        self.hypernetwork = MLP(d_model, d_model, d_model // 8, 3)

    def upscale(self, image_tokens: torch.Tensor, feat_s4: torch.Tensor, feat_s8: torch.Tensor) -> torch.Tensor:
        """image_tokens [B, D, H/16, W/16] -> [B, D/8, H/4, W/4] with the two skips added."""
        x = F.gelu(self.ln1(self.dc1(image_tokens) + self.conv_s1(feat_s8)))
        return F.gelu(self.dc2(x) + self.conv_s0(feat_s4))

    def forward(
        self,
        embedding: torch.Tensor,
        high_res: tuple[torch.Tensor, torch.Tensor],
        tokens: torch.Tensor,
        output_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        b, d, h, w = embedding.shape
        if tokens.dim() == 2:
            tokens = tokens.unsqueeze(0).expand(b, -1, -1)
        image_pe = self.pe_layer(h, w).unsqueeze(0).expand(b, -1, -1, -1)
        class_out, image_tokens = self.transformer(embedding, image_pe, tokens)
        upscaled = self.upscale(image_tokens.transpose(1, 2).reshape(b, d, h, w), *high_res)
        logits = torch.einsum("bkc,bchw->bkhw", self.hypernetwork(class_out), upscaled)
        if output_size is not None and tuple(logits.shape[-2:]) != tuple(output_size):
            logits = F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)
        return logits
