"""The command-line frame every ``prepare_data.py`` shares: options, error reporting, a summary."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .layout import PrepError


def base_parser(script: str, description: str, default_output: str | None = None) -> argparse.ArgumentParser:
    """A parser named ``<recipe folder>/prepare_data.py`` after ``script`` (the caller's ``__file__``;
    a copy made by ``slam recipes copy vsr my-vsr`` is ``my-vsr/prepare_data.py``).

    It shows ``description`` as written, and has ``--output-dir`` when ``default_output`` is given
    (relative to the recipe's folder: see :func:`add_output_dir`).
    """
    prog = f"{Path(script).parent.name}/{Path(script).name}"
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if default_output is not None:
        add_output_dir(parser, script, default_output)
    return parser


def add_output_dir(parser: argparse.ArgumentParser, script: str, default: str) -> None:
    """``--output-dir``: where the manifests go; by default ``default`` inside the folder of ``script``
    (the recipe's), where the relative manifest paths of the recipe's spec point."""
    folder = Path(script).resolve().parent
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=folder / default,
        help=f"folder for the jsonl manifests (default: {default} in {folder}, where the spec's manifests are)",
    )


def run(
    parser: argparse.ArgumentParser, prepare: Callable[[argparse.Namespace], dict[str, int]], argv: Sequence[str] | None
) -> int:
    """Parse ``argv``, run ``prepare`` (which returns ``{manifest path: lines}``) and print what was written.

    A :class:`PrepError` is printed as ``prog: error: ...`` on stderr with exit status 2.
    """
    args = parser.parse_args(argv)
    try:
        written = prepare(args)
    except PrepError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    for path, lines in written.items():
        print(f"{path}: {lines} lines")
    return 0


def warn(message: str) -> None:
    """Print ``warning: message`` on stderr (something skipped that the user should know about)."""
    print(f"warning: {message}", file=sys.stderr)
