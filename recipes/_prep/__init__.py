"""Shared helpers of the recipes' ``prepare_data.py`` scripts: layout checks, table reading, manifest writing.

A script imports it from the installed slam-recipes, so that it also runs from a copy made by
``slam recipes copy``::

    from slam_recipes._prep import PrepError, read_table, run, write_manifest
"""

from .cli import add_output_dir, base_parser, run, warn
from .layout import PrepError, find_audio, require_dir, require_file
from .manifest import relative_source, write_manifest
from .tables import read_table

__all__ = [
    "PrepError",
    "add_output_dir",
    "base_parser",
    "find_audio",
    "read_table",
    "relative_source",
    "require_dir",
    "require_file",
    "run",
    "warn",
    "write_manifest",
]
