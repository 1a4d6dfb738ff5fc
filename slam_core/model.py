"""SlamModel: encoder → projector → splice into the LLM's input embeddings → LLM.

The number of modality positions of each sample is
``projector.output_lengths(encoder.output_lengths(feature_lengths))``; ``forward`` checks
that the components really produced that many. The encoder and LLM are frozen by default
(a frozen encoder always runs in eval mode under ``no_grad``); the projector and any PEFT
adapters are trainable.

This module only composes. Tokenising the prompts is :mod:`slam_core.text`, counting parameters
:mod:`slam_core.accounting`, building a component :mod:`slam_core.factories`; the decode policy
(the task's prepare, first pass, label scoring, post-processing) and the metrics are the
runtime's decode-and-score service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from slam_core import packing, plugins, splice
from slam_core.components import LLM, Encoder, Modality, PEFTMethod, Projector, TaskHead
from slam_core.errors import ContractError, SpecError
from slam_core.factories import build_component
from slam_core.features import PerBranch
from slam_core.fusion import FusionMode, fuse, fused_lengths
from slam_core.spec import PipelineSpec
from slam_core.text import TextInputs, tokenize_batch
from slam_core.video import combined_modality, for_modality

__all__ = [
    "MAIN_BRANCH",
    "Branch",
    "ContractError",
    "SlamModel",
    "SlamOutput",
    "TextInputs",
    "build_component",
    "build_model",
]

#: Branch name of the spec's ``encoder``/``projector`` when ``fusion`` adds more branches.
MAIN_BRANCH = "main"


@dataclass
class SlamOutput:
    """What :meth:`SlamModel.forward` returns.

    With targets, ``logits`` is ``[N, V]``: one row per target token, the logits of the position
    that predicts it (row-major over the batch), the rows ``loss`` and ``token_accuracy`` come
    from. Without targets it is the full ``[B, L, V]``.
    """

    loss: torch.Tensor | None
    logits: torch.Tensor
    token_accuracy: torch.Tensor | None
    target_tokens: int
    layout: splice.SpliceLayout


class Branch(nn.Module):
    """One more encoder with its own projector, fused with the main one (see :mod:`slam_core.fusion`)."""

    def __init__(self, encoder: Encoder, projector: Projector):
        super().__init__()
        self.encoder, self.projector = encoder, projector


class BranchPreprocessor:
    """Runs every branch's preprocessor on one raw sample: ``raw -> PerBranch({name: features})``.

    Each branch gets the part of the raw input its encoder's modality takes (the audio of an
    audio-visual sample for an audio encoder). Picklable when the branch preprocessors are.
    """

    def __init__(self, parts: Mapping[str, tuple[Callable[[Any], Any], Modality]]):
        self.parts = dict(parts)

    def __call__(self, raw: Any) -> PerBranch:
        return PerBranch((name, run(for_modality(raw, modality))) for name, (run, modality) in self.parts.items())


class SlamModel(nn.Module):
    """The composed model. Build it from a spec with :func:`build_model`.

    ``branches`` (optional) are further encoders, each with its projector, whose embeddings are
    fused with the main encoder's in ``fusion`` mode (``time`` or ``frame``); their features
    and lengths then come as :class:`~slam_core.features.PerBranch` keyed by ``main`` and the
    branch names. With ``pack_sequences``, :meth:`forward` runs the LLM on packed rows of at most
    ``pack_tokens`` positions (default: the batch's longest sample): the same loss and logits.
    """

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
        branches: Mapping[str, Branch] | None = None,
        fusion: FusionMode = "time",
        max_frame_difference: int = 2,
        pack_sequences: bool = False,
        pack_tokens: int | None = None,
    ):
        super().__init__()
        #: Teacher-forced passes lay the samples end to end in fewer rows (:mod:`slam_core.packing`).
        self.pack_sequences, self.pack_tokens = pack_sequences, pack_tokens
        self.encoder, self.projector, self.llm = encoder, projector, llm
        self.branches = nn.ModuleDict(dict(branches or {}))
        if MAIN_BRANCH in self.branches:
            raise ValueError(f"a fusion branch may not be named {MAIN_BRANCH!r}: that is the spec's encoder")
        self.fusion, self.max_frame_difference = fusion, max_frame_difference
        for name, _, branch_projector in self.named_branches():
            if branch_projector.output_dim != llm.hidden_size:
                raise ContractError(
                    f"{name} projector output_dim {branch_projector.output_dim} != LLM hidden_size {llm.hidden_size}"
                )
        self.task, self.peft = task, peft
        self.freeze_encoder, self.freeze_llm = freeze_encoder, freeze_llm
        if freeze_encoder:
            for _, branch_encoder, _ in self.named_branches():
                branch_encoder.requires_grad_(False)
                for head in branch_encoder.head_modules():
                    head.requires_grad_(True)
            self.train(self.training)
        if freeze_llm:
            llm.requires_grad_(False)
        base_parameters = {id(p) for p in llm.parameters()}
        if peft is not None:
            llm.model = peft.apply(llm.model)
        self._adapter_parameter_ids = {id(p) for p in llm.parameters()} - base_parameters

    def named_branches(self) -> list[tuple[str, Encoder, Projector]]:
        """``(name, encoder, projector)`` of the main branch and then the fusion branches."""
        extra = [(name, branch.encoder, branch.projector) for name, branch in self.branches.items()]
        return [(MAIN_BRANCH, self.encoder, self.projector), *extra]

    @property
    def modality(self) -> Modality:
        """What the data pipeline reads for this model (audio and video branches together: audio-visual)."""
        return combined_modality({encoder.modality for _, encoder, _ in self.named_branches()})

    def preprocessor(self, *, training: bool = False) -> Callable[[Any], Any]:
        """The picklable callable the data workers run on each raw sample (the training variant may augment)."""

        def one(encoder: Encoder) -> Callable[[Any], Any]:
            return encoder.train_preprocessor() if training else encoder.preprocessor()

        if not self.branches:
            return one(self.encoder)
        return BranchPreprocessor({name: (one(enc), enc.modality) for name, enc, _ in self.named_branches()})

    def train(self, mode: bool = True) -> SlamModel:
        super().train(mode)
        if self.freeze_encoder:
            for _, encoder, _ in self.named_branches():
                encoder.eval()
                for head in encoder.head_modules():
                    head.train(mode)
        return self

    def modality_lengths(self, feature_lengths: Any) -> torch.Tensor:
        """Exact number of LLM positions each sample's modality embeddings take."""
        if not self.branches:
            return self.projector.output_lengths(self.encoder.output_lengths(feature_lengths))
        names, per_branch = zip(
            *[
                (name, proj.output_lengths(enc.output_lengths(feature_lengths[name])))
                for name, enc, proj in self.named_branches()
            ],
            strict=True,
        )
        return fused_lengths(per_branch, self.fusion, self.max_frame_difference, names)

    def encode(self, features: Any, feature_lengths: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Modality embeddings ``[B, T', D_llm]`` and their exact lengths (fused over branches)."""
        if not self.branches:
            return self._encode_branch(MAIN_BRANCH, self.encoder, self.projector, features, feature_lengths)
        missing = [name for name, _, _ in self.named_branches() if name not in features]
        if missing:
            raise ContractError(f"features for branches {missing} missing; the batch has {sorted(features)}")
        outputs = [
            self._encode_branch(name, encoder, projector, features[name], feature_lengths[name])
            for name, encoder, projector in self.named_branches()
        ]
        names = [name for name, _, _ in self.named_branches()]
        embeds, lengths = zip(*outputs, strict=True)
        return fuse(embeds, lengths, self.fusion, self.max_frame_difference, names)

    def _encode_branch(self, name: str, encoder: Encoder, projector: Projector, features: Any, feature_lengths):
        label = "" if name == MAIN_BRANCH else f"{name} "
        if self.freeze_encoder:
            with torch.no_grad():
                backbone_output, backbone_lengths = encoder.backbone(features, feature_lengths)
            hidden, encoder_lengths = encoder.head(backbone_output, backbone_lengths)
        else:
            hidden, encoder_lengths = encoder(features, feature_lengths)
        _check_lengths(f"{label}encoder", encoder_lengths, encoder.output_lengths(feature_lengths), hidden)
        embeds, lengths = projector(in_dtype_of(projector, hidden), encoder_lengths)
        _check_lengths(f"{label}projector", lengths, projector.output_lengths(encoder_lengths), embeds)
        return embeds, lengths

    def text_inputs(self, samples: Sequence[dict[str, Any]], with_targets: bool = True) -> TextInputs:
        """Tokenise the task's instruction (wrapped in the LLM's template) and target per sample.

        The task head's ``prepare`` runs first (``training`` when the model is in train mode and
        targets are asked for: e.g. a prompt sampled from a list).
        """
        prepared = self.task.prepare(samples, training=self.training and with_targets)
        return tokenize_batch(self.llm, self.task, prepared, with_targets=with_targets)

    def splice_inputs(self, embeds: torch.Tensor, lengths: torch.Tensor, text: TextInputs, padding_side: str):
        """``(inputs_embeds, layout)``: the modality embeddings spliced between the text tokens' embeddings."""
        grid = splice.layout(
            text.prefix_ids, lengths.tolist(), text.suffix_ids, text.target_ids, self.llm.pad_token_id, padding_side
        )
        device = embeds.device
        text_embeds = self.llm.embed(grid.input_ids.to(device))
        inputs_embeds = splice.splice_embeddings(text_embeds, grid.modality_mask.to(device), embeds, lengths)
        return inputs_embeds, grid

    def forward(self, features: Any, feature_lengths: Any, text: TextInputs) -> SlamOutput:
        """Teacher-forced pass: loss over target tokens only, and token accuracy.

        The LLM's output head runs only on the positions that predict a target token
        (:meth:`LLM.logits_at`), so ``logits`` is ``[N, V]`` for the ``N`` target tokens.
        """
        embeds, lengths = self.encode(features, feature_lengths)
        inputs_embeds, grid = self.splice_inputs(embeds, lengths, text, "right")
        if text.target_ids is None:
            output = self.llm(inputs_embeds, grid.attention_mask.to(inputs_embeds.device))
            return SlamOutput(None, output.logits, None, 0, grid)
        logits, gold = self._target_logits(inputs_embeds, grid, packed=self.pack_sequences)
        loss = nn.functional.cross_entropy(logits.float(), gold) if gold.numel() else logits.sum() * 0.0
        accuracy = (logits.argmax(-1) == gold).sum() / max(gold.numel(), 1)
        return SlamOutput(loss, logits, accuracy, int(gold.numel()), grid)

    def _target_logits(self, inputs_embeds: torch.Tensor, grid: splice.SpliceLayout, packed: bool = False):
        """``(logits [N, V], gold [N])`` at the positions whose next token is a target token (row-major).

        ``packed``: the LLM runs on the samples packed into fewer rows; the logits come back in
        the padded batch's row-major order all the same."""
        device = inputs_embeds.device
        keep = splice.predicting_positions(grid.labels)
        gold = grid.labels[:, 1:][keep[:, :-1]].to(device)
        if not packed:
            return self.llm.logits_at(inputs_embeds, grid.attention_mask.to(device), keep.to(device)), gold
        rows = packing.pack(grid.attention_mask, self.pack_tokens)
        packed_keep = rows.gather(keep, fill=False)
        logits = self.llm.packed_logits_at(rows.gather(inputs_embeds), rows.position_ids, packed_keep)
        return logits[rows.original_order(packed_keep).to(logits.device)], gold

    @torch.no_grad()
    def generate(
        self, features: Any, feature_lengths: Any, text: TextInputs, *, return_tokens: bool = False, **options: Any
    ) -> list[str] | list[list[int]]:
        """The LLM's continuation of each prompt (left padding), detokenised; not post-processed.

        With ``return_tokens=True``, each row's new token ids instead: up to and including the
        first end-of-sequence token, without padding (so ``len`` counts the generated tokens).
        """
        embeds, lengths = self.encode(features, feature_lengths)
        return self.generate_from_embeddings(embeds, lengths, text, return_tokens=return_tokens, **options)

    @torch.no_grad()
    def generate_from_embeddings(
        self, embeds: torch.Tensor, lengths: torch.Tensor, text: TextInputs, *, return_tokens: bool = False, **options
    ) -> list[str] | list[list[int]]:
        """:meth:`generate` from modality embeddings already computed by :meth:`encode`."""
        inputs_embeds, grid = self.splice_inputs(embeds, lengths, text.prompt_only(), "left")
        new_tokens = self.llm.generate(inputs_embeds, grid.attention_mask.to(inputs_embeds.device), **options)
        rows = until_end_of_sequence(new_tokens, self.llm.eos_token_ids)
        return rows if return_tokens else self.llm.tokenizer.batch_decode(rows, skip_special_tokens=True)

    def sequence_log_likelihood(self, embeds: torch.Tensor, lengths: torch.Tensor, text: TextInputs) -> torch.Tensor:
        """Summed log-probability of each row's target tokens given its modality embeddings and prompt."""
        inputs_embeds, grid = self.splice_inputs(embeds, lengths, text, "right")
        logits, gold = self._target_logits(inputs_embeds, grid)
        log_probs = torch.log_softmax(logits.float(), dim=-1).gather(-1, gold[:, None])[:, 0]
        rows = splice.predicting_positions(grid.labels).nonzero()[:, 0].to(log_probs.device)
        return torch.zeros(len(grid.labels), device=log_probs.device).index_add(0, rows, log_probs)

    def adapter_parameters(self) -> list[nn.Parameter]:
        """The parameters the PEFT method added to the LLM (none without PEFT)."""
        return [p for p in self.llm.parameters() if id(p) in self._adapter_parameter_ids]

    def merge_adapter(self) -> None:
        """Fold the PEFT adapter into the LLM's weights, for a model that only decodes from now on.

        Each decoding step then runs the plain LLM (for LoRA: ``W + (alpha / r) B A``, one matmul
        where there were three). Nothing to do without PEFT; a method that cannot fold its adapter
        in raises :class:`NotImplementedError` and leaves the model as it was.
        """
        if self.peft is None:
            return
        self.llm.model = self.peft.merge(self.llm.model)
        self.peft, self._adapter_parameter_ids = None, set()


def in_dtype_of(module: nn.Module, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in the dtype of ``module``'s first floating-point parameter (as it is, without one).

    Components may hold different dtypes (a bf16 encoder, an fp32 trainable projector); outside
    autocast (``slam infer``) the output of one must be cast to what the next computes in."""
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), tensor.dtype)
    return tensor if not tensor.is_floating_point() or tensor.dtype == dtype else tensor.to(dtype)


def until_end_of_sequence(tokens: torch.Tensor, eos_token_ids: Sequence[int]) -> list[list[int]]:
    """Each row of ``tokens [B, N]`` up to and including its first end-of-sequence token."""
    rows, stops = [], set(eos_token_ids)
    for row in tokens.tolist():
        end = next((i + 1 for i, token in enumerate(row) if token in stops), len(row))
        rows.append(row[:end])
    return rows


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


def check_audio_positions(
    encoder: Encoder, projector: Projector, max_seconds: float, *, section: str, config: Any, encoder_type: str
) -> None:
    """Refuse a projector whose stride leaves no LLM position for even the longest clip the data allows.

    ``section`` is where the projector's config sits in the spec (``projector`` or a fusion
    branch's); the message names its ``k`` when it has one."""
    import math

    frames = math.floor(max_seconds * encoder.frame_rate)
    positions = int(projector.output_lengths(torch.tensor([frames], device="cpu"))[0])
    if positions >= 1:
        return
    stride = f"{section}.k" if hasattr(config, "k") else f"{section} ({config.type})'s stride"
    given = f"{section}.k = {config.k}" if hasattr(config, "k") else f"{section} ({config.type})"
    raise SpecError(
        [
            f"{given} leaves no audio position for the longest clip the data allows: data.max_duration_s = "
            f"{max_seconds:g} s is {frames} frames of {encoder_type} ({encoder.frame_rate:g} frames/s), which the "
            f"projector turns into {positions} positions; lower {stride} or raise data.max_duration_s"
        ]
    )


def build_model(spec: PipelineSpec, registry: plugins.Registry | None = None) -> SlamModel:
    """Compose a :class:`SlamModel` from a validated spec."""
    llm = build_component("llm", spec.llm, registry)

    def branch(encoder_config: Any, projector_config: Any, where: str = "") -> Branch:
        encoder = build_component("encoder", encoder_config, registry)
        projector = build_component(
            "projector", projector_config, registry, input_dim=encoder.output_dim, output_dim=llm.hidden_size
        )
        check_audio_positions(
            encoder,
            projector,
            spec.data.max_duration_s,
            section=f"{where}projector",
            config=projector_config,
            encoder_type=encoder_config.type,
        )
        return Branch(encoder, projector)

    main = branch(spec.encoder, spec.projector)
    fusion = spec.fusion
    branches = (
        {b.name: branch(b.encoder, b.projector, f"fusion.branches.{i}.") for i, b in enumerate(fusion.branches)}
        if fusion
        else {}
    )
    if spec.train.pack_sequences and type(llm).packed_logits_at is LLM.packed_logits_at:
        raise SpecError(
            [
                f"train.pack_sequences: the llm {spec.llm.type!r} cannot run packed rows (its component does not "
                "implement packed_logits_at); set train.pack_sequences: false"
            ]
        )
    task = build_component("task", spec.task, registry)
    peft = build_component("peft", spec.peft, registry) if spec.peft is not None else None
    return SlamModel(
        main.encoder,
        main.projector,
        llm,
        task,
        peft,
        freeze_encoder=spec.train.freeze_encoder,
        freeze_llm=spec.train.freeze_llm,
        branches=branches,
        fusion=fusion.mode if fusion else "time",
        max_frame_difference=fusion.max_frame_difference if fusion else 2,
        pack_sequences=spec.train.pack_sequences,
        pack_tokens=spec.train.pack_tokens,
    )
