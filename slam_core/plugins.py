"""Plugin discovery: the entry-point group ``slam.plugins``, isolated and cached.

Each entry point names a module implementing hooks from :mod:`slam_core.hookspecs`: components
of the five kinds and ``slam`` subcommands. Every plugin is loaded and called on its own; one
that fails to import, returns malformed records, targets an incompatible API version, or
clashes with another on a component or command name is reported (with its distribution name
and version) and skipped, and the host keeps working. Environment variables:

- ``SLAM_STRICT_PLUGINS=1``: any such problem raises :class:`PluginError` instead.
- ``SLAM_PLUGINS_ALLOW=a,b``: load only these (entry-point or distribution names).
- ``SLAM_PLUGINS_DENY=a,b``: never load these.
- ``SLAM_PLUGINS_PREFER=a,b``: on a name clash these distributions (in this order) keep the name.
"""

from __future__ import annotations

import difflib
import enum
import functools
import logging
import os
import re
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from slam_core import hookspecs
from slam_core.errors import PluginError, UnknownComponentError, UnknownMetricError
from slam_core.records import API_VERSION, CommandSpec, ComponentSpec, MetricSpec, RecordError, api_compatible

ENTRY_POINT_GROUP = "slam.plugins"
#: The pseudo-kind under which a plugin's report lists the metrics it declares.
METRIC = "metric"
log = logging.getLogger("slam.plugins")

#: How a plugin package is conventionally named after the component type it provides (a hint only).
PACKAGE_CONVENTION = "slam-plugin-{name}"

#: The host package: entry points implemented inside it load first (see :func:`_precedence`).
HOST_PACKAGE = __name__.partition(".")[0]


class PluginStatus(str, enum.Enum):
    OK = "ok"
    DISABLED = "disabled"  # excluded by SLAM_PLUGINS_ALLOW / SLAM_PLUGINS_DENY
    IMPORT_FAILED = "import-failed"
    INVALID = "invalid"  # malformed records, unknown hooks, or a hook that raised
    INCOMPATIBLE = "incompatible"  # targets another contract API version
    CONFLICT = "conflict"  # declares a component name another plugin already provides


