"""``slam export --format voxtral``: a Whisper → linear-projector → Llama composition as transformers'
``VoxtralForConditionalGeneration``, which loads it with ``from_pretrained`` and gives the same logits.

Voxtral (transformers' ``models/voxtral``) is a Whisper encoder run on whole padded 30 s windows
(1500 frames each, no attention mask), whose output is reshaped so that every ``k =
intermediate_size / d_model`` consecutive frames make one row, then Linear (no bias) →
activation → Linear (no bias) with the LLM's hidden size as width, spliced in place of the
prompt's audio placeholder tokens of a Llama LM. The composition that is exactly that (checked by
:func:`check_composition`): encoder ``whisper`` with ``mode: pad_to_30s``; ``linear-projector``
with ``k`` = the encoder's FFN width / its hidden size (4 for every Whisper size), ``bias:
false``, ``hidden_dim`` = the LLM's hidden size, ``activation`` relu or gelu (Voxtral's
``projector_hidden_act``); LLM ``vicuna`` (Llama family); no fusion branches.

The folder holds ``config.json`` + ``model.safetensors`` (transformers' ``save_pretrained``),
the tokenizer, a ``WhisperFeatureExtractor`` config (the same log-mel as the encoder's
preprocessor) and ``slam-export.json`` with the audio placeholder token and the prompt around
it. The components' module names are read by their documented layout (the Whisper encoder's
``model`` is a transformers ``WhisperEncoder``; the projector's ``linear1``/``linear2``; the
LLM's ``model`` a ``LlamaForCausalLM``), never imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import ExportError
from slam_core.model import SlamModel
from slam_core.runtime.export import folder as layout
from slam_core.spec import PipelineSpec

FORMAT = "voxtral"
MODEL_CLASS = "VoxtralForConditionalGeneration"
SAMPLE_RATE, HOP_LENGTH = 16000, 160
FALLBACK = "use the default self-describing export (--format slam)"


def check_composition(spec: PipelineSpec, model: SlamModel) -> None:
    """Refuse, naming every reason, a composition that Voxtral's architecture does not compute exactly."""
    problems = _composition_problems(spec, model)
    if problems:
        raise ExportError(f"cannot export to {FORMAT}: " + "; ".join(problems) + f"; {FALLBACK}")


def _composition_problems(spec: PipelineSpec, model: SlamModel) -> list[str]:
    if spec.fusion is not None:
        return ["fusion branches: Voxtral has one audio encoder"]
    if spec.encoder.type != "whisper":
        return [f"encoder {spec.encoder.type} has no native transformers counterpart in Voxtral (a Whisper encoder)"]
    problems = []
    if spec.encoder.mode != "pad_to_30s":
        problems.append(
            f"encoder.mode {spec.encoder.mode}: Voxtral encodes whole padded windows (train with mode: pad_to_30s)"
        )
    hop = spec.encoder.hop_length
    if hop != HOP_LENGTH:
        problems.append(f"encoder.hop_length {hop}: Voxtral's feature extractor has Whisper's hop of {HOP_LENGTH}")
    if spec.llm.type != "vicuna":
        problems.append(f"llm {spec.llm.type} is not a Llama-family LM (vicuna), Voxtral's language model")
    if spec.projector.type != "linear-projector":
        return [*problems, f"projector {spec.projector.type}: Voxtral's projector is a linear-projector's"]
    whisper, projector = model.encoder.model.config, spec.projector
    stacking = whisper.encoder_ffn_dim / whisper.d_model
    if projector.k != stacking:
        problems.append(
            f"projector.k {projector.k}: Voxtral stacks encoder_ffn_dim / d_model = {whisper.encoder_ffn_dim} / "
            f"{whisper.d_model} frames"
        )
    elif whisper.max_source_positions % projector.k:
        problems.append(f"the window's {whisper.max_source_positions} frames are not a multiple of projector.k")
    if projector.bias:
        problems.append("projector.bias true: Voxtral's projector has no biases (train with bias: false)")
    if projector.hidden_dim != model.llm.hidden_size:
        problems.append(
            f"projector.hidden_dim {projector.hidden_dim}: Voxtral's is the LLM's hidden size {model.llm.hidden_size}"
        )
    if (2 * whisper.max_source_positions * HOP_LENGTH) % SAMPLE_RATE:
        problems.append("the encoder's window is not a whole number of seconds (the feature extractor's chunk_length)")
    return problems


