"""The docs cannot drift: docs/spec.md holds the generated spec tables, docs/cli.md every command.

Imports only ``slam_core.spec`` (through scripts/spec_tables.py) and ``slam_core.runtime.cli`` (argparse).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _spec_tables():
    spec = importlib.util.spec_from_file_location("spec_tables", ROOT / "scripts" / "spec_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse has no public accessor for subcommands
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path: ("plugins",), ("spec",), ("spec", "validate"), ..."""
    found = []
    for name, child in _subparsers(parser).items():
        found.append((*prefix, name))
        found += _commands(child, (*prefix, name))
    return found


def test_spec_tables_are_current():
    tables = _spec_tables()
    text = (DOCS / "spec.md").read_text(encoding="utf-8")
    block = tables.current_block(text)
    assert block is not None, f"docs/spec.md lacks the {tables.BEGIN} ... {tables.END} block"
    assert block == tables.render(), (
        "docs/spec.md's spec tables are stale; run: python scripts/spec_tables.py --write docs/spec.md"
    )


def test_spec_tables_cover_every_field():
    tables = _spec_tables()
    rendered = tables.render()
    for _, model in tables.sections():
        for name in model.model_fields:
            assert f"| `{name}` |" in rendered, f"{model.__name__}.{name} missing from the generated tables"


def test_every_command_is_documented_in_cli_md():
    from slam_core.runtime.cli import build_parser

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    commands = _commands(build_parser())
    assert ("train",) in commands and ("spec", "validate") in commands
    missing = []
    for path in commands:
        words = r"\s+".join(re.escape(word) for word in ("slam", *path))
        heading = re.compile(rf"^#+\s+`?{words}`?\s*$", re.MULTILINE)
        code_line = re.compile(rf"^(\$ )?{words}(\s|$)", re.MULTILINE)
        if not (heading.search(text) or code_line.search(text)):
            missing.append(" ".join(("slam", *path)))
    assert not missing, f"docs/cli.md documents no heading or code line for: {', '.join(missing)}"
