"""The SLAM conformance kit on both components, found through the entry point as `slam` finds them.

This module imports nothing of the plugin: a plugin whose module fails to import still gets
its verdict here (rule ``discoverable``, naming the import error), not a collection error.
"""

from __future__ import annotations

from slam_core.testing import EncoderConformance, ProjectorConformance


class TestExampleProjectorConformance(ProjectorConformance):
    """Every rule of the kit for projectors, on a tiny configuration."""

    component_name = "example-projector"
    config = {"k": 3}


class TestExampleEncoderConformance(EncoderConformance):
    """The kit feeds 16 kHz RawAudio clips of many lengths, down to the shortest the preprocessor takes (400)."""

    component_name = "example-encoder"
    config = {"shape": {"conv_channels": 8, "hidden_size": 16}}
