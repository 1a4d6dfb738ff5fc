"""``slam`` subcommands from plugins: the ``slam_commands`` hook, its records, discovery and the CLI."""

from __future__ import annotations

import json
import sys

import pytest
from fakedist import PREAMBLE

from slam_core import plugins
from slam_core.plugins import PluginStatus
from slam_core.records import CommandSpec, RecordError
from slam_core.runtime.cli import BUILTIN_COMMANDS, build_parser, main

COMMAND_PREAMBLE = "from slam_core.hookspecs import hookimpl\nfrom slam_core.records import API_VERSION, CommandSpec\n"

HELLO_FACTORY = """
from slam_core.errors import SlamError


def hello_command(parser):
    parser.add_argument("--name", default="world")
    parser.add_argument("--fail", action="store_true")

    def run(args):
        if args.fail:
            raise SlamError(f"cannot greet {args.name}: the greeting file is missing")
        print(f"hello, {args.name}")
        return 3 if args.name == "three" else 0

    return run


def not_a_runner(parser):
    return "run"
"""


def command_plugin(*records: tuple[str, str, str], api: str = "API_VERSION") -> str:
    """A plugin module declaring ``(name, help, factory)`` commands."""
    specs = ", ".join(f"CommandSpec({n!r}, {h!r}, {f!r}, api={api})" for n, h, f in records)
    return COMMAND_PREAMBLE + f"\n\n@hookimpl\ndef slam_commands():\n    return [{specs}]\n"


@pytest.fixture
def site(fake_site):
    fake_site.write_module("hello_cli", HELLO_FACTORY)
    fake_site.add_plugin(
        "slam-plugin-hello",
        command_plugin(("hello", "print a greeting", "hello_cli:hello_command")),
        version="2.1.0",
    )
    return fake_site


