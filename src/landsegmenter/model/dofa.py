"""Wavelength-conditioned ViT (DOFA): one encoder for any set of spectral bands.

A small transformer turns the band wavelengths into the weights of the patch
embedding convolution, so the encoder accepts any channel count. Parameter
names follow the official DOFA release (``patch_embed.weight_generator.*``,
``patch_embed.fclayer.*``, ``blocks.N.*``, ``cls_token``, ``pos_embed``, ``norm.*``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WAVE_PLANES = 128  # width of the wavelength embedding in the official release
WEIGHT_TOKENS = 128
PATCH_SCALE = 0.01  # generated weights and bias are scaled down, as in the official release


def sincos_1d(dim: int, positions: Tensor) -> Tensor:
    """[M] positions -> [M, dim] embedding (sines then cosines)."""
    omega = torch.arange(dim // 2, dtype=torch.float32, device=positions.device) / (dim / 2.0)
    omega = 1.0 / 10000**omega
    angles = positions.reshape(-1).float()[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(dim: int, grid: int) -> Tensor:
    """[grid*grid, dim] fixed 2-D embedding (row-major): first half columns, second half rows."""
    coords = torch.arange(grid, dtype=torch.float32)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")
    return torch.cat([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], dim=1)


class FCResLayer(nn.Module):
    """x + ReLU(W2 ReLU(W1 x))."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, dim)
        self.w2 = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.relu(self.w2(F.relu(self.w1(x))))


class WeightGenerator(nn.Module):
    """Wavelength embeddings [C, P] -> conv weights [C, k*k*D] and bias [D]."""

    def __init__(self, wave_dim: int, weight_numel: int, embed_dim: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model=wave_dim, nhead=4, activation="gelu", dropout=0.0, batch_first=False
        )
        self.transformer_encoder = nn.TransformerEncoder(
            layer, num_layers=1, enable_nested_tensor=False
        )
        self.fc_weight = nn.Linear(wave_dim, weight_numel)
        self.fc_bias = nn.Linear(wave_dim, embed_dim)
        self.weight_tokens = nn.Parameter(torch.randn(WEIGHT_TOKENS, wave_dim) * 0.02)
        self.bias_token = nn.Parameter(torch.randn(1, wave_dim) * 0.02)

    def forward(self, waves: Tensor) -> tuple[Tensor, Tensor]:
        tokens = torch.cat([self.weight_tokens, waves, self.bias_token], dim=0)
        out = self.transformer_encoder(tokens.unsqueeze(1)).squeeze(1)
        weights = self.fc_weight(out[WEIGHT_TOKENS:-1] + waves)
        return weights, self.fc_bias(out[-1])


class DynamicPatchEmbed(nn.Module):
    """[B, C, H, W] + wavelengths [C] (µm) -> patch tokens [B, D, H/p, W/p]."""

    def __init__(self, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.patch_size = patch_size
        self.weight_generator = WeightGenerator(
            WAVE_PLANES, patch_size * patch_size * embed_dim, embed_dim
        )
        self.fclayer = FCResLayer(WAVE_PLANES)
        for module in (self.weight_generator, self.fclayer):
            module.apply(_xavier_linear)

    def forward(self, x: Tensor, wavelengths: Tensor) -> Tensor:
        channels, k = wavelengths.shape[0], self.patch_size
        waves = self.fclayer(sincos_1d(WAVE_PLANES, wavelengths * 1000.0))
        weight, bias = self.weight_generator(waves)
        # The official model reinterprets the [C, k*k*D] output as [D, C, k, k]
        # without a transpose; pretrained weights depend on exactly this layout.
        weight = weight.reshape(self.embed_dim, channels, k, k) * PATCH_SCALE
        return F.conv2d(x, weight, bias * PATCH_SCALE, stride=k, padding=1)


def _xavier_linear(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.constant_(module.bias, 0.01)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """[B, N, D] -> [B, N, D]."""
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, d // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm ViT block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DofaEncoder(nn.Module):
    """DOFA ViT returning a dense feature map.

    ``forward(image [B, C, H, W], wavelengths [C] µm) -> [B, embed_dim, H/p, W/p]``
    (H, W multiples of ``patch_size``). Position embeddings are stored for a
    ``img_size`` square (224 in the official release) and resized bicubically.
    """

    def __init__(
        self, embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
        patch_size: int = 16, img_size: int = 224,
    ) -> None:
        super().__init__()
        self.embed_dim, self.patch_size = embed_dim, patch_size
        self.grid = img_size // patch_size
        self.patch_embed = DynamicPatchEmbed(embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        pos = torch.cat([torch.zeros(1, embed_dim), sincos_2d(embed_dim, self.grid)])
        self.pos_embed = nn.Parameter(pos.unsqueeze(0), requires_grad=False)
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        nn.init.normal_(self.cls_token, std=0.02)

    def patch_position_embedding(self, hw: tuple[int, int]) -> Tensor:
        """[1, h*w, D]: the stored grid's embedding resized to ``hw`` patches."""
        pos = self.pos_embed[:, 1:, :]
        if hw == (self.grid, self.grid):
            return pos
        pos = pos.reshape(1, self.grid, self.grid, -1).permute(0, 3, 1, 2)
        pos = F.interpolate(pos, size=hw, mode="bicubic", align_corners=False)
        return pos.flatten(2).transpose(1, 2)

    def encode(self, x: Tensor, wavelengths: Tensor) -> tuple[Tensor, tuple[int, int]]:
        """[B, C, H, W], [C] -> normalised tokens [B, 1 + h*w, D] (class token first), (h, w)."""
        patches = self.patch_embed(x, wavelengths)
        hw = (patches.shape[-2], patches.shape[-1])
        tokens = patches.flatten(2).transpose(1, 2) + self.patch_position_embedding(hw)
        cls = (self.cls_token + self.pos_embed[:, :1, :]).expand(x.shape[0], -1, -1)
        tokens = torch.cat([cls, tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens), hw

    def forward_features(self, x: Tensor, wavelengths: Tensor) -> Tensor:
        """[B, C, H, W], [C] -> [B, 1 + N, D] tokens, class token first."""
        return self.encode(x, wavelengths)[0]

    def forward(self, x: Tensor, wavelengths: Tensor) -> Tensor:
        tokens, (h, w) = self.encode(x, wavelengths)
        return tokens[:, 1:, :].transpose(1, 2).reshape(x.shape[0], self.embed_dim, h, w)
