"""Command-line overrides of spec fields: ``--set train.lr=3e-4 --set peft.r=16``."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from typing import Any

from slam_core.errors import OverrideError

_PATH = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=3e-4"`` → ``(["train", "lr"], 0.0003)``; the value is read as YAML."""
    import yaml

    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not _PATH.fullmatch(path):
        raise OverrideError(f"override {text!r} must look like section.field=value (e.g. train.lr=3e-4)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise OverrideError(f"override {text!r}: the value is not valid YAML: {exc}") from None
    if isinstance(value, str) and re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+", value.strip()):
        value = float(value)  # YAML 1.1 reads 3e-4 as a string
    return path.split("."), value


def apply_overrides(document: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of the spec ``document`` with each ``dotted.path=value`` set (missing sections are created)."""
    result = copy.deepcopy(document)
    for text in overrides:
        keys, value = parse_override(text)
        node = result
        for depth, key in enumerate(keys[:-1]):
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                walked = ".".join(keys[: depth + 1])
                raise OverrideError(f"override {text!r}: {walked} is {child!r}, not a section")
            node = child
        node[keys[-1]] = value
    return result


def override_keys(overrides: Iterable[str]) -> list[str]:
    """The dotted field each override sets: ``["train.lr=3e-4"]`` → ``["train.lr"]``."""
    return [".".join(parse_override(text)[0]) for text in overrides]
