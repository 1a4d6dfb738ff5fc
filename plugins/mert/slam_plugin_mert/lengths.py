"""Length arithmetic of MERT's strided convolution stack (no padding, so every layer shortens)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def conv_output_lengths(lengths: torch.Tensor, kernels: Sequence[int], strides: Sequence[int]) -> torch.Tensor:
    """Frames out of the stack for ``lengths`` samples: per layer ``floor((L - kernel) / stride) + 1``.

    Inputs shorter than :func:`receptive_field` give 0 frames.
    """
    for kernel, stride in zip(kernels, strides, strict=True):
        lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        lengths = lengths.clamp(min=0)
    return lengths


def receptive_field(kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Samples one output frame sees: the shortest input that yields a frame (400 for MERT)."""
    field, hop = kernels[0], strides[0]
    for kernel, stride in zip(kernels[1:], strides[1:], strict=True):
        field += (kernel - 1) * hop
        hop *= stride
    return field


def total_stride(strides: Sequence[int]) -> int:
    """Samples between consecutive output frames (320 for MERT: 75 Hz at 24 kHz)."""
    return math.prod(strides)
