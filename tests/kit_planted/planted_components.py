"""Correct components and, for every rule of the conformance kit, one with a bug that breaks it."""

from __future__ import annotations

import secrets
from typing import Literal

import torch
from planted_plugins import ConvEncoderConfig, StackConfig
from pydantic import BaseModel, ConfigDict, Field, field_validator
from slam_plugin_lora.method import LoRA
from torch import nn

from slam_core.audio import WaveformPreprocessor, prepare_waveform
from slam_core.components import Encoder, Projector
from slam_core.hf_llm import HFCausalLM
from slam_core.layers import WeightedLayerSum
from slam_core.runtime.tasks.asr import ASRTask
from slam_core.toy import build_toy_llm

# -- projectors ---------------------------------------------------------------------------------


class GoodProjector(Projector):
    """Stacks ``k`` frames (the last ``n mod k`` are dropped), then one Linear."""

    def __init__(self, config, input_dim, output_dim):
        super().__init__()
        self.k, self.input_dim, self.output_dim = config.k, input_dim, output_dim
        self.linear = nn.Linear(config.k * input_dim, output_dim)

    def output_lengths(self, lengths):
        return lengths // self.k

    def forward(self, hidden, lengths):
        out = lengths // self.k
        n = int(out.max())
        stacked = hidden[:, : n * self.k].reshape(hidden.shape[0], n, self.k * self.input_dim)
        return self.linear(stacked), out


class NotAProjector(nn.Module):
    """factory-returns-contract: the same computation, but not a slam_core Projector."""

    def __init__(self, config, input_dim, output_dim):
        super().__init__()
        self.inner = GoodProjector(config, input_dim, output_dim)

    def forward(self, hidden, lengths):
        return self.inner(hidden, lengths)


class RoundTripConfig(StackConfig):
    """config-round-trip: a validator that is not idempotent (adds a suffix every time it runs)."""

    name: str = "proj"

    @field_validator("name")
    @classmethod
    def _tag(cls, value):
        return value + "-v2"


class LaxConfig(BaseModel):
    """config-forbids-unknown-fields: no extra='forbid'."""

    type: Literal["stack"] = "stack"
    k: int = 2


class NoDefaultTypeConfig(BaseModel):
    """config-type-is-the-name: a `type` literal without its default."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["stack"]
    k: int = 2


class BadDefaultConfig(StackConfig):
    """config-defaults-validate: a default its own constraint refuses."""

    dropout: float = Field(-0.1, ge=0.0, le=1.0)


class NoConstSchemaConfig(StackConfig):
    """config-schema: a schema hook that drops the `type` constant."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra=lambda schema: schema["properties"]["type"].pop("const", None)
    )


class NoisyProjector(GoodProjector):
    """eval-deterministic: dropout left on in eval mode."""

    def forward(self, hidden, lengths):
        return super().forward(nn.functional.dropout(hidden, 0.5, training=True), lengths)


class UnsavedBufferProjector(GoodProjector):
    """state-dict-round-trip: a random scale in a non-persistent buffer (not in the state dict)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_buffer("scale", torch.rand(1) + 0.5, persistent=False)

    def forward(self, hidden, lengths):
        embeds, out = super().forward(hidden, lengths)
        return embeds * self.scale, out


class Float32Projector(GoodProjector):
    """dtype-move: the output hard-cast to float32."""

    def forward(self, hidden, lengths):
        embeds, out = super().forward(hidden, lengths)
        return embeds.float(), out


class PlainTensorProjector(GoodProjector):
    """device-move: an offset kept as a plain tensor attribute, which `.to('cuda')` does not move."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.offset = torch.zeros(self.output_dim)

    def forward(self, hidden, lengths):
        embeds, out = super().forward(hidden, lengths)
        return embeds + self.offset, out


class UnusedParameterProjector(GoodProjector):
    """gradients-match-trainable: a trainable parameter the forward never uses."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.forgotten = nn.Parameter(torch.ones(3))


class UnregisteredGainProjector(GoodProjector):
    """frozen-builds-no-graph: a gain tensor that requires grad but is no registered parameter."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.gain = torch.ones(1, requires_grad=True)

    def forward(self, hidden, lengths):
        embeds, out = super().forward(hidden, lengths)
        return embeds * self.gain, out


class OffByOneProjector(GoodProjector):
    """lengths-exact: output_lengths() counts a partial window that forward drops."""

    def output_lengths(self, lengths):
        return lengths // self.k + 1


