"""SlamModel: encoder → projector → splice into the LLM's input embeddings → LLM.

The number of modality positions of each sample is
``projector.output_lengths(encoder.output_lengths(feature_lengths))``; ``forward`` checks
that the components really produced that many. The encoder and LLM are frozen by default
(a frozen encoder always runs in eval mode under ``no_grad``); the projector and any PEFT
adapters are trainable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from slam_core import plugins, splice
from slam_core.components import LLM, Encoder, PEFTMethod, Projector, TaskHead
from slam_core.spec import PipelineSpec


class ContractError(RuntimeError):
    """A component broke its contract (e.g. returned lengths other than ``output_lengths``)."""


@dataclass
class SlamOutput:
    """What :meth:`SlamModel.forward` returns."""

    loss: torch.Tensor | None
    logits: torch.Tensor
    token_accuracy: torch.Tensor | None
    target_tokens: int
    layout: splice.SpliceLayout


@dataclass
class TextInputs:
    """Token ids around the modality embeddings, one list per sample."""

    prefix_ids: list[list[int]]
    suffix_ids: list[list[int]]
    target_ids: list[list[int]] | None


class SlamModel(nn.Module):
    """The composed model. Build it from a spec with :func:`build_model`."""

    def __init__(
        self,
        encoder: Encoder,
        projector: Projector,
        llm: LLM,
        task: TaskHead,
        peft: PEFTMethod | None = None,
        *,
        freeze_encoder: bool = True,
        freeze_llm: bool = True,
    ):
        super().__init__()
        if projector.output_dim != llm.hidden_size:
            raise ContractError(f"projector output_dim {projector.output_dim} != LLM hidden_size {llm.hidden_size}")
        self.encoder, self.projector, self.llm = encoder, projector, llm
        self.task, self.peft = task, peft
        self.freeze_encoder, self.freeze_llm = freeze_encoder, freeze_llm
        if freeze_encoder:
            encoder.requires_grad_(False)
            for head in encoder.head_modules():
                head.requires_grad_(True)
            self.train(self.training)
        if freeze_llm:
            llm.requires_grad_(False)
        base_parameters = {id(p) for p in llm.parameters()}
        if peft is not None:
            llm.model = peft.apply(llm.model)
        self._adapter_parameter_ids = {id(p) for p in llm.parameters()} - base_parameters

    def train(self, mode: bool = True) -> SlamModel:
        super().train(mode)
        if self.freeze_encoder:
            self.encoder.eval()
            for head in self.encoder.head_modules():
                head.train(mode)
        return self

    def modality_lengths(self, feature_lengths: torch.Tensor) -> torch.Tensor:
        """Exact number of LLM positions each sample's modality embeddings take."""
        return self.projector.output_lengths(self.encoder.output_lengths(feature_lengths))

    def encode(self, features: torch.Tensor, feature_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality embeddings ``[B, T', D_llm]`` and their exact lengths."""
        if self.freeze_encoder:
            with torch.no_grad():
                backbone_output, backbone_lengths = self.encoder.backbone(features, feature_lengths)
            hidden, encoder_lengths = self.encoder.head(backbone_output, backbone_lengths)
        else:
            hidden, encoder_lengths = self.encoder(features, feature_lengths)
        _check_lengths("encoder", encoder_lengths, self.encoder.output_lengths(feature_lengths), hidden)
        embeds, lengths = self.projector(hidden, encoder_lengths)
        _check_lengths("projector", lengths, self.projector.output_lengths(encoder_lengths), embeds)
        return embeds, lengths

    def text_inputs(self, samples: Sequence[dict[str, Any]], with_targets: bool = True) -> TextInputs:
        """Tokenise the task's instruction (wrapped in the LLM's template) and target per sample."""
        prefixes, suffixes, targets = [], [], []
        for sample in samples:
            parts = self.llm.prompt_parts(self.task.instruction(sample))
            prefixes.append(self.llm.tokenize(parts.prefix, special=True) if parts.prefix else [])
            suffixes.append(self.llm.tokenize(parts.suffix, special=True) if parts.suffix else [])
            if with_targets:
                target = parts.target_prefix + self.task.target(sample)
                targets.append([*self.llm.tokenize(target), self.llm.eos_token_id])
        return TextInputs(prefixes, suffixes, targets if with_targets else None)

    def _inputs_embeds(self, features, feature_lengths, text: TextInputs, padding_side: str):
        embeds, lengths = self.encode(features, feature_lengths)
        grid = splice.layout(
            text.prefix_ids, lengths.tolist(), text.suffix_ids, text.target_ids, self.llm.pad_token_id, padding_side
        )
        device = embeds.device
        text_embeds = self.llm.embed(grid.input_ids.to(device))
        inputs_embeds = splice.splice_embeddings(text_embeds, grid.modality_mask.to(device), embeds, lengths)
        return inputs_embeds, grid

    def forward(self, features: torch.Tensor, feature_lengths: torch.Tensor, text: TextInputs) -> SlamOutput:
        """Teacher-forced pass: loss over target tokens only, and token accuracy."""
        inputs_embeds, grid = self._inputs_embeds(features, feature_lengths, text, "right")
        device = inputs_embeds.device
        labels = grid.labels.to(device) if text.target_ids is not None else None
        output = self.llm(inputs_embeds, grid.attention_mask.to(device), labels)
        accuracy, count = None, 0
        if labels is not None:
            predicted = output.logits[:, :-1].argmax(-1)
            gold = labels[:, 1:]
            scored = gold != splice.IGNORE_INDEX
            count = int(scored.sum())
            accuracy = ((predicted == gold) & scored).sum() / max(count, 1)
        return SlamOutput(getattr(output, "loss", None), output.logits, accuracy, count, grid)

    @torch.no_grad()
    def generate(
        self, features: torch.Tensor, feature_lengths: torch.Tensor, text: TextInputs, **options: Any
    ) -> list[str]:
        """Decode a batch (left padding) and post-process with the task head."""
        prompt = TextInputs(text.prefix_ids, text.suffix_ids, None)
        inputs_embeds, grid = self._inputs_embeds(features, feature_lengths, prompt, "left")
        new_tokens = self.llm.generate(inputs_embeds, grid.attention_mask.to(inputs_embeds.device), **options)
        texts = self.llm.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [self.task.postprocess(t) for t in texts]

    def parameter_counts(self) -> dict[str, tuple[int, int]]:
        """``{component: (total, trainable)}``; ``peft`` counts the adapter parameters the
        PEFT method added to the LLM (they are included in ``llm`` too)."""
        groups = {
            "encoder": list(self.encoder.parameters()),
            "projector": list(self.projector.parameters()),
            "llm": list(self.llm.parameters()),
        }
        if self.peft is not None:
            groups["peft"] = [p for p in self.llm.parameters() if id(p) in self._adapter_parameter_ids]
        return {
            name: (sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad))
            for name, params in groups.items()
        }


def _check_lengths(component: str, returned: torch.Tensor, expected: torch.Tensor, output: torch.Tensor) -> None:
    if returned.device.type == "meta":
        return
    if not torch.equal(returned.cpu(), expected.cpu()):
        raise ContractError(
            f"{component} returned lengths {returned.tolist()} but its output_lengths() says {expected.tolist()}"
        )
    longest = int(returned.max()) if returned.numel() else 0
    if output.shape[1] != longest:
        raise ContractError(f"{component} output has {output.shape[1]} frames, expected max length {longest}")


def build_component(kind: str, config: Any, registry: plugins.Registry | None = None, **context: Any) -> Any:
    """Build one component from its config through the plugin that declares ``config.type``."""
    registry = registry or plugins.registry()
    registered = registry.get(kind, config.type)
    try:
        factory = registered.spec.load_factory()
    except (ImportError, AttributeError) as exc:
        raise plugins.PluginError(
            f"{kind} {config.type!r} from {registered.plugin.label}: cannot import its factory "
            f"{registered.spec.factory!r}: {exc}"
        ) from exc
    return factory(config, **context)


def build_model(spec: PipelineSpec, registry: plugins.Registry | None = None) -> SlamModel:
    """Compose a :class:`SlamModel` from a validated spec."""
    encoder = build_component("encoder", spec.encoder, registry)
    llm = build_component("llm", spec.llm, registry)
    projector = build_component(
        "projector", spec.projector, registry, input_dim=encoder.output_dim, output_dim=llm.hidden_size
    )
    task = build_component("task", spec.task, registry)
    peft = build_component("peft", spec.peft, registry) if spec.peft is not None else None
    return SlamModel(
        encoder,
        projector,
        llm,
        task,
        peft,
        freeze_encoder=spec.train.freeze_encoder,
        freeze_llm=spec.train.freeze_llm,
    )
