"""The typed contracts every component implements.

The composition (``slam_core.model``) relies only on what is declared here. Lengths are
exact: the number of modality positions spliced into the LLM input is
``projector.output_lengths(encoder.output_lengths(n))``, computed, never estimated, and a
component's ``forward`` must return exactly those lengths (the conformance kit checks it).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import torch
from torch import nn

Modality = Literal["audio", "video", "audio-visual"]


class Encoder(nn.Module, abc.ABC):
    """Turns raw audio/video into a sequence of hidden frames.

    ``modality`` (a class attribute, or an instance attribute when a config picks the mode)
    says what the data pipeline reads for it: ``audio`` -> :class:`~slam_core.audio.RawAudio`,
    ``video`` -> :class:`~slam_core.video.RawVideo`, ``audio-visual`` ->
    :class:`~slam_core.video.RawAudioVisual`. Instance attributes: ``sample_rate`` (raw input
    rate, Hz or frames per second for video), ``output_dim`` (D) and ``frame_rate`` (output
    frames per second).

    Features are one tensor ``[T, ...]`` per sample, or a dict of tensors sharing the time
    axis ``T`` (aligned streams, e.g. lip frames and filterbanks at 25 Hz); the batch pads
    each and gives one length per sample.
    """

    modality: ClassVar[Modality] = "audio"
    sample_rate: int
    output_dim: int
    frame_rate: float

    @abc.abstractmethod
    def preprocessor(self) -> Callable[[Any], torch.Tensor]:
        """A small picklable callable turning one raw sample into features ``[T, ...]``.

        It runs in DataLoader workers on the CPU, so it must not hold the model's weights.
        """

    def train_preprocessor(self) -> Callable[[Any], Any]:
        """The preprocessor for training batches: may add random augmentation (e.g. random crop and
        flip); the default is :meth:`preprocessor`. Validation and decoding always use :meth:`preprocessor`."""
        return self.preprocessor()

    def preprocess(self, raw: Any) -> torch.Tensor:
        """Features ``[T, ...]`` for one raw sample (``self.preprocessor()(raw)``)."""
        return self.preprocessor()(raw)

    @abc.abstractmethod
    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features [B, T, ...]`` padded, ``lengths [B]`` in feature frames
        -> ``(hidden [B, T_out, D], output_lengths(lengths))`` with ``T_out == max(out lengths)``."""

    @abc.abstractmethod
    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Exact number of output frames for inputs of ``lengths`` feature frames."""

    # An encoder may split itself into a frozen backbone and a small head that trains even when
    # the encoder is frozen (e.g. a learned weighted sum of layers). Then ``forward`` must equal
    # ``head(*backbone(features, lengths))``; SlamModel runs the backbone under no_grad only.
    def backbone(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[Any, torch.Tensor]:
        """The part that stays frozen with the encoder (default: the whole encoder)."""
        return self(features, lengths)

    def head(self, backbone_output: Any, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The trainable rest applied to ``backbone``'s output (default: identity)."""
        return backbone_output, lengths

    def head_modules(self) -> list[nn.Module]:
        """Modules whose parameters train even when the encoder is frozen (default: none)."""
        return []


