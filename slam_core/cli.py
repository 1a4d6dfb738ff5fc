"""The ``slam`` command.

``slam plugins`` and ``slam spec ...`` import no torch; ``slam inspect`` imports it to
build the model on the meta device (no weights are allocated or loaded).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

from slam_core import plugins


def _table(rows: list[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)


PLUGIN_COLUMNS = ("name", "kind", "distribution", "version", "status")


def cmd_plugins(args: argparse.Namespace) -> int:
    registry = plugins.registry()
    entries = [
        {
            "name": name,
            "kind": kind,
            "distribution": entry.plugin.distribution,
            "version": entry.plugin.version,
            "status": entry.plugin.status.value,
        }
        for kind, components in registry.components.items()
        for name, entry in sorted(components.items())
    ]
    skipped = [
        {
            "name": report.entry_point,
            "kind": "-",
            "distribution": report.distribution,
            "version": report.version,
            "status": report.status.value,
            "message": report.message,
        }
        for report in registry.reports
        if report.status is not plugins.PluginStatus.OK
    ]
    if args.json:
        print(json.dumps(entries + skipped, indent=2))
        return 0
    rows = [[entry[column] for column in PLUGIN_COLUMNS] for entry in entries + skipped]
    print(_table(rows, [column.upper() for column in PLUGIN_COLUMNS]))
    for report in registry.problems():
        print(f"\n{report.label}: {report.status.value}: {report.message}", file=sys.stderr)
    return 0


def cmd_spec_validate(args: argparse.Namespace) -> int:
    from slam_core.spec import COMPONENT_SECTIONS, load_spec

    spec = load_spec(args.file)
    chosen = ", ".join(
        f"{section}={getattr(spec, section).type}"
        for section in COMPONENT_SECTIONS
        if getattr(spec, section) is not None
    )
    print(f"{args.file}: valid ({chosen})")
    return 0


def cmd_spec_schema(args: argparse.Namespace) -> int:
    from slam_core.spec import spec_model

    print(json.dumps(spec_model().model_json_schema(), indent=2))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from slam_core.inspect import inspect_spec, render_report
    from slam_core.spec import load_spec

    spec = load_spec(args.file)
    print(render_report(inspect_spec(spec, dtype=args.dtype)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slam", description="SLAM: speech, language, audio and music LLMs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser("plugins", help="list installed plugins and their components")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(run=cmd_plugins)

    spec = commands.add_parser("spec", help="validate a spec or print its JSON schema")
    spec_commands = spec.add_subparsers(dest="spec_command", required=True, metavar="SUBCOMMAND")
    validate = spec_commands.add_parser("validate", help="validate a YAML/JSON pipeline spec")
    validate.add_argument("file")
    validate.set_defaults(run=cmd_spec_validate)
    schema = spec_commands.add_parser("schema", help="print the JSON schema for the installed plugins")
    schema.set_defaults(run=cmd_spec_schema)

    inspect = commands.add_parser("inspect", help="parameter counts and training memory, without loading weights")
    inspect.add_argument("file")
    inspect.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], help="override the spec's train.dtype")
    inspect.set_defaults(run=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``slam`` command; user errors print one message and exit 2."""
    from slam_core.spec import SpecError

    args = build_parser().parse_args(argv)
    # the command prints each plugin problem itself; the library's log warning would repeat it
    logging.getLogger(plugins.log.name).setLevel(logging.ERROR)
    try:
        return args.run(args)
    except (SpecError, plugins.PluginError, plugins.UnknownComponentError) as exc:
        print(f"slam: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `slam spec schema | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