@dataclass
class PluginReport:
    """What discovery found out about one entry point."""

    entry_point: str
    distribution: str
    version: str
    status: PluginStatus = PluginStatus.OK
    message: str = ""
    components: list[tuple[str, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version} (entry point {self.entry_point!r})"


@dataclass(frozen=True)
class RegisteredComponent:
    """A component record together with the plugin that provides it."""

    kind: str
    spec: ComponentSpec
    plugin: PluginReport

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class RegisteredCommand:
    """A ``slam`` subcommand record together with the plugin that provides it."""

    spec: CommandSpec
    plugin: PluginReport

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class RegisteredMetric:
    """A metric record together with the plugin that declares it."""

    spec: MetricSpec
    plugin: PluginReport

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(eq=False)
class Registry:
    """Everything discovery found: usable components by kind and name, metrics by name, ``slam``
    subcommands by name, and one report per plugin."""

    components: dict[str, dict[str, RegisteredComponent]] = field(
        default_factory=lambda: {kind: {} for kind in hookspecs.HOOK_FOR_KIND}
    )
    commands: dict[str, RegisteredCommand] = field(default_factory=dict)
    metrics: dict[str, RegisteredMetric] = field(default_factory=dict)
    reports: list[PluginReport] = field(default_factory=list)

    def metric(self, name: str) -> RegisteredMetric:
        """The metric ``name``; raises :class:`UnknownMetricError` listing the declared ones."""
        try:
            return self.metrics[name]
        except KeyError:
            known = ", ".join(self.metrics) or "none (no plugin declares a metric)"
            parts = [f"unknown metric {name!r}; known metrics: {known}."]
            parts.extend(_skipped_plugins(self, METRIC, name))
            raise UnknownMetricError(" ".join(parts)) from None

    def names(self, kind: str) -> list[str]:
        return sorted(self.components[kind])

    def get(self, kind: str, name: str) -> RegisteredComponent:
        """The component ``name`` of ``kind``; raises :class:`UnknownComponentError` with choices."""
        if kind not in self.components:
            raise UnknownComponentError(f"unknown component kind {kind!r}; kinds: {', '.join(self.components)}")
        try:
            return self.components[kind][name]
        except KeyError:
            raise UnknownComponentError(unknown_component_message(self, kind, name)) from None

    def problems(self) -> list[PluginReport]:
        return [r for r in self.reports if r.status not in (PluginStatus.OK, PluginStatus.DISABLED)]


def unknown_component_message(registry: Registry, kind: str, name: object) -> str:
    """A one-paragraph explanation of an unknown component type, with the installed choices."""
    installed = registry.names(kind)
    parts = [f"unknown {kind} type {name!r}."]
    parts.append(f"Installed {kind} types: {', '.join(installed)}." if installed else f"No {kind} plugin is installed.")
    # one wrong letter of a two-letter name (mc -> bc) is a 0.5 match: short names get a lower bar
    close = difflib.get_close_matches(str(name), installed, n=1, cutoff=0.5 if len(str(name)) <= 3 else 0.6)
    if close:
        parts.append(f"Did you mean {close[0]!r}?")
    elsewhere = [other for other, names in registry.components.items() if other != kind and str(name) in names]
    if elsewhere:
        parts.append(f"{name!r} is a {elsewhere[0]} type, not a {kind} type.")
    elif not close and re.fullmatch(r"[a-z0-9][a-z0-9-]*", str(name)):
        package = PACKAGE_CONVENTION.format(name=name)
        parts.append(f"Plugins are conventionally published as {PACKAGE_CONVENTION}: pip install {package}")
    parts.extend(_skipped_plugins(registry, kind, str(name)))
    return " ".join(parts)


def _skipped_plugins(registry: Registry, kind: str, name: str) -> list[str]:
    """Sentences naming the skipped plugins that declare ``kind`` ``name``, or that might: a plugin that
    failed before its records were read (its import, a hook) could be the one providing it."""
    problems = registry.problems()
    declaring = [r for r in problems if (kind, name) in r.components]
    sentences = [f"(The plugin {r.label} declares it but was skipped: {r.message})" for r in declaring]
    if not declaring:
        unread = [r for r in problems if not r.components]
        if unread:
            listed = "; ".join(f"{r.label}: {r.status.value}: {r.message}" for r in unread)
            sentences.append(
                f"{'This installed plugin' if len(unread) == 1 else 'These installed plugins'} failed to load "
                f"and may provide it: {listed}. Fix or uninstall {'it' if len(unread) == 1 else 'them'} "
                "(`slam plugins` lists every plugin's status)."
            )
    return sentences


def _env_list(name: str) -> frozenset[str]:
    return frozenset(_normalise(v) for v in os.environ.get(name, "").split(",") if v.strip())


def _normalise(name: str) -> str:
    """A distribution or entry-point name compared the PEP 503 way."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def registry() -> Registry:
    """The cached registry for the current environment variables (see module docstring)."""
    return _discover(
        strict=_env_flag("SLAM_STRICT_PLUGINS"),
        allow=_env_list("SLAM_PLUGINS_ALLOW"),
        deny=_env_list("SLAM_PLUGINS_DENY"),
        prefer=tuple(_env_order("SLAM_PLUGINS_PREFER")),
    )


def clear_cache() -> None:
    """Forget the cached registry, e.g. after installing a plugin in-process."""
    _discover.cache_clear()


@functools.lru_cache(maxsize=8)
def _discover(strict: bool, allow: frozenset[str], deny: frozenset[str], prefer: tuple[str, ...]) -> Registry:
    result = Registry()
    entry_points = sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: _precedence(ep, prefer))
    for entry_point in entry_points:
        report = PluginReport(entry_point.name, _dist_name(entry_point), _dist_version(entry_point))
        result.reports.append(report)
        keys = {_normalise(entry_point.name), _normalise(report.distribution)}
        if keys & deny or (allow and not keys & allow):
            report.status = PluginStatus.DISABLED
            report.message = "excluded by SLAM_PLUGINS_ALLOW / SLAM_PLUGINS_DENY"
            continue
        records = _load_plugin(entry_point, report)
        if records is not None:
            _register(result, report, records)
        if report.status not in (PluginStatus.OK, PluginStatus.DISABLED):
            log.warning("skipped SLAM plugin %s: %s", report.label, report.message)
    problems = result.problems()
    if strict and problems:
        lines = "\n".join(f"- {r.label}: {r.status.value}: {r.message}" for r in problems)
        raise PluginError(f"SLAM_STRICT_PLUGINS is set and these plugins are broken:\n{lines}")
    return result


def _precedence(entry_point: metadata.EntryPoint, preferred: tuple[str, ...]) -> tuple[int, str, str]:
    """Discovery order, which decides name clashes (the later plugin of a clash is skipped):

    1. the distributions named in ``SLAM_PLUGINS_PREFER``, in that order;
    2. entry points implemented inside the host package (its reference components and task heads),
       so that installing a plugin never displaces them;
    3. every other plugin, by distribution name, then entry-point name.
    """
    distribution = _normalise(_dist_name(entry_point))
    if distribution in preferred or _normalise(entry_point.name) in preferred:
        rank = preferred.index(distribution if distribution in preferred else _normalise(entry_point.name))
    elif entry_point.value.partition(".")[0].partition(":")[0] == HOST_PACKAGE:
        rank = len(preferred)
    else:
        rank = len(preferred) + 1
    return rank, distribution, entry_point.name


def _env_order(name: str) -> list[str]:
    return [_normalise(v) for v in os.environ.get(name, "").split(",") if v.strip()]


def _dist_name(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    name = dist.metadata.get("Name") if dist is not None else None
    return str(name) if name else "<unknown distribution>"


def _dist_version(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    version = dist.metadata.get("Version") if dist is not None else None
    return str(version) if version else "?"


#: A declared record: ``(kind, ComponentSpec)``, or ``(METRIC, MetricSpec)`` for a metric.
Record = tuple[str, "ComponentSpec | MetricSpec"]
#: What one plugin declares: its component and metric records, and its command records.
Declared = tuple[list[Record], list[CommandSpec]]


def _load_plugin(entry_point: metadata.EntryPoint, report: PluginReport) -> Declared | None:
    """Import one plugin and call its hooks; ``None`` (with ``report`` filled in) when broken."""
    try:
        plugin = entry_point.load()
    except (Exception, SystemExit) as exc:  # a plugin's import error must not take the host down
        report.status = PluginStatus.IMPORT_FAILED
        report.message = f"importing {entry_point.value!r} failed: {type(exc).__name__}: {exc}"
        return None
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    try:
        manager.register(plugin, name=entry_point.name)
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        report.status = PluginStatus.INVALID
        report.message = f"hook validation failed: {exc}"
        return None
    records: list[Record] = []
    hooks = [(kind, hook, ComponentSpec) for kind, hook in hookspecs.HOOK_FOR_KIND.items()]
    hooks.append((METRIC, hookspecs.METRIC_HOOK, MetricSpec))
    for kind, hook_name, record_type in hooks:
        returned = _call_hook(manager, hook_name, record_type, report)
        if returned is None:
            return None
        records.extend((kind, spec) for spec in returned)
    commands = _call_hook(manager, hookspecs.COMMANDS_HOOK, CommandSpec, report)
    if commands is None:
        return None
    report.components = [(kind, spec.name) for kind, spec in records]
    report.commands = [command.name for command in commands]
    declared = [*(spec for _, spec in records), *commands]
    incompatible = sorted({spec.api for spec in declared if not api_compatible(spec.api)})
    if incompatible:
        report.status = PluginStatus.INCOMPATIBLE
        report.message = (
            f"targets contract API {', '.join(incompatible)} but this slam-core implements {API_VERSION}; "
            f"install a release of {report.distribution} built for slam-core API {API_VERSION}"
        )
        return None
    return records, commands


def _call_hook(manager: pluggy.PluginManager, hook_name: str, record_type: type, report: PluginReport) -> list | None:
    """The records one hook returned (from each of its implementations), checked; ``None`` when broken."""
    try:
        results = getattr(manager.hook, hook_name)()
    except Exception as exc:
        report.status = PluginStatus.INVALID
        report.message = f"hook {hook_name} raised {type(exc).__name__}: {exc}"
        return None
    records = []
    for returned in results:
        problem = _check_returned(hook_name, returned, record_type)
        if problem:
            report.status = PluginStatus.INVALID
            report.message = problem
            return None
        records.extend(returned)
    return records


def _check_returned(hook_name: str, returned: object, record_type: type) -> str | None:
    expected = record_type.__name__
    if not isinstance(returned, (list, tuple)):
        return f"hook {hook_name} returned {type(returned).__name__}, expected a list of {expected}"
    for item in returned:
        if not isinstance(item, record_type):
            return f"hook {hook_name} returned a {type(item).__name__}, expected {expected}"
        try:
            item.validate()
        except RecordError as exc:
            return f"hook {hook_name}: {exc}"
    return None


def _register(result: Registry, report: PluginReport, declared: Declared) -> None:
    """Add one plugin's components, metrics and commands, or none of them when a name is taken."""
    records, commands = declared
    clash = _first_clash(result, records, commands)
    if clash is not None:
        what, other = clash
        report.status = PluginStatus.CONFLICT
        report.message = (
            f"{what} is already provided by {other}; uninstall one of them or exclude one with SLAM_PLUGINS_DENY"
        )
        return
    for kind, spec in records:
        if kind == METRIC:
            result.metrics[spec.name] = RegisteredMetric(spec, report)
        else:
            result.components[kind][spec.name] = RegisteredComponent(kind, spec, report)
    for command in commands:
        result.commands[command.name] = RegisteredCommand(command, report)


def _owner(result: Registry, kind: str, name: str) -> RegisteredComponent | RegisteredMetric | None:
    return result.metrics.get(name) if kind == METRIC else result.components[kind].get(name)


def _first_clash(result: Registry, records: list[Record], commands: list[CommandSpec]) -> tuple[str, str] | None:
    """``(what, provider)`` of the first name already registered (or declared twice by this plugin)."""
    seen: set[tuple[str, str]] = set()
    named = [(kind, spec.name, _owner(result, kind, spec.name)) for kind, spec in records]
    named += [("command", command.name, result.commands.get(command.name)) for command in commands]
    for kind, name, owner in named:
        if owner is not None or (kind, name) in seen:
            return f"{kind} {name!r}", owner.plugin.label if owner is not None else "itself"
        seen.add((kind, name))
    return None
