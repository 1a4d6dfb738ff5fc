"""The shared vocabulary of component configs: one meaning per field name across every plugin.

Plugin config models (pydantic, ``extra="forbid"``) use these instead of their own variants:

- ``dtype: DType = "auto"``: the weights' dtype of every torch component; ``auto`` is bf16
  when CUDA is available, else fp32 (:func:`resolve_dtype`).
- ``layer: Layer = None``: which hidden state an encoder returns, counted as transformers'
  ``hidden_states`` tuple is: ``0`` is the input of the first transformer layer, ``k`` the
  output of layer ``k``, negative values count from the end (``-1`` is the last layer's output);
  ``None`` (default) is the model's own final output. An encoder that can learn a mix of all
  hidden states also accepts ``"weighted"``.
- ``path: InputPath | None``: a file or folder the component reads (a checkpoint). Fields typed
  :data:`InputPath` are found by the core (``slam spec validate`` checks that they exist)
  without knowing the plugin.
- Random-init shape: ``size`` (a preset name) and ``shape`` (a typed model whose fields, all
  optional, override the preset), both refused together with ``path``, whose checkpoint
  defines the shape.
- :func:`renamed_keys` turns a key a config no longer takes into an error naming its new key.

This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator

DType = Literal["auto", "fp32", "bf16", "fp16"]

Layer = int | None

#: Marker carried by :data:`InputPath` in the field's metadata; the core looks for it.
INPUT_PATH_MARKER = "slam-input-path"


def _as_path_text(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


#: A path the component reads; a string in the validated config (relative paths are resolved by
#: the spec loader against the spec file's folder).
InputPath = Annotated[str, BeforeValidator(_as_path_text), INPUT_PATH_MARKER]


def resolve_dtype(name: str, cuda_available: bool | None = None) -> str:
    """``auto`` → ``bf16`` with CUDA, else ``fp32``; other names unchanged."""
    if name != "auto":
        return name
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    return "bf16" if cuda_available else "fp32"


def renamed_keys(data: Any, renames: Mapping[str, str], component: str) -> Any:
    """For a ``model_validator(mode="before")``: refuse keys a config no longer takes, naming the new key.

    ``renames`` maps an old key to a hint such as ``"shape.num_layers"``.
    """
    if isinstance(data, Mapping):
        old = [key for key in renames if key in data]
        if old:
            hints = "; ".join(f"{key!r} is now {renames[key]!r}" for key in old)
            raise ValueError(f"{component}: {hints} (see docs/spec.md)")
    return data
