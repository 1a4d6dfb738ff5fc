"""The rules every kind shares: discovery, a torch-free entry point, the factory, the config, the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from slam_core import plugins
from slam_core.errors import UnknownComponentError
from slam_core.records import API_VERSION, api_compatible, config_type_literal
from slam_core.testing.isolation import entry_point_module, import_chain
from slam_core.testing.rules import checks, fail, require


class ComponentConformance:
    """Checks shared by every kind: discovery, the entry point, the factory, config, schema, API version.

    Set ``component_name`` (registered type) and ``config`` (tiny settings). For a component
    not installed through an entry point, set ``factory`` and ``config_model`` instead.
    """

    kind: ClassVar[str] = ""
    contract: ClassVar[type] = object
    component_name: ClassVar[str | None] = None
    config: ClassVar[dict[str, Any]] = {}
    factory: ClassVar[Callable[..., Any] | None] = None
    config_model: ClassVar[type[BaseModel] | None] = None
    api: ClassVar[str] = API_VERSION
    seed: ClassVar[int] = 0

    # -- helpers a subclass may use or override ------------------------------------------
    def registered(self) -> plugins.RegisteredComponent:
        """The registry's entry for ``component_name`` (skips without one; the ``discoverable`` rule fails
        when it is not there, naming the plugins that failed to load)."""
        if self.component_name is None:
            pytest.skip("no component_name: the component is not looked up through the entry point")
        try:
            return plugins.registry().get(self.kind, self.component_name)
        except UnknownComponentError as exc:
            fail("discoverable", str(exc))

    def get_config_model(self) -> type[BaseModel]:
        if self.config_model is not None:
            return self.config_model
        return self.registered().spec.config

    def type_name(self) -> str:
        return self.component_name or config_type_literal(self.get_config_model()) or ""

    def make_config(self) -> BaseModel:
        return self.get_config_model().model_validate({"type": self.type_name(), **self.config})

    def get_factory(self) -> Callable[..., Any]:
        factory = type(self).factory  # read from the class: a plain function must not bind to the test
        if factory is not None:
            return factory
        return self.registered().spec.load_factory()

    def factory_kwargs(self) -> dict[str, Any]:
        return {}

    def build(self, seed: int | None = None) -> Any:
        """A fresh component; parameters initialised from ``seed`` (default ``self.seed``)."""
        torch.manual_seed(self.seed if seed is None else seed)
        return self.get_factory()(self.make_config(), **self.factory_kwargs())

    def factory_name(self) -> str:
        factory = type(self).factory
        if factory is not None:
            return f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', factory)}"
        return self.registered().spec.factory

    # -- the rules -----------------------------------------------------------------------
    @checks("discoverable")
    def test_discoverable(self):
        entry = self.registered()
        report = entry.plugin
        require(report.status is plugins.PluginStatus.OK, "discoverable", f"{report.label}: {report.message}")
        require(
            report.distribution != "<unknown distribution>",
            "discoverable",
            f"entry point {report.entry_point!r} belongs to no named distribution (install the package)",
        )
        require(
            entry.spec.name == self.component_name,
            "discoverable",
            f"registered as {entry.spec.name!r}, the test asks for {self.component_name!r}",
        )

    @checks("entry-point-imports-no-torch")
    def test_entry_point_imports_no_torch(self):
        report = self.registered().plugin
        module = entry_point_module(report.entry_point, report.distribution, plugins.ENTRY_POINT_GROUP)
        probe = import_chain(module, "torch")
        require(probe.error is None, "entry-point-imports-no-torch", f"importing {module} failed: {probe.error}")
        require(
            not probe.imported,
            "entry-point-imports-no-torch",
            lambda: (
                f"importing {module} (entry point {report.entry_point!r} of {report.distribution}) imported "
                f"torch, which every `slam plugins` and `slam spec` run then pays for; it came through:\n"
                f"{probe.culprit()}\nmove those imports into the factory's module"
            ),
        )

    @checks("factory-returns-contract")
    def test_factory_returns_contract(self):
        component = self.build()
        require(
            isinstance(component, self.contract),
            "factory-returns-contract",
            lambda: (
                f"the factory {self.factory_name()} returned a {type(component).__module__}."
                f"{type(component).__qualname__}, not a {self.contract.__module__}.{self.contract.__name__}"
            ),
        )

    @checks("config-round-trip")
    def test_config_round_trip(self):
        config = self.make_config()
        model = self.get_config_model()
        for how, again in (
            ("model_dump", lambda: model.model_validate(config.model_dump())),
            ("model_dump_json", lambda: model.model_validate_json(config.model_dump_json())),
            ("json.dumps", lambda: model.model_validate(json.loads(json.dumps(config.model_dump(mode="json"))))),
        ):
            result = again()
            if result != config:
                fail("config-round-trip", f"through {how}: {config!r} came back as {result!r}")

    @checks("config-forbids-unknown-fields")
    def test_config_forbids_unknown_fields(self):
        try:
            self.get_config_model().model_validate({**self.make_config().model_dump(), "no_such_setting_xyz": 1})
        except ValidationError:
            return
        fail("config-forbids-unknown-fields", "a config with `no_such_setting_xyz: 1` validated; set extra='forbid'")

    @checks("config-type-is-the-name")
    def test_config_type_is_the_name(self):
        literal = config_type_literal(self.get_config_model())
        require(
            literal == self.type_name(),
            "config-type-is-the-name",
            f"the config's type literal is {literal!r}, the component is {self.type_name()!r}",
        )

    @checks("config-defaults-validate")
    def test_config_defaults_validate(self):
        model = self.get_config_model()
        required = {name for name, field in model.model_fields.items() if field.is_required()}

        class CheckedDefaults(model):  # the same validation, with the defaults validated too
            model_config = ConfigDict(**{**model.model_config, "validate_default": True})

        given = {"type": self.type_name(), **{key: value for key, value in self.config.items() if key in required}}
        try:
            CheckedDefaults.model_validate(given)
        except ValidationError as exc:
            fail("config-defaults-validate", f"{model.__name__} with only its defaults does not validate: {exc}")

    @checks("config-schema")
    def test_config_schema(self):
        schema = self.get_config_model().model_json_schema()
        json.dumps(schema)
        type_schema = schema.get("properties", {}).get("type", {})
        constant = type_schema.get("const", (type_schema.get("enum") or [None])[0])
        require(
            constant == self.type_name(),
            "config-schema",
            f"the schema's `type` is {type_schema!r}, expected the constant {self.type_name()!r}",
        )

    @checks("api-compatible")
    def test_api_compatible(self):
        api = self.registered().spec.api if self.component_name else self.api
        require(api_compatible(api), "api-compatible", f"targets API {api!r}, this host implements {API_VERSION}")
