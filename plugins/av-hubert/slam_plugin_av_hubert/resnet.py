"""AV-HuBERT's visual front end: a 3-D convolution stem over time, then a 2-D ResNet-18 on every frame.

Module and parameter names follow av_hubert's ``ResEncoder`` (``frontend3D.{0,1,2}``,
``trunk.layerN.M.{conv1,bn1,relu1,conv2,bn2,relu2,downsample}``), so released weights load as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def _activation(kind: str, channels: int) -> nn.Module:
    return nn.PReLU(num_parameters=channels) if kind == "prelu" else nn.ReLU()


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual (1x1 conv + BatchNorm when the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int, relu_type: str):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = _activation(relu_type, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = _activation(relu_type, channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(out)) + residual)


class ResNetTrunk(nn.Module):
    """Four stages of two :class:`BasicBlock` each (strides 1, 2, 2, 2), then a global average pool."""

    def __init__(self, widths: Sequence[int], relu_type: str):
        super().__init__()
        in_channels = widths[0]
        for index, (width, stride) in enumerate(zip(widths, (1, 2, 2, 2), strict=True), start=1):
            blocks = [BasicBlock(in_channels, width, stride, relu_type), BasicBlock(width, width, 1, relu_type)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            in_channels = width
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, C, H, W]`` -> ``[N, widths[-1]]``."""
        for index in range(1, 5):
            x = getattr(self, f"layer{index}")(x)
        return self.avgpool(x).flatten(1)


class VisualFrontend(nn.Module):
    """Lip crops ``[B, T, H, W]`` -> one ``widths[-1]``-dim vector per frame (512 for ResNet-18).

    The stem is Conv3d(1 -> widths[0], kernel 5x7x7, stride 1x2x2, padding 2x3x3) + BatchNorm3d +
    PReLU + MaxPool3d(1x3x3, stride 1x2x2); its 5-frame temporal kernel is the only place frames mix.
    Padded frames are zeroed first (as a clip alone is zero-padded), and only valid frames go on
    through the BatchNorm and the ResNet, so in training the BatchNorm statistics exclude padding
    (upstream's include it; in evaluation both are the same).
    """

    def __init__(self, widths: Sequence[int], relu_type: str):
        super().__init__()
        stem = widths[0]
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, stem, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(stem),
            _activation(relu_type, stem),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = ResNetTrunk(widths, relu_type)
        self.output_dim = widths[-1]
        self._init_like_upstream()

    def _init_like_upstream(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / fan))
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, frames: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``frames [B, T, H, W]``, ``valid [B, T]`` -> ``[B, T, output_dim]``, zero at padded frames."""
        conv, norm, activation, pool = self.frontend3D
        x = conv(frames.masked_fill(~valid[:, :, None, None], 0.0).unsqueeze(1))  # [B, C, T, H', W']
        x = x.transpose(1, 2)[valid].unsqueeze(2)  # valid frames only: [N, C, 1, H', W']
        x = self.trunk(pool(activation(norm(x))).squeeze(2))
        out = x.new_zeros(*valid.shape, x.shape[-1])
        out[valid] = x
        return out
