"""A plugin module that imports torch at the top (the bug of rule entry-point-imports-no-torch)."""

from __future__ import annotations

from typing import Literal

import torch  # noqa: F401  (the planted bug: discovery now imports torch for every `slam` command)
from planted_plugins import StackConfig

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec


class TorchyConfig(StackConfig):
    type: Literal["torchy-proj"] = "torchy-proj"


@hookimpl
def slam_projectors():
    return [ComponentSpec("torchy-proj", TorchyConfig, "planted_components:GoodProjector", api="1.0")]
