"""Training: ``train(spec, run_dir=...)`` on one of four engines (single, DDP, FSDP2, DeepSpeed ZeRO 1–3).

Checkpoints are resumable bit for bit (weights, optimizer, schedule, loss scaler, RNG states,
data position); see :mod:`slam_core.runtime.train.checkpoint` for their layout and
:mod:`slam_core.runtime.train.loop` for how a step is computed.
"""

from slam_core.errors import CheckpointError
from slam_core.runtime.infer.service import Scorer
from slam_core.runtime.train.api import BatchesFactory, default_batches_factory, total_steps, train
from slam_core.runtime.train.loop import NonFiniteLossError, StepInfo, TrainResult
from slam_core.runtime.train.precision import PrecisionError

__all__ = [
    "BatchesFactory",
    "CheckpointError",
    "NonFiniteLossError",
    "PrecisionError",
    "Scorer",
    "StepInfo",
    "TrainResult",
    "default_batches_factory",
    "total_steps",
    "train",
]
