"""Typed records that plugins return from their hooks.

This module imports no torch: discovery, ``slam plugins`` and spec validation only need
these records and the pydantic config models they carry.
"""

from __future__ import annotations

import enum
import importlib
import re
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from slam_core.errors import RecordError

#: Version of the component contracts (``slam_core.components``) this host implements.
#: A plugin targets ``MAJOR.MINOR``; it is compatible when the majors are equal and its
#: minor is not newer than the host's.
API_VERSION = "1.0"

_FACTORY_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_API_PATTERN = re.compile(r"^(\d+)\.(\d+)$")
_METRIC_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")


class ComponentKind(str, enum.Enum):
    """The five kinds of component a pipeline is composed of."""

    ENCODER = "encoder"
    PROJECTOR = "projector"
    LLM = "llm"
    PEFT = "peft"
    TASK = "task"


@dataclass(frozen=True)
class ComponentSpec:
    """What a plugin declares about one component.

    Attributes:
        name: the component's type name; equal to the default of the config's ``type`` literal.
        config: a pydantic model with ``extra="forbid"`` and a ``type: Literal[name]`` field.
        factory: ``"module:attr"`` naming the callable that builds the component. It is
            imported only when the component is built, so discovery imports no torch.
        api: the contract version (``"MAJOR.MINOR"``) the plugin was written for; required, so
            that a plugin built for an older or newer contract is reported, never silently loaded.
        description: one line shown by ``slam plugins``.
    """

    name: str
    config: type[BaseModel]
    factory: str
    api: str
    description: str = ""

    def validate(self) -> None:
        """Raise :class:`RecordError` naming the first rule this record breaks."""
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", self.name):
            raise RecordError(f"name {self.name!r} must be lower-case letters, digits, '.', '_' or '-'")
        if not (isinstance(self.config, type) and issubclass(self.config, BaseModel)):
            raise RecordError(f"{self.name}: config must be a pydantic BaseModel subclass, got {self.config!r}")
        if self.config.model_config.get("extra") != "forbid":
            raise RecordError(f"{self.name}: config {self.config.__name__} must set extra='forbid'")
        literal = config_type_literal(self.config)
        if literal != self.name:
            raise RecordError(
                f"{self.name}: config {self.config.__name__}.type must be Literal[{self.name!r}] "
                f"with that default, found {literal!r}"
            )
        if not isinstance(self.factory, str) or not _FACTORY_PATTERN.fullmatch(self.factory):
            raise RecordError(f"{self.name}: factory {self.factory!r} must be a 'module:attr' string")
        if not isinstance(self.api, str) or not _API_PATTERN.fullmatch(self.api):
            raise RecordError(f"{self.name}: api {self.api!r} must look like 'MAJOR.MINOR'")

    def load_factory(self) -> Any:
        """Import and return the factory callable (this may import torch)."""
        return import_object(self.factory)


@dataclass(frozen=True)
class CommandSpec:
    """What a plugin declares about one ``slam`` subcommand (``slam <name> ...``).

    Attributes:
        name: the subcommand, lower-case letters, digits and '-'; it may not be one of the
            core's own commands (``plugins``, ``spec``, ``inspect``, ``train``, ``infer``, ``eval``).
        help: one line shown by ``slam --help`` and ``slam plugins``.
        factory: ``"module:attr"`` naming ``factory(parser: argparse.ArgumentParser) -> run``: it adds
            the subcommand's arguments to ``parser`` and returns ``run(args: argparse.Namespace) -> int``.
            It is imported only when ``slam <name>`` runs, so listing commands imports nothing of the
            plugin's but its hook module.
        api: the contract version (``"MAJOR.MINOR"``) the plugin was written for, as for components.
    """

    name: str
    help: str
    factory: str
    api: str

    def validate(self) -> None:
        """Raise :class:`RecordError` naming the first rule this record breaks."""
        if not isinstance(self.name, str) or not re.fullmatch(r"[a-z][a-z0-9-]*", self.name):
            raise RecordError(f"command name {self.name!r} must be lower-case letters, digits or '-'")
        if not isinstance(self.help, str) or not self.help.strip() or "\n" in self.help:
            raise RecordError(f"command {self.name}: help must be one non-empty line, got {self.help!r}")
        if not isinstance(self.factory, str) or not _FACTORY_PATTERN.fullmatch(self.factory):
            raise RecordError(f"command {self.name}: factory {self.factory!r} must be a 'module:attr' string")
        if not isinstance(self.api, str) or not _API_PATTERN.fullmatch(self.api):
            raise RecordError(f"command {self.name}: api {self.api!r} must look like 'MAJOR.MINOR'")

    def load_factory(self) -> Any:
        """Import and return the factory callable."""
        return import_object(self.factory)


@dataclass(frozen=True)
class MetricSpec:
    """What a plugin declares about one metric (hook ``slam_metrics``).

    Attributes:
        name: the name task heads list in ``metrics`` and ``slam eval --metrics`` takes
            (lower-case letters, digits and ``_``, e.g. ``wer``, ``macro_f1``).
        implementation: ``"module:attr"`` naming the object that computes it, imported only when
            a score is computed: it has ``compute(inputs) -> float`` (``inputs.hypotheses``,
            ``inputs.references`` (a list of reference strings per hypothesis), ``inputs.samples``,
            ``inputs.options``) and ``unavailable(options) -> str | None`` (why it cannot run here).
        api: the contract version (``"MAJOR.MINOR"``) the plugin was written for.
        description: one line.
    """

    name: str
    implementation: str
    api: str
    description: str = ""

    def validate(self) -> None:
        """Raise :class:`RecordError` naming the first rule this record breaks."""
        if not isinstance(self.name, str) or not _METRIC_NAME_PATTERN.fullmatch(self.name):
            raise RecordError(f"metric name {self.name!r} must be lower-case letters, digits or '_'")
        if not isinstance(self.implementation, str) or not _FACTORY_PATTERN.fullmatch(self.implementation):
            raise RecordError(f"metric {self.name}: implementation {self.implementation!r} must be 'module:attr'")
        if not isinstance(self.api, str) or not _API_PATTERN.fullmatch(self.api):
            raise RecordError(f"metric {self.name}: api {self.api!r} must look like 'MAJOR.MINOR'")

    def load(self) -> Any:
        """Import and return the implementation."""
        return import_object(self.implementation)


def import_object(reference: str) -> Any:
    """The object a ``"module:attr"`` string names (``attr`` may be dotted)."""
    module_name, _, attr = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def config_type_literal(config: type[BaseModel]) -> str | None:
    """The single value of a config model's ``type: Literal[...]`` field, if it has one."""
    field = config.model_fields.get("type")
    if field is None:
        return None
    args = typing.get_args(field.annotation)
    if typing.get_origin(field.annotation) is not typing.Literal or len(args) != 1:
        return None
    if field.default != args[0]:
        return None
    return args[0]


def api_compatible(plugin_api: str, host_api: str = API_VERSION) -> bool:
    """True when a plugin targeting ``plugin_api`` runs on a host implementing ``host_api``."""
    plugin = _API_PATTERN.fullmatch(plugin_api) if isinstance(plugin_api, str) else None
    host = _API_PATTERN.fullmatch(host_api) if isinstance(host_api, str) else None
    if plugin is None or host is None:
        return False
    return int(plugin.group(1)) == int(host.group(1)) and int(plugin.group(2)) <= int(host.group(2))
