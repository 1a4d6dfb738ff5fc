"""Parameter accounting of a composed model: total and trainable parameters per component."""

from __future__ import annotations

from torch import nn

from slam_core.model import MAIN_BRANCH, SlamModel


def parameter_counts(model: SlamModel) -> dict[str, tuple[int, int]]:
    """``{component: (total, trainable)}`` of ``model`` (what ``slam inspect`` prints).

    Fusion branches count as ``<name>.encoder`` and ``<name>.projector``; ``peft`` counts the
    adapter parameters the PEFT method added to the LLM (they are included in ``llm`` too).
    """
    groups: dict[str, list[nn.Parameter]] = {}
    for name, encoder, projector in model.named_branches():
        prefix = "" if name == MAIN_BRANCH else f"{name}."
        groups[f"{prefix}encoder"] = list(encoder.parameters())
        groups[f"{prefix}projector"] = list(projector.parameters())
    groups["llm"] = list(model.llm.parameters())
    if model.peft is not None:
        groups["peft"] = model.adapter_parameters()
    return {
        name: (sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))
        for name, params in groups.items()
    }
