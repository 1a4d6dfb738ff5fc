"""Training engines, one per ``train.engine`` value."""

from __future__ import annotations

from slam_core.model import SlamModel
from slam_core.spec import PipelineSpec
from slam_core.train.distributed import Context
from slam_core.train.engines.base import Engine, StepResult

__all__ = ["Engine", "StepResult", "create_engine"]


def create_engine(model: SlamModel, spec: PipelineSpec, context: Context) -> Engine:
    """The engine ``spec.train.engine`` names (not yet prepared)."""
    from slam_core.train.engines.native import DDPEngine, FSDP2Engine, SingleEngine

    name = spec.train.engine
    if name == "deepspeed":
        from slam_core.train.engines.zero import DeepSpeedEngine

        return DeepSpeedEngine(model, spec, context)
    engines = {"single": SingleEngine, "ddp": DDPEngine, "fsdp2": FSDP2Engine}
    return engines[name](model, spec, context)
