"""``slam inspect``: parameter counts and a training-memory estimate, built on the meta device."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slam_core.spec import PipelineSpec

if TYPE_CHECKING:
    from slam_core.model import SlamModel
    from slam_core.runtime.memory import StepMemory

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


@dataclass(frozen=True)
class StepEstimate:
    """One training step's memory at ``batch`` clips of ``seconds`` and ``text_tokens`` target tokens,
    measured by running it on fake tensors, without and with activation checkpointing."""

    batch: int
    seconds: float
    text_tokens: int
    plain: StepMemory
    #: With every component that has a ``gradient_checkpointing`` option turned on; None: none has one.
    checkpointed: StepMemory | None
    checkpointing: tuple[str, ...]


#: Component configs with this field can recompute their layers' activations in the backward pass.
CHECKPOINTING_FIELD = "gradient_checkpointing"


def estimate_step(spec: PipelineSpec, batch: int, seconds: float, text_tokens: int) -> StepEstimate:
    """Run one training step of the spec's model on fake tensors (no weight is allocated) and measure
    its memory: weights, gradients, optimizer state, activations and backward's working memory."""
    from slam_core.runtime.memory import measure_step
    from slam_core.runtime.train.probe import fixed_batch

    def measure(with_checkpointing: bool) -> StepMemory:
        variant = _with_checkpointing(spec, with_checkpointing)
        model = build_on_meta(variant)
        inputs, text = fixed_batch(model, batch, seconds, text_tokens)
        return measure_step(model, variant, inputs, text)

    switchable = tuple(name for name in ("encoder", "llm") if _can_checkpoint(spec, name))
    return StepEstimate(batch, seconds, text_tokens, measure(False), measure(True) if switchable else None, switchable)


def _can_checkpoint(spec: PipelineSpec, section: str) -> bool:
    config = getattr(spec, section, None)
    return config is not None and CHECKPOINTING_FIELD in type(config).model_fields


def _with_checkpointing(spec: PipelineSpec, enabled: bool) -> PipelineSpec:
    """``spec`` with ``gradient_checkpointing`` set to ``enabled`` in every component that has it."""
    update = {
        section: getattr(spec, section).model_copy(update={CHECKPOINTING_FIELD: enabled})
        for section in ("encoder", "llm")
        if _can_checkpoint(spec, section)
    }
    return spec.model_copy(update=update)


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


def render_step(estimate: StepEstimate) -> str:
    """The activation table ``slam inspect --batch --seconds --text-tokens`` prints below the counts."""
    plain, checkpointed = estimate.plain, estimate.checkpointed
    names = sorted({*plain.saved, *plain.at_peak}, key=_row_order)
    header = f"{'component':<10} {'kept for backward':>18} {'at step peak':>14}"
    if checkpointed:
        header += f" {'kept, checkpointed':>19} {'peak, checkpointed':>19}"
    lines = [
        f"one training step at batch {estimate.batch} x {estimate.seconds:g} s, {estimate.text_tokens} target tokens "
        "(run on fake tensors; MiB):",
        header,
    ]
    for name in names:
        line = f"{name:<10} {_mib(plain.saved.get(name, 0)):>18} {_mib(plain.at_peak.get(name, 0)):>14}"
        if checkpointed:
            line += f" {_mib(checkpointed.saved.get(name, 0)):>19} {_mib(checkpointed.at_peak.get(name, 0)):>19}"
        lines.append(line)
    lines.append(f"estimated training peak (weights, gradients, optimizer state, activations): {_gib(plain.peak)} GiB")
    if checkpointed:
        lines.append(
            f"  with gradient_checkpointing in {', '.join(estimate.checkpointing)}: {_gib(checkpointed.peak)} GiB"
        )
    else:
        lines.append("  (no component of this spec has a gradient_checkpointing option)")
    return "\n".join(lines)


def _row_order(name: str) -> int:
    order = ["encoder", "projector", "llm"]
    return order.index(name) if name in order else len(order)


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f}"


def _gib(size: int) -> str:
    return f"{size / 2**30:,.2f}"