def native_config(model: SlamModel, audio_token_id: int) -> Any:
    """``model``'s ``VoxtralConfig``: the Whisper encoder's dims, the LLM's own config, the projector's activation."""
    from transformers import VoxtralConfig

    whisper = model.encoder.model.config
    audio = {
        "model_type": "voxtral_encoder",
        "hidden_size": whisper.d_model,
        "intermediate_size": whisper.encoder_ffn_dim,
        "num_hidden_layers": whisper.encoder_layers,
        "num_attention_heads": whisper.encoder_attention_heads,
        "num_mel_bins": whisper.num_mel_bins,
        "max_source_positions": whisper.max_source_positions,
        "activation_function": whisper.activation_function,
        "scale_embedding": whisper.scale_embedding,
    }
    return VoxtralConfig(
        audio_config=audio,
        text_config=model.llm.model.config.to_dict(),
        audio_token_id=audio_token_id,
        projector_hidden_act=model.projector.config.activation,
    )


def native_state_dict(model: SlamModel) -> dict[str, torch.Tensor]:
    """The tensors of a merged ``model`` under Voxtral's names."""
    state = {f"model.audio_tower.{name}": t for name, t in model.encoder.model.state_dict().items()}
    state["model.multi_modal_projector.linear_1.weight"] = model.projector.linear1.weight
    state["model.multi_modal_projector.linear_2.weight"] = model.projector.linear2.weight
    causal_lm = model.llm.model
    state |= {f"model.language_model.{name}": t for name, t in causal_lm.model.state_dict().items()}
    state["lm_head.weight"] = causal_lm.lm_head.weight
    return {name: tensor.detach().contiguous() for name, tensor in state.items()}


def audio_token(model: SlamModel, requested: int | None = None) -> int:
    """The placeholder token id of the audio positions: ``requested``, or the lowest special token id that
    is not the BOS, EOS or pad token and that the prompt template does not use."""
    tokenizer = model.llm.tokenizer
    used = set(prompt_ids(model)) | {tokenizer.bos_token_id, tokenizer.eos_token_id, model.llm.pad_token_id}
    vocabulary = model.llm.model.get_input_embeddings().num_embeddings
    if requested is not None:
        if not 0 <= requested < vocabulary or requested in used:
            raise ExportError(
                f"--audio-token-id {requested}: must be a token id below {vocabulary} that is not the BOS, EOS or "
                "pad token and does not occur in the prompt"
            )
        return requested
    spare = sorted(i for i, token in tokenizer.added_tokens_decoder.items() if token.special and i not in used)
    if not spare:
        raise ExportError(
            "the tokenizer has no spare special token to mark Voxtral's audio positions; pass --audio-token-id N, "
            "a token id your prompts never contain"
        )
    return spare[0]


def prompt_ids(model: SlamModel) -> list[int]:
    """The token ids of the prompt around the audio for the task's instruction (a sample with no fields)."""
    text = model.text_inputs([{"key": "prompt"}], with_targets=False)
    return [*text.prefix_ids[0], *text.suffix_ids[0]]


def audio_positions_per_window(model: SlamModel) -> int:
    """LLM positions one padded window of audio takes."""
    whisper = model.encoder.model.config
    return whisper.max_source_positions // model.projector.k


def write(spec: PipelineSpec, model: SlamModel, staging: Path, source: dict[str, Any], audio_token_id=None) -> None:
    """Write the merged ``model`` as a Voxtral folder into the empty folder ``staging``."""
    from transformers import VoxtralForConditionalGeneration, WhisperFeatureExtractor

    token = audio_token(model, audio_token_id)
    config = native_config(model, token)
    with torch.device("meta"):
        native = VoxtralForConditionalGeneration(config)
    native.load_state_dict(native_state_dict(model), strict=True, assign=True)
    native.save_pretrained(staging)
    model.llm.tokenizer.save_pretrained(staging)
    window_s = 2 * config.audio_config.max_source_positions * HOP_LENGTH // SAMPLE_RATE
    WhisperFeatureExtractor(
        feature_size=config.audio_config.num_mel_bins,
        sampling_rate=SAMPLE_RATE,
        hop_length=HOP_LENGTH,
        chunk_length=window_s,
    ).save_pretrained(staging)
    text = model.text_inputs([{"key": "prompt"}], with_targets=False)
    record = {
        "format": FORMAT,
        "version": layout.VERSION,
        "model_class": MODEL_CLASS,
        "exported_from": source,
        "audio_token_id": token,
        "audio_positions_per_window": audio_positions_per_window(model),
        "prompt": {"prefix_ids": text.prefix_ids[0], "suffix_ids": text.suffix_ids[0]},
        "infer": spec.infer.model_dump(mode="json"),
    }
    (staging / layout.EXPORT_FILE).write_text(json.dumps(record, indent=1) + "\n")


def input_ids(record: dict[str, Any], windows: int = 1) -> torch.Tensor:
    """``[1, L]``: the exported prompt with the audio placeholders of ``windows`` padded windows in their place."""
    audio = [record["audio_token_id"]] * (record["audio_positions_per_window"] * windows)
    return torch.tensor([[*record["prompt"]["prefix_ids"], *audio, *record["prompt"]["suffix_ids"]]])
