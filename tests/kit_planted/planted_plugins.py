"""A torch-free plugin module declaring a correct projector (``fake-good-proj``); its configs are shared."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec


class StackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["stack"] = "stack"
    k: int = Field(2, gt=0)


class GoodProjConfig(StackConfig):
    type: Literal["fake-good-proj"] = "fake-good-proj"


class ConvEncoderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["conv-encoder"] = "conv-encoder"
    dim: int = Field(8, gt=0)


@hookimpl
def slam_projectors():
    return [ComponentSpec("fake-good-proj", GoodProjConfig, "planted_components:GoodProjector", api="1.0")]