class Projector(nn.Module, abc.ABC):
    """Maps encoder frames ``[B, T, input_dim]`` to LLM embeddings ``[B, T', output_dim]``."""

    input_dim: int
    output_dim: int

    @abc.abstractmethod
    def forward(self, hidden: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ``(embeds [B, T', output_dim], output_lengths(lengths))`` with ``T' == max(out lengths)``."""

    @abc.abstractmethod
    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Exact number of output positions for inputs of ``lengths`` frames."""


@dataclass(frozen=True)
class PromptParts:
    """The text around the modality embeddings: ``[prefix | modality | suffix | target]``.

    ``target_prefix`` is prepended to the target before it is tokenised on its own, so that it
    gets the tokens it would get inside the whole rendered conversation (a byte-level BPE
    tokenizer needs the leading space of ``"ASSISTANT: hello"``; SentencePiece does not).
    """

    prefix: str
    suffix: str
    target_prefix: str = ""


class LLM(nn.Module, abc.ABC):
    """A causal language model with its tokenizer and prompt template.

    ``model`` is the wrapped causal LM module; PEFT methods are applied to it.
    """

    model: nn.Module
    tokenizer: Any

    @property
    @abc.abstractmethod
    def hidden_size(self) -> int:
        """Width of the input embeddings (the projector's output_dim)."""

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eos_token_id if pad is None else int(pad)

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text``, adding no BOS/EOS.

        With ``special=False`` (transcripts, captions: data) a string such as ``"</s>"`` is
        plain text; ``special=True`` (prompt templates) lets it name the special token.
        """
        encoded = self.tokenizer(text, add_special_tokens=False, split_special_tokens=not special)
        return list(encoded["input_ids"])

    @abc.abstractmethod
    def prompt_parts(self, instruction: str) -> PromptParts:
        """Wrap a task instruction in the model's prompt template."""

    @abc.abstractmethod
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Input embeddings ``[B, L, hidden_size]`` of ``input_ids [B, L]``."""

    @abc.abstractmethod
    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> Any:
        """Run the LM; the result has ``.logits [B, L, V]`` and ``.loss`` when labels are given."""

    def logits_at(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Logits ``[N, V]`` at the ``N`` True positions of ``keep [B, L]``, in row-major order.

        Training and label scoring need logits only where a target token is predicted; an LLM
        that can run its output head on those positions alone overrides this (``HFCausalLM``
        does). The default runs :meth:`forward` and picks the positions.
        """
        return self(inputs_embeds, attention_mask).logits[keep.to(inputs_embeds.device)]

    def packed_logits_at(
        self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """:meth:`logits_at` over packed rows (:mod:`slam_core.packing`, ``train.pack_sequences``).

        Each row ``[R, C]`` holds several samples end to end, each numbered from 0 by
        ``position_ids``; no sample may attend to another. An LLM that cannot keep them apart
        keeps this default, and a spec that packs for it is refused.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot run packed rows")

    @property
    def eos_token_ids(self) -> list[int]:
        """Every token id that ends generation (default: the tokenizer's EOS)."""
        return [self.eos_token_id]

    @abc.abstractmethod
    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **options: Any) -> torch.Tensor:
        """Generate from left-padded embeddings; returns only the new token ids ``[B, N]``."""


class PEFTMethod(abc.ABC):
    """A parameter-efficient fine-tuning method, saved in its library's own format."""

    @abc.abstractmethod
    def apply(self, module: nn.Module) -> nn.Module:
        """Return ``module`` with adapters added; only adapter parameters are trainable."""

    @abc.abstractmethod
    def save(self, module: nn.Module, directory: str | Path) -> None:
        """Write the adapter of an applied ``module`` to ``directory``."""

    @abc.abstractmethod
    def load(self, module: nn.Module, directory: str | Path) -> nn.Module:
        """Load an adapter saved by :meth:`save` into ``module`` (a fresh, un-applied model)."""

    def merge(self, module: nn.Module) -> nn.Module:
        """The plain module of an applied ``module`` with the adapters folded into its weights
        (``slam export``); a method whose adapters cannot be folded in raises :class:`NotImplementedError`."""
        raise NotImplementedError(f"{type(self).__name__} cannot merge its adapters into the LLM's weights")


class TaskHead(abc.ABC):
    """Turns a sample into an instruction and a target, and decoded text into an answer."""

    #: Names of the metrics this task reports (e.g. ``("wer",)``).
    metrics: Sequence[str] = ()

    @abc.abstractmethod
    def instruction(self, sample: dict[str, Any]) -> str:
        """The instruction text for ``sample`` (placed after the modality embeddings)."""

    @abc.abstractmethod
    def target(self, sample: dict[str, Any]) -> str:
        """The text the LLM should produce for ``sample``."""

    def references(self, sample: dict[str, Any]) -> str | list[str]:
        """What a hypothesis is scored against: one string, or several (e.g. five reference captions).

        Default: :meth:`target`. Validation and ``slam infer`` records use it."""
        return self.target(sample)

    def sample_problem(self, sample: dict[str, Any], *, needs_target: bool) -> str | None:
        """Why this head cannot use ``sample`` (a field missing or of the wrong type), or ``None``.

        The data pipeline asks this of every manifest sample when it indexes the manifest, before
        any batch, so that such a sample is a bad sample (an error naming its manifest line, or a
        skip under ``data.bad_samples: skip``) and not a failure mid-epoch. ``needs_target`` is true
        for the training and validation splits; decoding checks a target only where the sample has
        one. Default: build :meth:`instruction`, and :meth:`target` and :meth:`references` when a
        target is wanted or given; the message of a ``KeyError``, ``TypeError`` or ``ValueError``
        they raise is the reason.
        """
        try:
            self.instruction(sample)
            if needs_target or "target" in sample:
                self.target(sample)
                self.references(sample)
        except KeyError as exc:
            return str(exc.args[0]) if exc.args else f"missing field {exc!r}"
        except (TypeError, ValueError) as exc:
            return str(exc)
        return None

    def postprocess(self, text: str) -> str:
        """Clean a decoded hypothesis (default: strip white space)."""
        return text.strip()

    def auxiliary_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> torch.Tensor | None:
        """An optional extra loss (e.g. CTC on the encoder); ``None`` by default."""
        return None

    def prepare(self, samples: Sequence[dict[str, Any]], *, training: bool) -> list[dict[str, Any]]:
        """The batch's samples as :meth:`instruction` and :meth:`target` should see them.

        Runs in the main process once per batch before the text is built (e.g. sample a prompt
        from a list, or draw pseudo-hotwords from the other targets of the batch, when
        ``training``). Return new dicts rather than changing the given ones. Randomness must
        come from Python's ``random`` module, whose state the trainer checkpoints. Default:
        the samples unchanged.
        """
        return list(samples)

    def choices(self, sample: dict[str, Any]) -> Sequence[str] | None:
        """The closed set of answers for ``sample`` (e.g. the label set), or ``None`` (default).

        With choices, decoding scores each one (the LLM's log-likelihood of it as the target)
        and returns the best, so the answer is always one of them.
        """
        return None

    #: Decode twice: a first pass without task context, then :meth:`after_first_pass`.
    first_pass: bool = False

    def after_first_pass(self, samples: Sequence[dict[str, Any]], hypotheses: Sequence[str]) -> list[dict[str, Any]]:
        """Samples for the second decoding pass given the first pass's hypotheses (e.g. the
        biasing words that match them). Only called when :attr:`first_pass` is true."""
        return list(samples)


# -- factories -----------------------------------------------------------------------------
# A plugin's ``ComponentSpec.factory`` names a callable of its kind's protocol below. Building a
# component (``slam_core.factories.build_component``) checks that the result is an instance of
# the kind's contract class (:data:`CONTRACTS`).


class EncoderFactory(Protocol):
    """``factory(config) -> Encoder``."""

    def __call__(self, config: Any, /) -> Encoder: ...


class ProjectorFactory(Protocol):
    """``factory(config, *, input_dim, output_dim) -> Projector``: ``input_dim`` is the encoder's
    ``output_dim``, ``output_dim`` the LLM's ``hidden_size``."""

    def __call__(self, config: Any, /, *, input_dim: int, output_dim: int) -> Projector: ...


class LLMFactory(Protocol):
    """``factory(config) -> LLM``."""

    def __call__(self, config: Any, /) -> LLM: ...


class PEFTFactory(Protocol):
    """``factory(config) -> PEFTMethod``."""

    def __call__(self, config: Any, /) -> PEFTMethod: ...


class TaskHeadFactory(Protocol):
    """``factory(config) -> TaskHead``."""

    def __call__(self, config: Any, /) -> TaskHead: ...


#: The contract class a factory of each component kind must return an instance of.
CONTRACTS: dict[str, type] = {
    "encoder": Encoder,
    "projector": Projector,
    "llm": LLM,
    "peft": PEFTMethod,
    "task": TaskHead,
}
