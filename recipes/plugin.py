"""slam-recipes' entry point in ``slam.plugins``: the ``slam demo`` and ``slam recipes`` commands.

Imports no torch (nor the commands' module: the records name their factories).
"""

from __future__ import annotations

from slam_core.hookspecs import hookimpl
from slam_core.records import API_VERSION, CommandSpec

_COMMANDS = "slam_recipes.commands"


@hookimpl
def slam_commands() -> list[CommandSpec]:
    return [
        CommandSpec(
            "demo",
            "train the embedded demo (recipes/demo), print its WER, transcribe a wav",
            f"{_COMMANDS}:demo_command",
            api=API_VERSION,
        ),
        CommandSpec(
            "recipes",
            "list the shipped recipes, or copy one into a folder to edit",
            f"{_COMMANDS}:recipes_command",
            api=API_VERSION,
        ),
    ]
