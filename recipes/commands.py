"""The ``slam demo`` and ``slam recipes`` subcommands (factories for the ``slam_commands`` hook).

Each factory adds its command's arguments to the parser ``slam`` gives it and returns the
function that runs it. Importing this module imports no torch; ``slam demo`` does when it runs.
"""

from __future__ import annotations

import argparse
import json


def demo_command(parser: argparse.ArgumentParser):
    """``slam demo [WAV] [--output-dir DIR] [--quick] [--set PATH=VALUE ...]``."""
    parser.add_argument("wav", nargs="?", help="a wav file to transcribe with the trained model")
    parser.add_argument("--output-dir", default="runs/demo", help="run folder of the demo (default: runs/demo)")
    from slam_recipes._demo.run import QUICK

    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run of the same pipeline: {QUICK.ctc_epochs} CTC epoch{'s' * (QUICK.ctc_epochs != 1)}, "
        f"{QUICK.test_utterances} test sentences ({QUICK.llm_steps} steps if it trains the LLM stage); its WER "
        "is not the demo's",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="PATH=VALUE", help="override a field of the demo's spec"
    )

    def run(args: argparse.Namespace) -> int:
        from slam_recipes._demo.run import run_demo

        run_demo(args.output_dir, transcribe=args.wav, overrides=args.set, quick=args.quick)
        return 0

    return run


def recipes_command(parser: argparse.ArgumentParser):
    """``slam recipes list [--json]`` and ``slam recipes copy NAME DIR``."""
    commands = parser.add_subparsers(dest="recipes_command", required=True, metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="the shipped recipes: name, spec files, title")
    listing.add_argument("--json", action="store_true", help="print JSON (with each spec's absolute path)")
    listing.set_defaults(recipes_run=_list)
    copying = commands.add_parser("copy", help="copy a recipe into a new or empty folder, ready to edit")
    copying.add_argument("name", help="a recipe name, as `slam recipes list` shows it")
    copying.add_argument("directory", help="the folder to create (or an empty one)")
    copying.set_defaults(recipes_run=_copy)
    return lambda args: args.recipes_run(args)


def _list(args: argparse.Namespace) -> int:
    from slam_recipes import catalog

    shipped = catalog.recipes()
    if args.json:
        entries = [
            {"name": r.name, "title": r.title, "path": str(r.path), "specs": [str(spec) for spec in r.specs]}
            for r in shipped
        ]
        print(json.dumps(entries, indent=2))
        return 0
    rows = [(r.name, ", ".join(spec.name for spec in r.specs), r.title) for r in shipped]
    widths = [max(len(row[i]) for row in [("NAME", "SPECS", ""), *rows]) for i in range(2)]
    for name, specs, title in [("NAME", "SPECS", "TITLE"), *rows]:
        print(f"{name.ljust(widths[0])}  {specs.ljust(widths[1])}  {title}".rstrip())
    return 0


def _copy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from slam_recipes import catalog

    destination = Path(args.directory)
    files = catalog.copy(args.name, destination)
    shown = ", ".join(str(f) for f in files[:6]) + (f" and {len(files) - 6} more files" if len(files) > 6 else "")
    print(f"copied recipe {args.name} to {destination}: {shown}")
    specs = [destination / f for f in files if len(f.parts) == 1 and catalog.is_pipeline_spec(destination / f)]
    if specs:
        print(f"next: edit it, then: slam spec validate {specs[0]}")
    return 0