def plugin_rows(capsys) -> list[dict]:
    assert main(["plugins", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_plugin_command_runs_with_its_own_arguments_and_exit_status(site, capsys):
    assert main(["hello", "--name", "ada"]) == 0
    assert capsys.readouterr().out == "hello, ada\n"
    assert main(["hello", "--name", "three"]) == 3


def test_a_plugin_command_is_listed_by_slam_plugins_and_slam_help(site, capsys):
    row = {"name": "hello", "kind": "command", "distribution": "slam-plugin-hello", "version": "2.1.0", "status": "ok"}
    assert row in plugin_rows(capsys)
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "print a greeting" in capsys.readouterr().out


def test_a_slam_error_from_a_plugin_command_is_one_line_and_exit_2(site, capsys):
    assert main(["hello", "--name", "bob", "--fail"]) == 2
    assert capsys.readouterr().err == "slam: error: cannot greet bob: the greeting file is missing\n"


def test_a_command_factory_is_imported_only_when_its_command_runs(site, capsys):
    site.add_plugin("slam-plugin-lazy", command_plugin(("lazy", "imports a missing module", "lazy_cli:factory")))
    site.write_module("lazy_cli", "import slam_missing_dependency_xyz\n")
    assert main(["plugins"]) == 0
    assert main(["hello"]) == 0
    assert "lazy_cli" not in sys.modules
    capsys.readouterr()
    assert main(["lazy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("slam: error: the command 'lazy' of slam-plugin-lazy 1.0.0")
    assert "'lazy_cli:factory'" in err and "slam_missing_dependency_xyz" in err


def test_a_factory_that_returns_no_runner_is_a_plugin_error(site, capsys):
    site.add_plugin("slam-plugin-odd", command_plugin(("odd", "returns a string", "hello_cli:not_a_runner")))
    assert main(["odd"]) == 2
    assert "returned str, expected run(args) -> int" in capsys.readouterr().err


def test_a_command_named_like_a_builtin_is_reported_and_never_replaces_it(site, capsys):
    site.add_plugin("slam-plugin-shadow", command_plugin(("train", "not slam's train", "hello_cli:hello_command")))
    rows = plugin_rows(capsys)
    assert {"name": "train", "kind": "command", "distribution": "slam-plugin-shadow", "status": "conflict"}.items() <= (
        next(r for r in rows if r["name"] == "train" and r["kind"] == "command").items()
    )
    assert main(["plugins"]) == 0
    assert "command 'train' is a command of slam itself" in capsys.readouterr().err
    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    assert any(action.dest == "fresh" for action in train._actions)  # slam's own train


def test_every_builtin_command_is_in_the_parser():
    choices = next(a for a in build_parser()._actions if a.dest == "command").choices
    assert set(BUILTIN_COMMANDS) <= set(choices)


def test_two_plugins_declaring_one_command_conflict_and_the_first_keeps_it(site):
    site.add_plugin("slam-plugin-zz-hello", command_plugin(("hello", "another greeting", "hello_cli:hello_command")))
    registry = plugins.registry()
    assert registry.commands["hello"].plugin.distribution == "slam-plugin-hello"
    (report,) = [r for r in registry.reports if r.distribution == "slam-plugin-zz-hello"]
    assert report.status is PluginStatus.CONFLICT
    assert "command 'hello' is already provided by slam-plugin-hello 2.1.0" in report.message


def test_a_command_targeting_another_api_disables_the_plugin(site):
    site.add_plugin("slam-plugin-future", command_plugin(("future", "from the future", "m:f"), api="'2.0'"))
    registry = plugins.registry()
    (report,) = [r for r in registry.reports if r.distribution == "slam-plugin-future"]
    assert report.status is PluginStatus.INCOMPATIBLE and "targets contract API 2.0" in report.message
    assert "future" not in registry.commands


@pytest.mark.parametrize(
    ("returned", "fragment"),
    [
        ("[CommandSpec('Bad Name', 'help', 'm:f', api=API_VERSION)]", "command name 'Bad Name'"),
        ("[CommandSpec('multi', 'two\\nlines', 'm:f', api=API_VERSION)]", "help must be one non-empty line"),
        ("[CommandSpec('nofactory', 'help', 'm.f', api=API_VERSION)]", "'module:attr'"),
        ("[CommandSpec('api', 'help', 'm:f', api='1')]", "'MAJOR.MINOR'"),
        ("['demo']", "returned a str, expected CommandSpec"),
        ("CommandSpec('one', 'help', 'm:f', api=API_VERSION)", "expected a list of CommandSpec"),
    ],
)
def test_malformed_command_records_make_the_plugin_invalid(site, returned, fragment):
    site.add_plugin(
        "slam-plugin-bad", COMMAND_PREAMBLE + f"\n\n@hookimpl\ndef slam_commands():\n    return {returned}\n"
    )
    registry = plugins.registry()
    (report,) = [r for r in registry.reports if r.distribution == "slam-plugin-bad"]
    assert report.status is PluginStatus.INVALID
    assert "slam_commands" in report.message and fragment in report.message
    assert registry.commands["hello"].plugin.status is PluginStatus.OK  # the others keep working


def test_a_plugin_with_components_and_commands_registers_both(fake_site):
    source = PREAMBLE + (
        "from slam_core.records import CommandSpec\n\n"
        "class Config(BaseModel):\n    model_config = ConfigDict(extra='forbid')\n"
        "    type: Literal['both-task'] = 'both-task'\n\n"
        "@hookimpl\ndef slam_task_heads():\n    return [ComponentSpec('both-task', Config, 'm:f', api=API_VERSION)]\n\n"
        "@hookimpl\ndef slam_commands():\n    return [CommandSpec('both', 'help', 'm:f', api=API_VERSION)]\n"
    )
    fake_site.add_plugin("slam-plugin-both", source)
    registry = plugins.registry()
    assert registry.components["task"]["both-task"].plugin is registry.commands["both"].plugin
    assert registry.commands["both"].plugin.commands == ["both"]


def test_command_records_validate():
    CommandSpec("my-tool2", "does a thing", "pkg.cli:factory", api="1.0").validate()
    for name in ("", "-x", "Tool", "my_tool", "2tool"):
        with pytest.raises(RecordError, match="command name"):
            CommandSpec(name, "help", "pkg:f", api="1.0").validate()
    with pytest.raises(RecordError, match="help must be one non-empty line"):
        CommandSpec("tool", "  ", "pkg:f", api="1.0").validate()