class LeakyProjector(GoodProjector):
    """padding-does-not-leak: the output depends on the padded width."""

    def forward(self, hidden, lengths):
        embeds, out = super().forward(hidden, lengths)
        return embeds + 0.01 * hidden.shape[1], out


class SwappedDimsProjector(GoodProjector):
    """declares-dims: input_dim and output_dim swapped."""

    def __init__(self, config, input_dim, output_dim):
        super().__init__(config, input_dim, output_dim)
        self.input_dim, self.output_dim = output_dim, input_dim


# -- encoders: one strided conv on the 16 kHz waveform (kernel 400, stride 320: HuBERT's geometry) ----


class ConvEncoder(Encoder):
    """``floor((n - 400) / 320) + 1`` frames; the preprocessor refuses clips under 400 samples."""

    modality = "audio"
    sample_rate, frame_rate = 16000, 50.0

    def __init__(self, config: ConvEncoderConfig):
        super().__init__()
        self.output_dim = config.dim
        self.conv = nn.Conv1d(1, config.dim, 400, stride=320)

    def preprocessor(self):
        return WaveformPreprocessor(16000, min_samples=400)

    def output_lengths(self, lengths):
        return torch.div(lengths - 400, 320, rounding_mode="floor") + 1

    def forward(self, features, lengths):
        hidden = self.conv(features[:, None, :]).transpose(1, 2)
        out = self.output_lengths(lengths)
        valid = torch.arange(int(out.max()))[None, :] < out[:, None]
        return hidden[:, : int(out.max())] * valid[..., None], out


class Stride320Encoder(ConvEncoder):
    """frames-match-output-lengths: the bug of the issue, output_lengths = n // 320 (the conv drops the edge).

    forward returns output_lengths() by construction, so the padded batch's lengths agree with it."""

    def output_lengths(self, lengths):
        return lengths // 320


class ZeroFrameRateEncoder(ConvEncoder):
    """declares-rates: frame_rate left at 0."""

    frame_rate = 0.0


class BareTensorPreprocessor:
    """preprocessor-takes-pipeline-input: assumes a bare tensor where the pipeline gives RawAudio."""

    def __call__(self, raw):
        return torch.as_tensor(raw, dtype=torch.float32)


class BareTensorEncoder(ConvEncoder):
    def preprocessor(self):
        return BareTensorPreprocessor()


class FramingPreprocessor:
    """short-input-refused-clearly: frames the clip with unfold, which raises RuntimeError under 400 samples."""

    def __call__(self, raw):
        waveform = prepare_waveform(raw, 16000)
        waveform.unfold(0, 400, 320)  # a check by accident
        return waveform


class FramingEncoder(ConvEncoder):
    def preprocessor(self):
        return FramingPreprocessor()


class HeavyPreprocessorEncoder(ConvEncoder):
    """preprocessor-pickles: a bound method of the encoder, which pickles its weights along."""

    def __init__(self, config):
        super().__init__(config)
        self.ballast = nn.Parameter(torch.zeros(400_000))

    def preprocessor(self):
        return self._features

    def _features(self, raw):
        return prepare_waveform(raw, 16000)


class MixedEncoder(ConvEncoder):
    """A correct trainable head: the backbone gives two states, the head mixes them (WeightedLayerSum)."""

    def __init__(self, config):
        super().__init__(config)
        self.second = nn.Linear(config.dim, config.dim)
        self.mix = WeightedLayerSum(2)

    def backbone(self, features, lengths):
        first, out = ConvEncoder.forward(self, features, lengths)
        return [first, self.second(first)], out

    def head(self, states, lengths):
        return self.mix(states), lengths

    def head_modules(self):
        return [self.mix]

    def forward(self, features, lengths):
        return self.head(*self.backbone(features, lengths))


class ShortcutEncoder(MixedEncoder):
    """forward-equals-head-of-backbone: forward skips the head (returns the first state)."""

    def forward(self, features, lengths):
        states, out = self.backbone(features, lengths)
        return states[0], out


class DetachedHeadEncoder(MixedEncoder):
    """head-trains-with-frozen-backbone: the head mixes with detached weights."""

    def head(self, states, lengths):
        weights = torch.softmax(self.mix.weights.detach(), 0)
        return weights[0] * states[0] + weights[1] * states[1], lengths


# -- LLMs: the toy Llama with a byte tokenizer ---------------------------------------------------


def build(llm_class):
    def factory(config):
        toy = build_toy_llm(config)
        return llm_class(toy.model, toy.tokenizer)

    return factory


