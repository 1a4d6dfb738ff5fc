"""Building one component from its config through the plugin that declares its ``type``.

The factory a plugin names has its kind's signature (the protocols in
:mod:`slam_core.components`: ``EncoderFactory``, ``ProjectorFactory``, ...). What it returns
must be an instance of the kind's contract class; anything else, and any exception of the
factory that is not a :class:`~slam_core.errors.SlamError`, is a :class:`PluginError` that
names the plugin's distribution. A ``SlamError`` (e.g. a ``CheckpointError`` naming a file)
passes unchanged, so its message reaches the user.
"""

from __future__ import annotations

from typing import Any, Literal, overload

from slam_core import plugins
from slam_core.components import CONTRACTS, LLM, Encoder, PEFTMethod, Projector, TaskHead
from slam_core.errors import ContractError, PluginError, SlamError


@overload
def build_component(kind: Literal["encoder"], config: Any, registry: plugins.Registry | None = None) -> Encoder: ...
@overload
def build_component(
    kind: Literal["projector"],
    config: Any,
    registry: plugins.Registry | None = None,
    *,
    input_dim: int,
    output_dim: int,
) -> Projector: ...
@overload
def build_component(kind: Literal["llm"], config: Any, registry: plugins.Registry | None = None) -> LLM: ...
@overload
def build_component(kind: Literal["peft"], config: Any, registry: plugins.Registry | None = None) -> PEFTMethod: ...
@overload
def build_component(kind: Literal["task"], config: Any, registry: plugins.Registry | None = None) -> TaskHead: ...
def build_component(kind: str, config: Any, registry: plugins.Registry | None = None, **context: Any) -> Any:
    """Build one component of ``kind`` from ``config`` (``context``: a projector's ``input_dim``, ``output_dim``)."""
    registered = (registry or plugins.registry()).get(kind, config.type)
    where = f"{kind} {config.type!r} from {registered.plugin.label}"
    try:
        factory = registered.spec.load_factory()
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"{where}: cannot import its factory {registered.spec.factory!r}: {exc}") from exc
    try:
        component = factory(config, **context)
    except SlamError:
        raise
    except Exception as exc:
        raise PluginError(
            f"{where}: its factory {registered.spec.factory!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    contract = CONTRACTS[kind]
    if not isinstance(component, contract):
        raise ContractError(
            f"{where}: its factory {registered.spec.factory!r} returned {_describe(component)}, "
            f"not a slam_core.components.{contract.__name__}"
        )
    return component


def _describe(value: Any) -> str:
    kind = type(value)
    return "None" if value is None else f"a {kind.__module__}.{kind.__qualname__}"
