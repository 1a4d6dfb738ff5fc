"""The shared vocabulary of component configs: one meaning per field name across every plugin.

Plugin config models (pydantic, ``extra="forbid"``) use these instead of their own variants:

- ``dtype: DType = "auto"``: the weights' dtype of every torch component; ``auto`` is bf16
  when CUDA is available, else fp32 (:func:`resolve_dtype`).
- ``layer: Layer = None``: which hidden state an encoder returns, counted as transformers'
  ``hidden_states`` tuple is: ``0`` is the input of the first transformer layer, ``k`` the
  output of layer ``k``, negative values count from the end (``-1`` is the last layer's output);
  ``None`` (default) is the model's own final output. As in transformers, the last state is
  that final output (a pre-LN model's final LayerNorm included), so ``-1``, ``L`` and ``None``
  agree (:func:`layer_index`). An encoder that can learn a mix of all hidden states takes
  :data:`MixedLayer`, which adds ``"weighted"``.
- ``path: InputPath | None``: a file or folder the component reads (a checkpoint). Fields typed
  :data:`InputPath` are found by the core (``slam spec validate`` checks that they exist)
  without knowing the plugin.
- Random-init shape: ``size`` (a preset name) and ``shape`` (a :class:`Shape` whose fields, all
  optional, override the preset), both refused together with ``path``, whose checkpoint
  defines the shape (:func:`refuse_shape_with_path`). The same meaning has the same name in
  every plugin's ``shape`` (``hidden_size``, ``num_layers``, ``num_heads``, ...; the table is in
  docs/spec.md).
- :func:`renamed_keys` turns a key a config no longer takes into an error naming its new key.

This module imports no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

DType = Literal["auto", "fp32", "bf16", "fp16"]

Layer = int | None

#: :data:`Layer` or ``"weighted"``: a learned softmax-weighted sum of all hidden states.
MixedLayer = int | Literal["weighted"] | None

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


def torch_dtype(name: str, cuda_available: bool | None = None):
    """The ``torch.dtype`` of a :data:`DType` name (``auto`` resolved by :func:`resolve_dtype`)."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[resolve_dtype(name, cuda_available)]


def layer_index(layer: int | None, num_layers: int) -> int:
    """``layer`` as an index into the ``num_layers + 1`` hidden states; ``None`` is the last one."""
    if layer is None:
        return num_layers
    if not -(num_layers + 1) <= layer <= num_layers:
        raise ValueError(
            f"layer {layer} is out of range: the model has {num_layers} layers, i.e. hidden states "
            f"0..{num_layers} (or -{num_layers + 1}..-1 from the end)"
        )
    return layer % (num_layers + 1)


class Shape(BaseModel):
    """Base of a component's ``shape``: typed fields, all optional, that override its ``size`` preset.

    A subclass sets ``component`` (its type, for messages) and ``upstream_names`` (field →
    the name the model's own config uses, where the two differ): :meth:`upstream` renames the
    given fields for the model's config, and an upstream name written in ``shape`` is refused
    naming the field to use.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    component: ClassVar[str] = "shape"
    upstream_names: ClassVar[Mapping[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_upstream_names(cls, data: Any) -> Any:
        renames = {old: f"shape.{new}" for new, old in cls.upstream_names.items() if old not in cls.model_fields}
        return renamed_keys(data, renames, cls.component)

    @classmethod
    def flat_keys(cls) -> dict[str, str]:
        """Keys of a flat (pre-``shape``) config, own and upstream names, → ``shape.<field>``; for
        :func:`renamed_keys`."""
        upstream = {old: f"shape.{new}" for new, old in cls.upstream_names.items()}
        return {**upstream, **{name: f"shape.{name}" for name in cls.model_fields}}

    @classmethod
    def from_upstream(cls, values: Mapping[str, Any]) -> Shape:
        """The shape of ``values`` given under the model's own config names (the inverse of :meth:`upstream`)."""
        own = {upstream: name for name, upstream in cls.upstream_names.items()}
        return cls.model_validate({own.get(key, key): value for key, value in values.items()})

    def given(self) -> dict[str, Any]:
        """The fields set (not null), under their own names."""
        return self.model_dump(exclude_none=True)

    def upstream(self) -> dict[str, Any]:
        """The fields set (not null), under the model's own config names."""
        return {self.upstream_names.get(name, name): value for name, value in self.given().items()}


def refuse_shape_with_path(component: str, path: str | None, *, key: str = "path", **fields: Any) -> None:
    """For an ``after`` validator: refuse ``size`` / ``shape`` (given as ``fields``) beside a checkpoint
    (``path``, or the field ``key`` that names it)."""
    given = [name for name, value in fields.items() if value is not None]
    if path is not None and given:
        names = " and ".join(given)
        what = "they describe" if len(given) > 1 else "it describes"
        raise ValueError(
            f"{component}: {key} {path} is a checkpoint, which defines its own shape; drop {names} "
            f"({what} a random-init model) or set {key}: null"
        )


class TransformerShape(Shape):
    """The fields every transformer's ``shape`` has, one name each (null: the ``size`` preset's value)."""

    hidden_size: int | None = Field(None, gt=0, description="transformer width")
    num_layers: int | None = Field(None, gt=0)
    num_heads: int | None = Field(None, gt=0)
    intermediate_size: int | None = Field(None, gt=0, description="feed-forward width")
