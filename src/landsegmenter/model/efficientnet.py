"""EfficientNet encoders (B4 and Lite0/Lite2) returning stride 4/8/16/32 features.

Parameter names follow the widely used ``_conv_stem`` / ``_blocks.N._expand_conv``
layout so that ImageNet and segmentation checkpoints in that layout load
directly. Convolutions use TensorFlow "same" padding, either fixed for a
reference image size (as the checkpoint was exported) or computed per input.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from landsegmenter.model.hiera import StageHook

BN_EPS = 1e-3
BN_MOMENTUM = 0.01


@dataclass(frozen=True)
class StageArgs:
    """One row of the EfficientNet-B0 table."""

    repeats: int
    kernel: int
    stride: int
    expand: int
    in_ch: int
    out_ch: int


B0_STAGES = (
    StageArgs(1, 3, 1, 1, 32, 16),
    StageArgs(2, 3, 2, 6, 16, 24),
    StageArgs(2, 5, 2, 6, 24, 40),
    StageArgs(3, 3, 2, 6, 40, 80),
    StageArgs(3, 5, 1, 6, 80, 112),
    StageArgs(4, 5, 2, 6, 112, 192),
    StageArgs(1, 3, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class EfficientNetSpec:
    width: float
    depth: float
    lite: bool  # Lite: no squeeze-excitation, ReLU6, fixed stem, first/last stage not deepened
    in_chans: int = 3
    static_image_size: int | None = None  # "same" padding fixed for this size; None: per input


EFFICIENTNET_SPECS: dict[str, EfficientNetSpec] = {
    # The ukis-csmask cloud-mask U-Net encoder: 6 bands, padding exported for 380 px.
    "efficientnet-b4": EfficientNetSpec(1.4, 1.8, lite=False, in_chans=6, static_image_size=380),
    "efficientnet-lite0": EfficientNetSpec(1.0, 1.0, lite=True),
    "efficientnet-lite2": EfficientNetSpec(1.1, 1.2, lite=True),
}


def round_filters(filters: int, width: float, divisor: int = 8) -> int:
    scaled = filters * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * scaled else rounded


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) along one axis."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "same" padding, fixed for ``image_size`` or computed per input."""

    def __init__(self, *args, image_size: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        k, s = self.kernel_size[0], self.stride[0]
        self.static_pad = None
        if image_size is not None:
            before, after = same_padding(image_size, k, s)
            self.static_pad = (before, after, before, after)

    def forward(self, x: Tensor) -> Tensor:
        pad = self.static_pad
        if pad is None:
            k, s = self.kernel_size[0], self.stride[0]
            pad = same_padding(x.shape[-1], k, s) + same_padding(x.shape[-2], k, s)
        if any(pad):
            x = F.pad(x, pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: expand 1x1, depthwise kxk, optional squeeze-excitation, project 1x1."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel: int,
        stride: int,
        expand: int,
        squeeze_excite: bool,
        act: nn.Module,
        image_size: int | None,
    ) -> None:
        super().__init__()
        mid = in_ch * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(in_ch, mid, 1, bias=False)
            self._bn0 = batch_norm(mid)
        self._depthwise_conv = SameConv2d(
            mid, mid, kernel, stride=stride, groups=mid, bias=False, image_size=image_size
        )
        self._bn1 = batch_norm(mid)
        self.has_se = squeeze_excite
        if squeeze_excite:
            squeezed = max(1, int(in_ch * 0.25))
            self._se_reduce = nn.Conv2d(mid, squeezed, 1)
            self._se_expand = nn.Conv2d(squeezed, mid, 1)
        self._project_conv = nn.Conv2d(mid, out_ch, 1, bias=False)
        self._bn2 = batch_norm(out_ch)
        self.act = act
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, inputs: Tensor) -> Tensor:
        x = inputs
        if self.has_expand:
            x = self.act(self._bn0(self._expand_conv(x)))
        x = self.act(self._bn1(self._depthwise_conv(x)))
        if self.has_se:
            squeezed = F.adaptive_avg_pool2d(x, 1)
            x = x * torch.sigmoid(self._se_expand(self.act(self._se_reduce(squeezed))))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.residual else x


class EfficientNetEncoder(nn.Module):
    """[B, in_chans, H, W] -> features at strides 4, 8, 16, 32 (the classifier head is omitted)."""

    def __init__(self, spec: EfficientNetSpec) -> None:
        super().__init__()
        act: nn.Module = nn.ReLU6() if spec.lite else nn.SiLU()
        size = spec.static_image_size
        stem = 32 if spec.lite else round_filters(32, spec.width)
        self._conv_stem = SameConv2d(
            spec.in_chans, stem, 3, stride=2, bias=False, image_size=size
        )
        self._bn0 = batch_norm(stem)
        self.act = act
        size = math.ceil(size / 2) if size else None
        self._blocks = nn.ModuleList()
        stride_of_block: list[int] = []
        total_stride = 2
        for index, stage in enumerate(B0_STAGES):
            fixed = spec.lite and index in (0, len(B0_STAGES) - 1)
            repeats = stage.repeats if fixed else math.ceil(stage.repeats * spec.depth)
            in_ch = stem if index == 0 else round_filters(stage.in_ch, spec.width)
            out_ch = round_filters(stage.out_ch, spec.width)
            for r in range(repeats):
                stride = stage.stride if r == 0 else 1
                self._blocks.append(
                    MBConvBlock(
                        in_ch if r == 0 else out_ch, out_ch, stage.kernel, stride,
                        stage.expand, not spec.lite, act, size,
                    )
                )
                if stride == 2:
                    total_stride *= 2
                    size = math.ceil(size / 2) if size else None
                stride_of_block.append(total_stride)
        # The last block at each stride of 4..32 ends a feature stage.
        self.stage_ends = [
            max(i for i, s in enumerate(stride_of_block) if s == stride) for stride in (4, 8, 16, 32)
        ]
        self.channels = tuple(self._blocks[i]._bn2.num_features for i in self.stage_ends)

    def forward_stages(self, x: Tensor, hook: StageHook | None = None) -> list[Tensor]:
        """[B, in_chans, H, W] -> 4 maps [B, C_i, H/2^(i+2), W/2^(i+2)] (H, W multiples of 32).

        ``hook(i, feature)`` may replace each stage output before the next stage.
        """
        x = self.act(self._bn0(self._conv_stem(x)))
        outputs = []
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i in self.stage_ends:
                if hook is not None:
                    x = hook(len(outputs), x)
                outputs.append(x)
            if len(outputs) == 4:
                break
        return outputs

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.forward_stages(x)
