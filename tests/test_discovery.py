"""Plugin discovery (``slam_core.plugins``) against fake installed distributions.

Every broken plugin is a real dist-info folder plus module on ``sys.path`` (see
``fakedist.py``), discovered through ``importlib.metadata`` exactly as a pip-installed one.
"""

from __future__ import annotations

import logging
import re
import sys
from importlib import metadata
from typing import Literal

import pytest
from fakedist import PREAMBLE, component_source, config_source, hook_source
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, create_model

from slam_core import plugins, records
from slam_core.plugins import PluginError, PluginStatus
from slam_core.records import API_VERSION, ComponentSpec, RecordError, api_compatible

#: The components slam-core and the two core-set plugins installed in the dev environment provide.
INSTALLED = {
    ("encoder", "toy-encoder"): "slam-core",
    ("llm", "toy-llm"): "slam-core",
    ("task", "asr"): "slam-core",
    ("projector", "linear-projector"): "slam-plugin-linear-projector",
    ("peft", "lora"): "slam-plugin-lora",
}

GOOD_DIST, GOOD_VERSION, GOOD_COMPONENT = "fake-good-encoder", "0.3.1", ("encoder", "fake-good")
BROKEN_DIST, BROKEN_VERSION = "fake-broken", "2.7.1"

HOST_MAJOR, HOST_MINOR = (int(part) for part in API_VERSION.split("."))


def report_for(registry: plugins.Registry, distribution: str) -> plugins.PluginReport:
    found = [r for r in registry.reports if r.distribution == distribution]
    assert len(found) == 1, f"expected one report for {distribution}, got {registry.reports}"
    return found[0]


def assert_good_plugins_registered(registry: plugins.Registry, *, with_fake: bool = True) -> None:
    """The installed plugins (and the good fake one) are registered, whatever else broke."""
    expected = dict(INSTALLED)
    if with_fake:
        expected[GOOD_COMPONENT] = GOOD_DIST
    for (kind, name), distribution in expected.items():
        assert name in registry.components[kind], f"{kind} {name!r} missing from {registry.names(kind)}"
        entry = registry.components[kind][name]
        assert entry.plugin.distribution == distribution
        assert entry.plugin.status is PluginStatus.OK
        assert entry.plugin.version == metadata.version(distribution)


CORE_DISTS = sorted(set(INSTALLED.values()))


def only_core_and(monkeypatch, *distributions: str) -> None:
    """Load only slam-core, the core-set plugins and ``distributions``.

    Other plugins installed in the environment (whisper, vicuna, ...) then cannot change the
    outcome of a test that needs *no* problem at all, such as a quiet strict-mode run.
    """
    monkeypatch.setenv("SLAM_PLUGINS_ALLOW", ",".join([*CORE_DISTS, *distributions]))


def our_problems(registry: plugins.Registry) -> set[tuple[str, PluginStatus]]:
    """The problems of slam-core, the core-set plugins and the fake plugins of this module."""
    return {
        (r.distribution, r.status)
        for r in registry.problems()
        if r.distribution in CORE_DISTS or r.distribution.startswith("fake-")
    }


@pytest.fixture
def site(fake_site):
    """The fake site with one well-formed plugin installed next to whatever a test adds."""
    fake_site.add_plugin(GOOD_DIST, component_source(*GOOD_COMPONENT), version=GOOD_VERSION)
    return fake_site


# --- the healthy case ------------------------------------------------------------------------


def test_installed_and_fake_plugins_are_registered(site):
    registry = plugins.registry()
    assert_good_plugins_registered(registry)
    assert our_problems(registry) == set()
    good = report_for(registry, GOOD_DIST)
    assert (good.entry_point, good.version, good.components) == (GOOD_DIST, GOOD_VERSION, [GOOD_COMPONENT])
    assert registry.get(*GOOD_COMPONENT).spec.factory == "fake_factories:build"


def test_discovery_calls_the_hooks_once_per_discovery(site):
    counting = (
        PREAMBLE
        + "CALLS = []\n"
        + config_source("counted")
        + (
            "\n\n@hookimpl\ndef slam_task_heads():\n    CALLS.append(1)\n"
            "    return [ComponentSpec('counted', Config, 'm:f', api=API_VERSION)]\n"
        )
    )
    module = site.add_plugin("fake-counter", counting)
    plugins.registry()
    plugins.registry()
    assert sys.modules[module].CALLS == [1]
    plugins.clear_cache()
    assert "counted" in plugins.registry().components["task"]
    assert sys.modules[module].CALLS == [1, 1]


def test_unknown_component_names_the_choices(site):
    with pytest.raises(plugins.UnknownComponentError) as caught:
        plugins.registry().get("encoder", "fake-goood")
    message = str(caught.value)
    assert "'fake-goood'" in message and "toy-encoder" in message and "fake-good" in message
    assert "Did you mean 'fake-good'?" in message


