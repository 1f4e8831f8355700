"""Dense pixel-text similarity: a second, text-aligned opinion on every class.

Pixel embeddings are projected into the frozen text encoder's space at stride
8 (stride-16 embedding upsampled, plus the stride-8 skip); the score of class
k at a pixel is the cosine similarity between the pixel embedding and class
k's text embedding, times a learnable temperature. Unlike the decoder, whose
class tokens pass through trained layers, these scores depend on the class
only through its frozen text embedding.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_LOGIT_SCALE = 100.0


class SimilarityHead(nn.Module):
    """Image features + text embeddings -> similarity logits.

    Shapes: embedding [B, D, H/16, W/16], feat_s8 [B, D, H/8, W/8],
    text [K, T] (unit norm) -> [B, K, H/8, W/8], or [B, K, *output_size].
    """

    def __init__(self, d_model: int, text_dim: int) -> None:
        super().__init__()
        self.embed_proj = nn.Sequential(
            nn.Conv2d(d_model, d_model, kernel_size=1), nn.GELU(), nn.Conv2d(d_model, text_dim, kernel_size=1)
        )
        self.skip_proj = nn.Conv2d(d_model, text_dim, kernel_size=1)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def pixel_embeddings(self, embedding: torch.Tensor, feat_s8: torch.Tensor) -> torch.Tensor:
        """-> [B, T, H/8, W/8], unit norm along T."""
        coarse = F.interpolate(
            self.embed_proj(embedding), size=feat_s8.shape[-2:], mode="bilinear", align_corners=False
        )
        return F.normalize(coarse + self.skip_proj(feat_s8), dim=1)

    def forward(
        self,
        embedding: torch.Tensor,
        feat_s8: torch.Tensor,
        text: torch.Tensor,
        output_size: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        pixels = self.pixel_embeddings(embedding, feat_s8)
        scale = self.logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        logits = scale * torch.einsum("bthw,kt->bkhw", pixels, F.normalize(text, dim=-1))
        if output_size is not None and tuple(logits.shape[-2:]) != tuple(output_size):
            logits = F.interpolate(logits, size=output_size, mode="bilinear", align_corners=False)
        return logits
