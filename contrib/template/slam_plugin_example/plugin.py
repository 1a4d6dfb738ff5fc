"""Registers ``example-projector`` and ``example-encoder`` with SLAM.

This module is what the ``slam.plugins`` entry point names. Discovery imports it to read
the records, so it imports no torch: the components themselves live in
:mod:`slam_plugin_example.projector` and :mod:`slam_plugin_example.encoder` and are named by
``"module:attr"`` strings that are imported only when a pipeline is built. (The conformance
kit checks this in a fresh interpreter: rule ``entry-point-imports-no-torch``.)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.configs import Shape
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


class ExampleEncoderShape(Shape):
    """The encoder's random-init architecture, under ``shape:`` (every field has a default).

    A component with random weights takes its architecture as ``shape`` (and, with presets,
    ``size``), using the names every plugin shares where they apply (``hidden_size``, ...;
    see ``slam_core.configs``).
    """

    component = "example-encoder"
    conv_channels: int = Field(32, gt=0, description="channels of every conv layer")
    hidden_size: int = Field(64, gt=0, description="output_dim: the width of each frame")


class ExampleEncoderConfig(BaseModel):
    """wav2vec 2.0's conv stack on the 16 kHz waveform (50 Hz frames), then Linear → ``shape.hidden_size``."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["example-encoder"] = "example-encoder"
    shape: ExampleEncoderShape = Field(default_factory=ExampleEncoderShape)


@hookimpl
def slam_encoders() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="example-encoder",
            config=ExampleEncoderConfig,
            factory="slam_plugin_example.encoder:ExampleEncoder",
            api="1.0",
            description="wav2vec 2.0 conv stack, one Linear (plugin template)",
        )
    ]
