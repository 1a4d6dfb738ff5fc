"""``slam inspect``: parameter counts and a training-memory estimate, built on the meta device."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from slam_core.spec import PipelineSpec

BYTES_PER_PARAM = {"fp32": 4, "bf16": 2, "fp16": 2}
# A trainable parameter keeps an fp32 master copy, an fp32 gradient and AdamW's two fp32 moments.
TRAINABLE_BYTES = 4 + 4 + 8


@dataclass(frozen=True)
class ComponentCount:
    component: str
    type: str
    total: int
    trainable: int


@dataclass(frozen=True)
class InspectReport:
    counts: list[ComponentCount]
    dtype: str

    @property
    def total(self) -> int:
        return sum(c.total for c in self.counts if c.component != "peft")  # peft is inside llm

    @property
    def trainable(self) -> int:
        return sum(c.trainable for c in self.counts if c.component != "peft")

    @property
    def memory_bytes(self) -> int:
        """Weights, gradients and optimizer state for training; activations are not included."""
        frozen = self.total - self.trainable
        return frozen * BYTES_PER_PARAM[self.dtype] + self.trainable * TRAINABLE_BYTES


def inspect_spec(spec: PipelineSpec, dtype: str | None = None) -> InspectReport:
    """Build the spec's model on the meta device and count its parameters."""
    import torch

    from slam_core.model import build_model

    with torch.device("meta"), warnings.catch_warnings():
        # peft calls a transformers API that is deprecated in transformers 5; nothing a user can act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        model = build_model(spec)
    counts = model.parameter_counts()
    return InspectReport(
        [ComponentCount(name, getattr(spec, name).type, *numbers) for name, numbers in counts.items()],
        dtype or spec.train.dtype,
    )


def render_report(report: InspectReport) -> str:
    """The table ``slam inspect`` prints."""
    lines = [f"{'component':<10} {'type':<20} {'parameters':>16} {'trainable':>16}"]
    for row in report.counts:
        note = "  (included in llm)" if row.component == "peft" else ""
        lines.append(f"{row.component:<10} {row.type:<20} {row.total:>16,} {row.trainable:>16,}{note}")
    lines.append(f"{'total':<31} {report.total:>16,} {report.trainable:>16,}")
    gib = report.memory_bytes / 2**30
    lines.append(
        f"estimated training memory ({report.dtype} frozen weights; fp32 master, gradient and AdamW state "
        f"for trainable): {gib:,.2f} GiB + activations"
    )
    return "\n".join(lines)