def test_unknown_kind_lists_the_kinds(site):
    with pytest.raises(plugins.UnknownComponentError, match=r"unknown component kind 'decoder'.*encoder, projector"):
        plugins.registry().get("decoder", "x")


# --- one broken plugin at a time ----------------------------------------------------------------

#: id -> (plugin module source, expected status, fragments the message must contain)
BROKEN_PLUGINS = {
    "import-error": (
        "import slam_no_such_dependency_xyz\n",
        PluginStatus.IMPORT_FAILED,
        ["ModuleNotFoundError", "slam_no_such_dependency_xyz"],
    ),
    "error-at-import": (
        "raise ImportError('needs libfoo 3.2')\n",
        PluginStatus.IMPORT_FAILED,
        ["ImportError", "needs libfoo 3.2"],
    ),
    "exits-at-import": (
        "import sys\nsys.exit('no GPU driver found')\n",
        PluginStatus.IMPORT_FAILED,
        ["SystemExit", "no GPU driver found"],
    ),
    "record-without-api": (
        PREAMBLE + config_source("noapi") + hook_source("encoder", "[ComponentSpec('noapi', Config, 'm:f')]"),
        PluginStatus.INVALID,
        ["slam_encoders raised TypeError", "api"],
    ),
    "hook-returns-one-record-not-a-list": (
        PREAMBLE
        + config_source("solo")
        + hook_source("projector", "ComponentSpec('solo', Config, 'm:f', api=API_VERSION)"),
        PluginStatus.INVALID,
        ["slam_projectors", "returned ComponentSpec", "expected a list"],
    ),
    "hook-returns-a-dict": (
        PREAMBLE + config_source("solo") + hook_source("projector", "{'solo': Config}"),
        PluginStatus.INVALID,
        ["slam_projectors", "returned dict", "expected a list"],
    ),
    "list-of-non-records": (
        PREAMBLE + config_source("solo") + hook_source("llm", "[{'name': 'solo', 'config': Config}]"),
        PluginStatus.INVALID,
        ["slam_llms", "returned a dict", "expected ComponentSpec"],
    ),
    "config-without-extra-forbid": (
        PREAMBLE
        + config_source("lax", extra=None)
        + hook_source("peft", "[ComponentSpec('lax', Config, 'm:f', api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["slam_peft_methods", "lax", "extra='forbid'"],
    ),
    "config-with-extra-allow": (
        PREAMBLE
        + config_source("lax", extra="allow")
        + hook_source("peft", "[ComponentSpec('lax', Config, 'm:f', api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["extra='forbid'"],
    ),
    "name-differs-from-type-literal": (
        PREAMBLE
        + config_source("other-name")
        + hook_source("encoder", "[ComponentSpec('my-enc', Config, 'm:f', api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["slam_encoders", "my-enc", "Literal", "other-name"],
    ),
    "config-is-not-a-model": (
        PREAMBLE + hook_source("encoder", "[ComponentSpec('my-enc', dict, 'm:f', api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["my-enc", "BaseModel"],
    ),
    "bad-name": (
        PREAMBLE
        + config_source("My Encoder")
        + hook_source("encoder", "[ComponentSpec('My Encoder', Config, 'm:f', api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["'My Encoder'", "lower-case"],
    ),
    "bad-factory-string": (
        PREAMBLE
        + config_source("fac")
        + hook_source("task", "[ComponentSpec('fac', Config, 'pkg.module.Class', api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["slam_task_heads", "'pkg.module.Class'", "module:attr"],
    ),
    "factory-is-a-callable": (
        PREAMBLE + config_source("fac") + hook_source("task", "[ComponentSpec('fac', Config, print, api=API_VERSION)]"),
        PluginStatus.INVALID,
        ["factory", "module:attr"],
    ),
    "bad-api-string": (
        PREAMBLE + config_source("api") + hook_source("task", "[ComponentSpec('api', Config, 'm:f', api='v1')]"),
        PluginStatus.INVALID,
        ["'v1'", "MAJOR.MINOR"],
    ),
    "hook-raises": (
        PREAMBLE + "\n\n@hookimpl\ndef slam_llms():\n    raise RuntimeError('weights server unreachable')\n",
        PluginStatus.INVALID,
        ["slam_llms", "RuntimeError", "weights server unreachable"],
    ),
    "misspelled-hook": (
        PREAMBLE + config_source("typo") + "\n\n@hookimpl\ndef slam_encoderz():\n    return []\n",
        PluginStatus.INVALID,
        ["slam_encoderz"],
    ),
    "hook-with-unknown-argument": (
        PREAMBLE + "\n\n@hookimpl\ndef slam_encoders(device):\n    return []\n",
        PluginStatus.INVALID,
        ["slam_encoders", "device"],
    ),
}


@pytest.mark.parametrize("case", list(BROKEN_PLUGINS))
def test_broken_plugin_is_reported_and_skipped(site, case, caplog):
    source, status, fragments = BROKEN_PLUGINS[case]
    site.add_plugin(BROKEN_DIST, source, version=BROKEN_VERSION, entry_point="broken")
    with caplog.at_level(logging.WARNING, logger="slam.plugins"):
        registry = plugins.registry()

    report = report_for(registry, BROKEN_DIST)
    assert report.status is status
    assert (report.entry_point, report.version) == ("broken", BROKEN_VERSION)
    for fragment in fragments:
        assert fragment in report.message
    assert report in registry.problems()
    assert BROKEN_DIST in report.label and BROKEN_VERSION in report.label
    # nothing of the broken plugin is registered, everything else is
    assert all(entry.plugin is not report for kind in registry.components.values() for entry in kind.values())
    assert_good_plugins_registered(registry)
    assert any(BROKEN_DIST in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("case", list(BROKEN_PLUGINS))
def test_strict_mode_makes_a_broken_plugin_fatal(site, case, monkeypatch):
    source, status, fragments = BROKEN_PLUGINS[case]
    site.add_plugin(BROKEN_DIST, source, version=BROKEN_VERSION, entry_point="broken")
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError) as caught:
        plugins.registry()
    message = str(caught.value)
    assert BROKEN_DIST in message and BROKEN_VERSION in message
    assert status.value in message
    assert fragments[0] in message
    assert GOOD_DIST not in message  # only the broken one is named


@pytest.mark.parametrize("value", ["0", "", "no", "false"])
def test_strict_mode_off_values(site, monkeypatch, value):
    site.add_plugin(BROKEN_DIST, "raise ImportError('x')\n")
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", value)
    assert report_for(plugins.registry(), BROKEN_DIST).status is PluginStatus.IMPORT_FAILED


def test_strict_mode_with_healthy_plugins_is_quiet(site, monkeypatch):
    only_core_and(monkeypatch, GOOD_DIST)
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "true")
    assert_good_plugins_registered(plugins.registry())


def test_each_of_several_broken_plugins_is_reported(site, monkeypatch):
    site.add_plugin("fake-broken-a", "raise ImportError('a is broken')\n")
    site.add_plugin("fake-broken-b", BROKEN_PLUGINS["hook-raises"][0])
    registry = plugins.registry()
    assert our_problems(registry) == {
        ("fake-broken-a", PluginStatus.IMPORT_FAILED),
        ("fake-broken-b", PluginStatus.INVALID),
    }
    assert_good_plugins_registered(registry)

    plugins.clear_cache()
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=r"(?s)fake-broken-a.*fake-broken-b"):
        plugins.registry()


def test_a_plugin_whose_later_hook_is_bad_registers_nothing(site):
    # slam_projectors is fine, slam_task_heads (asked later) returns a malformed record
    source = (
        PREAMBLE
        + config_source("half-proj", class_name="Proj")
        + config_source("half-task", class_name="Task", extra="ignore")
        + hook_source("projector", "[ComponentSpec('half-proj', Proj, 'm:f', api=API_VERSION)]")
        + hook_source("task", "[ComponentSpec('half-task', Task, 'm:f', api=API_VERSION)]")
    )
    site.add_plugin(BROKEN_DIST, source)
    registry = plugins.registry()
    assert report_for(registry, BROKEN_DIST).status is PluginStatus.INVALID
    assert "half-proj" not in registry.components["projector"]
    assert "half-task" not in registry.components["task"]


def test_entry_point_naming_a_missing_attribute_is_an_import_failure(site):
    site.add_dist(
        BROKEN_DIST,
        "1.0",
        entry_points={"broken": "fake_attr_plugin:plugin_object"},
        modules={"fake_attr_plugin": "x = 1\n"},
    )
    report = report_for(plugins.registry(), BROKEN_DIST)
    assert report.status is PluginStatus.IMPORT_FAILED
    assert "plugin_object" in report.message


def test_plugin_object_named_by_entry_point_attribute(site):
    holder = "\n\nclass Holder:\n    slam_task_heads = staticmethod(slam_task_heads)\n"
    source = component_source("task", "obj-task") + holder
    site.add_dist(
        "fake-object", "1.0", entry_points={"obj": "fake_obj_plugin:Holder"}, modules={"fake_obj_plugin": source}
    )
    registry = plugins.registry()
    assert report_for(registry, "fake-object").status is PluginStatus.OK
    assert "obj-task" in registry.components["task"]


def test_dist_info_without_a_name_does_not_break_discovery(site):
    site.add_dist(
        "fake-nameless",
        "1.0",
        entry_points={"nameless": "fake_nameless_plugin"},
        modules={"fake_nameless_plugin": component_source("task", "nameless")},
        metadata="Metadata-Version: 2.1\n",
    )
    registry = plugins.registry()  # one broken dist-info must not take discovery down
    assert_good_plugins_registered(registry)
    assert all(isinstance(r.distribution, str) and isinstance(r.version, str) for r in registry.reports)


# --- API versions ---------------------------------------------------------------------------------

NEWER_MAJOR = f"{HOST_MAJOR + 1}.0"
NEWER_MINOR = f"{HOST_MAJOR}.{HOST_MINOR + 9}"
INCOMPATIBLE_APIS = [NEWER_MAJOR, NEWER_MINOR, f"{HOST_MAJOR + 1}.{HOST_MINOR}"]
if HOST_MAJOR > 0:
    INCOMPATIBLE_APIS.append(f"{HOST_MAJOR - 1}.{HOST_MINOR + 5}")
COMPATIBLE_APIS = [API_VERSION, *([f"{HOST_MAJOR}.{HOST_MINOR - 1}"] if HOST_MINOR else [])]


def test_the_host_is_the_version_the_issue_names():
    # the brief's examples ("2.0" and "1.9" are incompatible, "1.0" is ok) assume this host
    assert API_VERSION == "1.0"
    assert not api_compatible("2.0") and not api_compatible("1.9") and api_compatible("1.0")


@pytest.mark.parametrize("api", INCOMPATIBLE_APIS)
def test_incompatible_api_version_is_reported(site, api, monkeypatch):
    site.add_plugin(BROKEN_DIST, component_source("encoder", "future-enc", api=api), version=BROKEN_VERSION)
    registry = plugins.registry()
    report = report_for(registry, BROKEN_DIST)
    assert report.status is PluginStatus.INCOMPATIBLE
    assert report.version == BROKEN_VERSION
    assert api in report.message and API_VERSION in report.message and BROKEN_DIST in report.message
    assert "future-enc" not in registry.components["encoder"]
    assert_good_plugins_registered(registry)

    plugins.clear_cache()
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match=re.escape(BROKEN_DIST)):
        plugins.registry()


@pytest.mark.parametrize("api", COMPATIBLE_APIS)
def test_compatible_api_version_is_registered(site, api):
    site.add_plugin("fake-current", component_source("encoder", "current-enc", api=api))
    registry = plugins.registry()
    assert report_for(registry, "fake-current").status is PluginStatus.OK
    assert registry.get("encoder", "current-enc").spec.api == api


def test_one_incompatible_record_disables_the_whole_plugin(site):
    source = (
        PREAMBLE
        + config_source("old-proj", class_name="A")
        + config_source("new-proj", class_name="B")
        + hook_source(
            "projector",
            "[ComponentSpec('old-proj', A, 'm:f', api=API_VERSION), "
            f"ComponentSpec('new-proj', B, 'm:f', api={NEWER_MAJOR!r})]",
        )
    )
    site.add_plugin(BROKEN_DIST, source)
    registry = plugins.registry()
    report = report_for(registry, BROKEN_DIST)
    assert report.status is PluginStatus.INCOMPATIBLE
    assert NEWER_MAJOR in report.message
    assert {"old-proj", "new-proj"}.isdisjoint(registry.components["projector"])
    # the report still says what the plugin would have provided, for "did you mean" hints
    assert ("projector", "new-proj") in report.components


def test_unknown_component_message_mentions_the_skipped_plugin(site):
    site.add_plugin(BROKEN_DIST, component_source("encoder", "future-enc", api=NEWER_MAJOR))
    with pytest.raises(plugins.UnknownComponentError) as caught:
        plugins.registry().get("encoder", "future-enc")
    assert BROKEN_DIST in str(caught.value) and "skipped" in str(caught.value)


# --- name conflicts ---------------------------------------------------------------------------------


def test_clash_between_two_distributions_first_in_sort_order_wins(site):
    # written in the "wrong" order, so that the result cannot depend on the order on disk
    site.add_plugin("zzz-fake-projector", component_source("projector", "fake-proj"), version="9.0")
    site.add_plugin("aaa-fake-projector", component_source("projector", "fake-proj"), version="1.0")
    registry = plugins.registry()

    winner = registry.get("projector", "fake-proj")
    assert winner.plugin.distribution == "aaa-fake-projector"
    loser = report_for(registry, "zzz-fake-projector")
    assert loser.status is PluginStatus.CONFLICT
    assert loser.version == "9.0"
    assert "fake-proj" in loser.message and "aaa-fake-projector" in loser.message
    assert report_for(registry, "aaa-fake-projector").status is PluginStatus.OK
    assert_good_plugins_registered(registry)


def test_slam_plugins_prefer_decides_a_clash(site, monkeypatch):
    # 'aaa-rival' sorts before 'slam-plugin-linear-projector'; the user's SLAM_PLUGINS_PREFER keeps the name
    # with the plugin they prefer (no distribution is privileged by name in the core)
    monkeypatch.setenv("SLAM_PLUGINS_PREFER", "slam-plugin-linear-projector")
    source = (
        PREAMBLE
        + config_source("linear-projector", class_name="Clash")
        + config_source("rival-extra", class_name="Extra")
        + hook_source(
            "projector",
            "[ComponentSpec('rival-extra', Extra, 'm:f', api=API_VERSION), "
            "ComponentSpec('linear-projector', Clash, 'm:f', api=API_VERSION)]",
        )
    )
    site.add_plugin("aaa-rival", source, version="0.0.1")
    registry = plugins.registry()
    report = report_for(registry, "aaa-rival")
    assert report.status is PluginStatus.CONFLICT
    assert "slam-plugin-linear-projector" in report.message and "'linear-projector'" in report.message
    # a conflicting plugin registers none of its components, not even the ones that do not clash
    assert "rival-extra" not in registry.components["projector"]
    assert registry.get("projector", "linear-projector").plugin.distribution == "slam-plugin-linear-projector"
    assert_good_plugins_registered(registry)

    plugins.clear_cache()
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="aaa-rival"):
        plugins.registry()


def test_the_same_name_in_two_kinds_is_no_conflict(site):
    source = (
        PREAMBLE
        + config_source("twin", class_name="A")
        + config_source("twin", class_name="B")
        + hook_source("encoder", "[ComponentSpec('twin', A, 'm:f', api=API_VERSION)]")
        + hook_source("task", "[ComponentSpec('twin', B, 'm:f', api=API_VERSION)]")
    )
    site.add_plugin("fake-twin", source)
    registry = plugins.registry()
    assert report_for(registry, "fake-twin").status is PluginStatus.OK
    assert registry.get("encoder", "twin").spec.config is not registry.get("task", "twin").spec.config


def test_a_plugin_declaring_a_name_twice_conflicts_with_itself(site):
    source = (
        PREAMBLE
        + config_source("dup")
        + hook_source(
            "task",
            "[ComponentSpec('dup', Config, 'm:f', api=API_VERSION), "
            "ComponentSpec('dup', Config, 'm:g', api=API_VERSION)]",
        )
    )
    site.add_plugin(BROKEN_DIST, source)
    registry = plugins.registry()
    report = report_for(registry, BROKEN_DIST)
    assert report.status is PluginStatus.CONFLICT
    assert "'dup'" in report.message and "itself" in report.message
    assert "dup" not in registry.components["task"]


# --- SLAM_PLUGINS_ALLOW / SLAM_PLUGINS_DENY ----------------------------------------------------------


def _plant_denied(site) -> None:
    """A plugin that would fail to import, to show that a disabled plugin is never imported."""
    site.add_plugin(
        BROKEN_DIST, "raise ImportError('must not be imported')\n", version=BROKEN_VERSION, entry_point="broken-ep"
    )


@pytest.mark.parametrize("deny", ["broken-ep", BROKEN_DIST, "Fake_Broken", f"lora, {BROKEN_DIST} "])
def test_deny_by_entry_point_or_distribution(site, monkeypatch, deny):
    _plant_denied(site)
    only_core_and(monkeypatch, GOOD_DIST, BROKEN_DIST)  # deny wins over allow
    monkeypatch.setenv("SLAM_PLUGINS_DENY", deny)
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")  # a disabled plugin is not a problem
    registry = plugins.registry()
    report = report_for(registry, BROKEN_DIST)
    assert report.status is PluginStatus.DISABLED
    assert (report.entry_point, report.version) == ("broken-ep", BROKEN_VERSION)
    assert "SLAM_PLUGINS_DENY" in report.message
    assert registry.problems() == []
    assert "fake_broken_plugin" not in site.loaded_modules()
    assert GOOD_COMPONENT[1] in registry.components["encoder"]


def test_deny_an_installed_plugin_by_distribution(site, monkeypatch):
    monkeypatch.setenv("SLAM_PLUGINS_DENY", "slam-plugin-lora")
    registry = plugins.registry()
    assert registry.names("peft") == []
    assert report_for(registry, "slam-plugin-lora").status is PluginStatus.DISABLED
    assert "linear-projector" in registry.components["projector"]


@pytest.mark.parametrize("allow", ["lora,fake-good-encoder", "slam-plugin-lora, " + GOOD_DIST.upper()])
def test_allow_list_loads_only_the_named_plugins(site, monkeypatch, allow):
    _plant_denied(site)
    monkeypatch.setenv("SLAM_PLUGINS_ALLOW", allow)
    registry = plugins.registry()
    registered = {(kind, name) for kind, names in registry.components.items() for name in names}
    assert registered == {("peft", "lora"), GOOD_COMPONENT}
    disabled = {r.distribution for r in registry.reports if r.status is PluginStatus.DISABLED}
    assert {"slam-core", "slam-plugin-linear-projector", BROKEN_DIST} <= disabled
    assert "SLAM_PLUGINS_ALLOW" in report_for(registry, "slam-core").message
    assert registry.problems() == []


def test_deny_wins_over_allow(site, monkeypatch):
    monkeypatch.setenv("SLAM_PLUGINS_ALLOW", "lora,linear-projector")
    monkeypatch.setenv("SLAM_PLUGINS_DENY", "lora")
    registry = plugins.registry()
    assert registry.names("peft") == [] and registry.names("projector") == ["conv1d-projector", "linear-projector"]


# --- the cache ----------------------------------------------------------------------------------------


def test_registry_is_cached_until_clear_cache(site):
    first = plugins.registry()
    assert plugins.registry() is first

    site.add_plugin("fake-late", component_source("task", "late-task"))
    assert plugins.registry() is first
    assert "late-task" not in plugins.registry().components["task"]

    plugins.clear_cache()
    second = plugins.registry()
    assert second is not first
    assert "late-task" in second.components["task"]
    assert plugins.registry() is second


def test_registry_follows_the_environment_variables(site, monkeypatch):
    everything = plugins.registry()
    monkeypatch.setenv("SLAM_PLUGINS_DENY", "lora")
    without_lora = plugins.registry()
    assert without_lora is not everything and "lora" not in without_lora.components["peft"]
    monkeypatch.delenv("SLAM_PLUGINS_DENY")
    assert plugins.registry() is everything


def test_strict_failure_is_not_cached_as_success(site, monkeypatch):
    site.add_plugin(BROKEN_DIST, "raise ImportError('x')\n")
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    for _ in range(2):
        with pytest.raises(PluginError):
            plugins.registry()


# --- records.api_compatible -----------------------------------------------------------------------------


def reference_compatible(plugin: tuple[int, int], host: tuple[int, int]) -> bool:
    """The documented rule: same major, and the plugin's minor is not newer than the host's."""
    return plugin[0] == host[0] and plugin[1] <= host[1]


versions = st.tuples(st.integers(0, 30), st.integers(0, 30))


@given(plugin=versions, host=versions)
def test_api_compatible_follows_the_reference_rule(plugin, host):
    assert api_compatible(f"{plugin[0]}.{plugin[1]}", f"{host[0]}.{host[1]}") is reference_compatible(plugin, host)


@given(plugin=versions)
def test_api_compatible_defaults_to_the_host_version(plugin):
    host = tuple(int(part) for part in API_VERSION.split("."))
    assert api_compatible(f"{plugin[0]}.{plugin[1]}") is reference_compatible(plugin, host)


@given(version=versions)
def test_a_version_is_compatible_with_itself(version):
    text = f"{version[0]}.{version[1]}"
    assert api_compatible(text, text)


@pytest.mark.parametrize(
    ("plugin", "host", "expected"),
    [
        ("01.0", "1.0", True),  # versions are numbers: leading zeros do not matter, in the major as in the minor
        ("1.00", "1.0", True),
        ("1.01", "1.0", False),
        ("10.0", "1.0", False),
        ("1.10", "1.9", False),  # 10 > 9, not "10" < "9"
        ("1.9", "1.10", True),
    ],
)
def test_api_versions_compare_numerically(plugin, host, expected):
    assert api_compatible(plugin, host) is expected


@pytest.mark.parametrize("bad", ["1", "1.0.0", "v1.0", "1.x", "", " 1.0", "1.0 ", "1.0\n", "-1.0", "1,0"])
def test_malformed_api_strings_are_never_compatible(bad):
    assert not api_compatible(bad)
    assert not api_compatible(API_VERSION, bad)


# --- ComponentSpec.validate --------------------------------------------------------------------------------

NAME_RULE = r"[a-z0-9][a-z0-9._-]*"


def make_config(name: str, *, extra: str | None = "forbid", literal: object = None, default: object = None):
    literal = name if literal is None else literal
    default = literal if default is None else default
    config = ConfigDict(extra=extra) if extra else ConfigDict()
    return create_model("GeneratedConfig", __config__=config, type=(Literal[literal], default))


class GoodConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["good"] = "good"


class NoTypeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dim: int = 3


class StrTypeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: str = "good"


class TwoLiteralConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["good", "bad"] = "good"


class NoDefaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["good"]


def test_a_well_formed_record_validates():
    ComponentSpec("good", GoodConfig, "pkg.mod:Factory.build", api=API_VERSION, description="x").validate()
    with pytest.raises(TypeError, match="api"):  # a plugin must say which contract it was written for
        ComponentSpec("good", GoodConfig, "pkg:f")


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        (ComponentSpec("good", NoTypeConfig, "m:f", api=API_VERSION), "found None"),
        (ComponentSpec("good", StrTypeConfig, "m:f", api=API_VERSION), "Literal['good']"),
        (ComponentSpec("good", TwoLiteralConfig, "m:f", api=API_VERSION), "Literal['good']"),
        (ComponentSpec("good", NoDefaultConfig, "m:f", api=API_VERSION), "with that default"),
        (ComponentSpec("good", make_config("good", default="good2"), "m:f", api=API_VERSION), "Literal['good']"),
        (ComponentSpec("good", make_config("good", extra="ignore"), "m:f", api=API_VERSION), "extra='forbid'"),
        (ComponentSpec("good", make_config("good", extra=None), "m:f", api=API_VERSION), "extra='forbid'"),
        (ComponentSpec("good", GoodConfig(), "m:f", api=API_VERSION), "BaseModel subclass"),
        (ComponentSpec("good", int, "m:f", api=API_VERSION), "BaseModel subclass"),
        (ComponentSpec(None, GoodConfig, "m:f", api=API_VERSION), "None"),
        (ComponentSpec("good", GoodConfig, None, api=API_VERSION), "factory None"),
        (ComponentSpec("good", GoodConfig, "m", api=API_VERSION), "'m'"),
        (ComponentSpec("good", GoodConfig, "m:", api=API_VERSION), "module:attr"),
        (ComponentSpec("good", GoodConfig, ":f", api=API_VERSION), "module:attr"),
        (ComponentSpec("good", GoodConfig, "m:f:g", api=API_VERSION), "module:attr"),
        (ComponentSpec("good", GoodConfig, "my-pkg:f", api=API_VERSION), "module:attr"),
        (ComponentSpec("good", GoodConfig, "m:f ", api=API_VERSION), "module:attr"),
        (ComponentSpec("good", GoodConfig, "m:f\n", api=API_VERSION), "module:attr"),
        (ComponentSpec("good", GoodConfig, "m:f", api=1.0), "MAJOR.MINOR"),
        (ComponentSpec("good", GoodConfig, "m:f", api="1"), "MAJOR.MINOR"),
        (ComponentSpec("good", GoodConfig, "m:f", api="1.0\n"), "MAJOR.MINOR"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_malformed_records_are_rejected(record, fragment):
    with pytest.raises(RecordError) as caught:
        record.validate()
    assert fragment in str(caught.value)


@given(name=st.text(max_size=20).filter(lambda s: not re.fullmatch(NAME_RULE, s)))
def test_random_invalid_names_are_rejected(name):
    with pytest.raises(RecordError, match="must be lower-case"):
        ComponentSpec(name, GoodConfig, "m:f", api=API_VERSION).validate()


@given(name=st.from_regex(NAME_RULE, fullmatch=True).filter(lambda s: len(s) <= 40))
def test_random_valid_names_are_accepted_when_the_config_matches(name):
    ComponentSpec(name, make_config(name), "pkg.mod:build", api=API_VERSION).validate()
    with pytest.raises(RecordError, match="Literal"):
        ComponentSpec(name, make_config(name + "x"), "pkg.mod:build", api=API_VERSION).validate()


identifier = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)


@given(module=st.lists(identifier, min_size=1, max_size=3), attr=st.lists(identifier, min_size=1, max_size=2))
def test_random_module_attr_factories_are_accepted(module, attr):
    ComponentSpec("good", GoodConfig, f"{'.'.join(module)}:{'.'.join(attr)}", api=API_VERSION).validate()


@given(factory=st.text(max_size=30).filter(lambda s: not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", s)))
def test_random_non_factories_are_rejected(factory):
    with pytest.raises(RecordError, match="module:attr"):
        ComponentSpec("good", GoodConfig, factory, api=API_VERSION).validate()


@given(major=st.integers(0, 10**6), minor=st.integers(0, 10**6))
def test_any_major_minor_api_is_well_formed(major, minor):
    ComponentSpec("good", GoodConfig, "m:f", api=f"{major}.{minor}").validate()


def test_load_factory_resolves_dotted_attributes():
    spec = ComponentSpec("good", GoodConfig, "slam_core.records:ComponentSpec.validate", api=API_VERSION)
    assert spec.load_factory() is ComponentSpec.validate
    assert (
        ComponentSpec("x", GoodConfig, "slam_core.records:api_compatible", api=API_VERSION).load_factory()
        is api_compatible
    )


def test_there_is_one_hook_per_component_kind():
    assert set(plugins.hookspecs.HOOK_FOR_KIND) == {kind.value for kind in records.ComponentKind}
    assert len(set(plugins.hookspecs.HOOK_FOR_KIND.values())) == len(records.ComponentKind)


# --- an unknown type while some plugin failed to load ------------------------------------------------


def test_an_unknown_type_names_the_plugins_that_failed_to_load(site):
    site.add_plugin("slam-plugin-sew", "import no_such_dependency_xyz\n", version="0.4.0", entry_point="sew")
    with pytest.raises(plugins.UnknownComponentError) as caught:
        plugins.registry().get("encoder", "sew")
    message = str(caught.value)
    assert "unknown encoder type 'sew'." in message
    assert (
        "This installed plugin failed to load and may provide it: slam-plugin-sew 0.4.0 (entry point 'sew'): "
        "import-failed: importing 'slam_plugin_sew_plugin' failed: ModuleNotFoundError: "
        "No module named 'no_such_dependency_xyz'."
    ) in message


def test_a_spec_naming_the_type_of_a_plugin_that_failed_says_so(site):
    from slam_core.errors import SpecError
    from slam_core.spec import validate_spec

    site.add_plugin("slam-plugin-sew", "raise RuntimeError('libsndfile missing')\n", entry_point="sew")
    document = {
        "encoder": {"type": "sew"},
        "projector": {"type": "linear-projector"},
        "llm": {"type": "toy-llm"},
        "task": {"type": "asr"},
    }
    with pytest.raises(SpecError) as caught:
        validate_spec(document)
    assert "encoder.type: unknown encoder type 'sew'" in str(caught.value)
    assert "slam-plugin-sew 1.0.0 (entry point 'sew'): import-failed" in str(caught.value)
    assert "RuntimeError: libsndfile missing" in str(caught.value)


def test_a_known_type_is_not_blamed_on_a_failed_plugin(site):
    site.add_plugin(BROKEN_DIST, "import no_such_dependency_xyz\n")
    site.add_plugin("fake-typo", component_source("projector", "typo-proj", api="99.0"))
    with pytest.raises(plugins.UnknownComponentError) as caught:
        plugins.registry().get("encoder", "fake-goood")
    message = str(caught.value)
    assert "Did you mean 'fake-good'?" in message
    # the plugin that failed before its records were read is suspected; the one whose records were read is not
    assert f"may provide it: {BROKEN_DIST} 1.0.0" in message
    assert "fake-typo" not in message


# --- metrics ------------------------------------------------------------------------------------------

METRIC_PREAMBLE = "from slam_core.hookspecs import hookimpl\nfrom slam_core.records import MetricSpec\n"


def metric_source(records: str) -> str:
    return METRIC_PREAMBLE + f"\n\n@hookimpl\ndef slam_metrics():\n    return {records}\n"


def test_slam_core_declares_every_builtin_metric(clean_discovery):
    from slam_core.runtime.metrics.registry import METRICS

    registry = plugins.registry()
    assert list(registry.metrics) == list(METRICS)
    assert {entry.plugin.distribution for entry in registry.metrics.values()} == {"slam-core"}
    assert registry.metrics["wer"].spec.load() is METRICS["wer"]


def test_a_plugin_metric_is_declared_and_scored(site):
    from slam_core.runtime.metrics import score

    site.write_module(
        "fake_metric_impl",
        "class Length:\n"
        "    def unavailable(self, options):\n        return None\n"
        "    def compute(self, inputs):\n"
        "        return sum(map(len, inputs.hypotheses)) / len(inputs.hypotheses)\n"
        "LENGTH = Length()\n",
    )
    site.add_plugin("fake-metric", metric_source("[MetricSpec('mean_length', 'fake_metric_impl:LENGTH', api='1.0')]"))
    registry = plugins.registry()
    assert registry.metrics["mean_length"].plugin.distribution == "fake-metric"
    assert score(["mean_length", "wer"], ["ab", "abcd"], ["ab", "abcd"]) == {"mean_length": 3.0, "wer": 0.0}


def test_an_unknown_metric_lists_the_declared_ones(clean_discovery):
    from slam_core.runtime.metrics import UnknownMetricError, get_metric

    with pytest.raises(UnknownMetricError, match=r"unknown metric 'wre'; known metrics: wer, cer, b_wer"):
        get_metric("wre")


def test_a_metric_name_clash_is_a_conflict(site):
    site.add_plugin("fake-wer", metric_source("[MetricSpec('wer', 'm:f', api='1.0')]"))
    report = report_for(plugins.registry(), "fake-wer")
    assert report.status is PluginStatus.CONFLICT
    assert "metric 'wer' is already provided by slam-core" in report.message


@pytest.mark.parametrize(
    ("records", "fragment"),
    [
        ("[MetricSpec('Mean-Length', 'm:f', api='1.0')]", "metric name 'Mean-Length' must be lower-case"),
        ("[MetricSpec('ok', 'no colon', api='1.0')]", "implementation 'no colon' must be 'module:attr'"),
        ("[MetricSpec('ok', 'm:f', api='one')]", "api 'one' must look like 'MAJOR.MINOR'"),
        ("['wer']", "hook slam_metrics returned a str, expected MetricSpec"),
    ],
)
def test_a_malformed_metric_record_makes_the_plugin_invalid(site, records, fragment):
    site.add_plugin(BROKEN_DIST, metric_source(records))
    report = report_for(plugins.registry(), BROKEN_DIST)
    assert report.status is PluginStatus.INVALID
    assert fragment in report.message
