"""Registers ``linear-projector`` with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec


class LinearProjectorConfig(BaseModel):
    """Stack every ``k`` encoder frames, then Linear(k·D → hidden) → ReLU → Linear(hidden → D_llm)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["linear-projector"] = "linear-projector"
    k: int = Field(5, gt=0, description="encoder frames concatenated into one LLM position")
    hidden_dim: int = Field(2048, gt=0, description="width of the MLP's hidden layer")


@hookimpl
def slam_projectors() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="linear-projector",
            config=LinearProjectorConfig,
            factory="slam_plugin_linear_projector.projector:LinearProjector",
            api="1.0",  # the contract version this plugin was written for
            description="concatenate k frames, 2-layer MLP (SLAM-LLM's linear projector)",
        )
    ]
