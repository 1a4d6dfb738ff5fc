"""Registers ``linear-projector`` and ``conv1d-projector`` with SLAM (imports no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.hookspecs import hookimpl
from slam_core.records import ComponentSpec


class LinearProjectorConfig(BaseModel):
    """Stack every ``k`` encoder frames, then Linear(k·D → hidden) → activation → Linear(hidden → D_llm).

    The defaults are SLAM-LLM's (ReLU, biases); ``activation: gelu``, ``bias: false`` and
    ``hidden_dim`` = the LLM's hidden size is Voxtral's projector (docs/export.md).
    """

    model_config = ConfigDict(extra="forbid")
    type: Literal["linear-projector"] = "linear-projector"
    k: int = Field(5, gt=0, description="encoder frames concatenated into one LLM position")
    hidden_dim: int = Field(2048, gt=0, description="width of the MLP's hidden layer")
    activation: Literal["relu", "gelu"] = Field("relu", description="between the two linear layers (gelu: exact, erf)")
    bias: bool = Field(True, description="the two linear layers have biases")


class Conv1dProjectorConfig(BaseModel):
    """Conv1d(D → D, kernel k, stride k) → ReLU → Linear(D → hidden) → ReLU → Linear(hidden → D_llm)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["conv1d-projector"] = "conv1d-projector"
    k: int = Field(5, gt=0, description="encoder frames per LLM position (the convolution's kernel and stride)")
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
        ),
        ComponentSpec(
            name="conv1d-projector",
            config=Conv1dProjectorConfig,
            factory="slam_plugin_linear_projector.projector:Conv1dProjector",
            api="1.0",
            description="strided Conv1d over k frames, 2-layer MLP (SLAM-LLM's cov1d-linear projector)",
        ),
    ]
