"""Training engines, one per ``train.engine`` value."""

from __future__ import annotations

from slam_core.model import SlamModel
from slam_core.runtime.train.distributed import Context
from slam_core.runtime.train.engines.base import Engine, StepResult
from slam_core.spec import PipelineSpec

__all__ = ["Engine", "StepResult", "create_engine"]


def create_engine(model: SlamModel, spec: PipelineSpec, context: Context) -> Engine:
    """The engine ``spec.train.engine`` names (not yet prepared)."""
    from slam_core.runtime.train.engines.native import DDPEngine, FSDP2Engine, SingleEngine

    name = spec.train.engine
    if name == "deepspeed":
        from slam_core.runtime.train.engines.zero import DeepSpeedEngine

        return DeepSpeedEngine(model, spec, context)
    engines = {"single": SingleEngine, "ddp": DDPEngine, "fsdp2": FSDP2Engine}
    return engines[name](model, spec, context)
