"""Mixed precision: which autocast dtype a spec asks for, whether the device supports it, the loss scaler."""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from slam_core.errors import TrainingError

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(TrainingError):
    """The device cannot run the requested mixed precision."""


def autocast_dtype(name: Literal["fp32", "bf16", "fp16"], device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``train.dtype`` (``None`` for fp32), refused clearly if ``device`` lacks it."""
    dtype = AUTOCAST_DTYPES[name]
    if dtype is None:
        return None
    if not torch.amp.is_autocast_available(device.type):
        raise PrecisionError(f"train.dtype {name}: torch has no autocast for {device.type} devices; use fp32")
    if device.type == "cuda" and dtype is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise PrecisionError(f"train.dtype bf16: {torch.cuda.get_device_name(device)} does not support bf16; use fp16")
    probe = torch.ones(2, 2, device=device)
    with torch.autocast(device.type, dtype=dtype):
        produced = (probe @ probe).dtype
    if produced != dtype:
        raise PrecisionError(
            f"train.dtype {name}: autocast on {device.type} does not compute in {dtype} with this torch "
            f"({torch.__version__}); use {'bf16' if name == 'fp16' else 'fp32'}"
        )
    return dtype


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` in ``dtype``, or nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)
