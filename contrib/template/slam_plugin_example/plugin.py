"""Registers ``example-projector`` with SLAM.

This module is what the ``slam.plugins`` entry point names. Discovery imports it to read
the records, so it imports no torch: the component itself lives in
:mod:`slam_plugin_example.projector` and is named by a ``"module:attr"`` string that is
imported only when a pipeline is built.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec


class ExampleProjectorConfig(BaseModel):
    """Mean-pool every ``k`` encoder frames (a partial last window over its real frames), then Linear → D_llm."""

    # Unknown keys in a spec must be errors, not silently ignored (discovery rejects the record otherwise).
    model_config = ConfigDict(extra="forbid")
    # The discriminator of the spec's ``projector`` section; its value must equal the record's name.
    type: Literal["example-projector"] = "example-projector"
    k: int = Field(4, gt=0, description="encoder frames averaged into one LLM position")
    bias: bool = Field(True, description="whether the output Linear has a bias")


@hookimpl
def slam_projectors() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="example-projector",
            config=ExampleProjectorConfig,
            factory="slam_plugin_example.projector:ExampleProjector",
            # Required: the contract version this code was written for (a literal, not the
            # installed slam-core's API_VERSION), so an incompatible host reports it.
            api="1.0",
            description="mean-pool k frames, one Linear (plugin template)",
        )
    ]
