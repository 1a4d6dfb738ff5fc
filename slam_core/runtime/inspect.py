"""``slam inspect``: parameter counts and a training-memory estimate, built on the meta device."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slam_core.spec import PipelineSpec

if TYPE_CHECKING:
    from slam_core.model import SlamModel

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
    from slam_core.accounting import parameter_counts

    counts = parameter_counts(build_on_meta(spec))
    return InspectReport(
        [ComponentCount(name, _component_type(spec, name), *numbers) for name, numbers in counts.items()],
        dtype or spec.train.dtype,
    )


def build_on_meta(spec: PipelineSpec) -> SlamModel:
    """The spec's model built on the meta device: every build-time check runs (checkpoint configs are
    read, LoRA targets matched, projector strides checked) and no weight takes memory."""
    import torch

    from slam_core.model import build_model

    _import_factories(spec)  # outside the meta context: module-level tensors must stay real
    with torch.device("meta"), warnings.catch_warnings():
        # peft calls a transformers API that is deprecated in transformers 5; nothing a user can act on
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return build_model(spec)


def _import_factories(spec: PipelineSpec) -> None:
    """Import every component's factory module, so that none is first imported on the meta device
    (a module-level constant tensor, e.g. torchaudio's Kaldi epsilon, would be created there).

    torchaudio is imported too: transformers imports it lazily (``transformers.audio_utils``)
    while building a Whisper model.
    """
    import torchaudio.compliance.kaldi  # noqa: F401

    from slam_core import plugins
    from slam_core.spec import COMPONENT_SECTIONS

    registry = plugins.registry()
    configs = [(kind, getattr(spec, section)) for section, kind in COMPONENT_SECTIONS.items()]
    for branch in spec.fusion.branches if spec.fusion else []:
        configs += [("encoder", branch.encoder), ("projector", branch.projector)]
    for kind, config in configs:
        if config is not None:
            registry.get(kind, config.type).spec.load_factory()


def _component_type(spec: PipelineSpec, component: str) -> str:
    """The ``type`` of a row of :func:`slam_core.accounting.parameter_counts` (``beats.encoder``: a fusion branch's)."""
    branch, _, kind = component.rpartition(".")
    if not branch:
        return getattr(spec, kind).type
    return getattr(next(b for b in spec.fusion.branches if b.name == branch), kind).type


def render_report(report: InspectReport) -> str:
    """The table ``slam inspect`` prints."""
    width = max(10, *(len(row.component) for row in report.counts))
    lines = [f"{'component':<{width}} {'type':<20} {'parameters':>16} {'trainable':>16}"]
    for row in report.counts:
        note = "  (included in llm)" if row.component == "peft" else ""
        lines.append(f"{row.component:<{width}} {row.type:<20} {row.total:>16,} {row.trainable:>16,}{note}")
    lines.append(f"{'total':<{width + 21}} {report.total:>16,} {report.trainable:>16,}")
    gib = report.memory_bytes / 2**30
    lines.append(
        f"estimated training memory ({report.dtype} frozen weights; fp32 master, gradient and AdamW state "
        f"for trainable): {gib:,.2f} GiB + activations"
    )
    return "\n".join(lines)