class WrongHiddenSizeLLM(HFCausalLM):
    """embed-shape: hidden_size read from the wrong config field."""

    @property
    def hidden_size(self):
        return int(self.model.config.intermediate_size)


class UnshiftedLossLLM(HFCausalLM):
    """loss-is-shifted-cross-entropy: the loss compares each position with its own label."""

    def forward(self, inputs_embeds, attention_mask, labels=None):
        output = self.model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, use_cache=False)
        if labels is not None:
            output.loss = nn.functional.cross_entropy(output.logits.flatten(0, 1), labels.flatten())
        return output


class BosTokenizeLLM(HFCausalLM):
    """tokenizer-round-trip: tokenize adds the BOS token."""

    def tokenize(self, text, *, special=False):
        return [self.tokenizer.bos_token_id, *super().tokenize(text, special=special)]


class FixedPromptLLM(HFCausalLM):
    """prompt-keeps-instruction: the template drops the instruction."""

    def prompt_parts(self, instruction):
        return super().prompt_parts("USER: ASSISTANT:")


class PromptSlicingLLM(HFCausalLM):
    """generate-returns-new-tokens: cuts "the prompt" off the output, which from embeddings holds only new tokens."""

    def generate(self, inputs_embeds, attention_mask, **options):
        return super().generate(inputs_embeds, attention_mask, **options)[:, inputs_embeds.shape[1] :]


GoodLLM = build(HFCausalLM)
WrongHiddenSize = build(WrongHiddenSizeLLM)
UnshiftedLoss = build(UnshiftedLossLLM)
BosTokenize = build(BosTokenizeLLM)
FixedPrompt = build(FixedPromptLLM)
PromptSlicing = build(PromptSlicingLLM)

# -- PEFT methods: LoRA through peft -------------------------------------------------------------


class GreedyLoRA(LoRA):
    """adapters-only-trainable: unfreezes the base model too."""

    def apply(self, module):
        return super().apply(module).requires_grad_(True)


class PerturbedLoRA(LoRA):
    """identity-at-init: LoRA's B initialised randomly (the adapted model is not the base model)."""

    def apply(self, module):
        adapted = super().apply(module)
        with torch.no_grad():
            for name, parameter in adapted.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.1)
        return adapted


class UnusedAdapterLoRA(LoRA):
    """gradients-reach-adapters-only: an extra trainable adapter tensor the forward never uses."""

    def apply(self, module):
        adapted = super().apply(module)
        adapted.register_parameter("unused_adapter", nn.Parameter(torch.zeros(4)))
        return adapted


class ForgetfulLoRA(LoRA):
    """adapter-save-load-round-trip: load() ignores the saved adapter and applies a fresh one."""

    def load(self, module, directory):
        return self.apply(module)


class DroppingMergeLoRA(LoRA):
    """merge-keeps-logits: merge() removes the adapters instead of folding them in."""

    def merge(self, module):
        return module.unload()


# -- task heads: asr -----------------------------------------------------------------------------


class WrongFieldTask(ASRTask):
    """instruction-and-target-are-text: the target read from a field the sample does not have."""

    def target(self, sample):
        return sample.get("text", "")


class NoReferencesTask(ASRTask):
    """references-are-text: no reference for scoring."""

    def references(self, sample):
        return []


class SplittingTask(ASRTask):
    """postprocess-returns-text: postprocess returns the words."""

    def postprocess(self, text):
        return text.split()


class UndeclaredMetricTask(ASRTask):
    """metrics-are-declared: a metric name no plugin declares."""

    def __init__(self, config):
        super().__init__(config)
        self.metrics = ("wer", "word_error_rate")


class MutatingTask(ASRTask):
    """prepare-returns-new-samples: changes the caller's dicts."""

    def prepare(self, samples, *, training):
        for sample in samples:
            sample["target"] = sample["target"].upper()
        return list(samples)


class UnseededTask(ASRTask):
    """prepare-draws-from-random: a hint drawn from torch's generator (and the OS), not Python's random."""

    def prepare(self, samples, *, training):
        return [{**s, "hint": f"{int(torch.randint(10**6, ()))}-{secrets.randbelow(10)}"} for s in samples]

    def instruction(self, sample):
        return f"Transcribe. {sample.get('hint', '')}"


class RepeatedChoicesTask(ASRTask):
    """choices-hold-the-target: repeated choices that miss the target."""

    def choices(self, sample):
        return ["yes", "no", "yes"]
