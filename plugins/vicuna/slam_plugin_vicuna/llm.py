"""The ``vicuna`` LLM component: a Llama-family transformers causal LM, its tokenizer and template."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from slam_core.components import PromptParts
from slam_core.configs import torch_dtype
from slam_core.errors import CheckpointError
from slam_core.hf_llm import HFCausalLM, generate_prompt_once, position_ids
from slam_plugin_vicuna import loading, templates
from slam_plugin_vicuna.generation import decoding
from slam_plugin_vicuna.plugin import VicunaConfig


class VicunaLLM(HFCausalLM):
    """A causal LM with a pad token chosen by the config, prompt templates and spec-driven decoding.

    ``source`` and ``tokenizer_source`` name where the model and the tokenizer came from; error
    messages quote them.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: VicunaConfig,
        source: str = "<model>",
        tokenizer_source: str = "<tokenizer>",
    ):
        check_vocabulary(model.get_input_embeddings().num_embeddings, tokenizer, source, tokenizer_source)
        _choose_pad_token(tokenizer, config.pad_token, tokenizer_source)
        super().__init__(model, tokenizer)
        self.config = config
        self.source, self.tokenizer_source = source, tokenizer_source

    @property
    def eos_token_ids(self) -> list[int]:
        """Every token that ends generation: the tokenizer's EOS and the model's generation-config EOS."""
        ids = {self.eos_token_id}
        extra = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update([extra] if isinstance(extra, int) else list(extra or []))
        return sorted(ids)

    def tokenize(self, text: str, *, special: bool = False) -> list[int]:
        """Token ids of ``text`` adding no BOS/EOS; with ``special`` (prompt templates) special tokens count.

        The ``vicuna_v1_1`` and ``plain`` templates start the prefix with the BOS token when the
        tokenizer adds one by itself; it is split off and the rest tokenized as a text of its own,
        exactly as ``tokenizer(rest)`` would (a Llama tokenizer then keeps the word-start marker
        of the first word). The ``chat`` template is tokenized whole, as transformers does.
        """
        bos = self.tokenizer.bos_token
        if special and bos and self.config.template != "chat" and text.startswith(bos):
            return [int(self.tokenizer.bos_token_id), *super().tokenize(text[len(bos) :], special=True)]
        return super().tokenize(text, special=special)

    def prompt_parts(self, instruction: str) -> PromptParts:
        return templates.prompt_parts(
            self.config.template,
            instruction,
            modality_position=self.config.modality_position,
            system_prompt=self.config.system_prompt,
            tokenizer=self.tokenizer,
        )

    def model_inputs(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        """Teacher-forced inputs; positions count real tokens only, so any padding side gives the same logits."""
        self._check_inputs(inputs_embeds, attention_mask)
        return {**super().model_inputs(inputs_embeds, attention_mask), "position_ids": position_ids(attention_mask)}

    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **options: Any) -> torch.Tensor:
        """New token ids ``[B, N]``; ``options`` are InferSpec's decoding fields (unset ones: its defaults).

        The batch should be left-padded; any other layout is first moved to the left-padded one.
        """
        self._check_inputs(inputs_embeds, attention_mask)
        inputs_embeds, attention_mask = left_align(inputs_embeds, attention_mask)
        config, processors = decoding(options, pad_token_id=self.pad_token_id, eos_token_ids=self.eos_token_ids)
        return generate_prompt_once(
            self.model, inputs_embeds, attention_mask, generation_config=config, logits_processor=processors
        )

    def _check_inputs(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> None:
        if inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.hidden_size:
            raise ValueError(
                f"inputs_embeds must be [batch, length, {self.hidden_size}] (the LLM's hidden size), "
                f"got {list(inputs_embeds.shape)}"
            )
        if attention_mask.shape != inputs_embeds.shape[:2]:
            raise ValueError(
                f"attention_mask {list(attention_mask.shape)} does not match "
                f"inputs_embeds {list(inputs_embeds.shape[:2])}"
            )


def left_align(inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Move each row's real positions to its end, in order (padding first): left padding."""
    order = torch.sort(attention_mask.long(), dim=1, stable=True).indices
    embeds = torch.gather(inputs_embeds, 1, order[..., None].expand_as(inputs_embeds))
    return embeds, torch.gather(attention_mask, 1, order)


def check_vocabulary(rows: int, tokenizer: Any, source: str, tokenizer_source: str) -> None:
    """Refuse a tokenizer with more tokens than the model has embedding rows."""
    if len(tokenizer) > rows:
        raise CheckpointError(
            f"vicuna: the tokenizer {tokenizer_source!r} has {len(tokenizer)} tokens but the model {source!r} "
            f"has only {rows} embedding rows (vocab_size {rows}); use the tokenizer that belongs to the model"
        )


def _choose_pad_token(tokenizer: Any, choice: str, tokenizer_source: str) -> None:
    """Pad with the EOS or UNK token (Llama tokenizers define no pad token); padding is always masked."""
    if tokenizer.eos_token is None:
        raise CheckpointError(f"vicuna: the tokenizer {tokenizer_source!r} has no EOS token, so generation cannot stop")
    token = tokenizer.eos_token if choice == "eos" else tokenizer.unk_token
    if token is None:
        raise CheckpointError(
            f"vicuna: pad_token: {choice} but the tokenizer {tokenizer_source!r} has no {choice} token; "
            "use pad_token: eos"
        )
    tokenizer.pad_token = token


def enable_checkpointing(model: nn.Module) -> None:
    """Recompute each decoder layer's activations in the backward pass (non-reentrant checkpointing)."""
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


def build_vicuna(config: VicunaConfig) -> VicunaLLM:
    """Factory of the ``vicuna`` component (see :mod:`slam_plugin_vicuna.loading` for the sources)."""
    source = loading.cached_gguf(loading.ModelSource.of(config))
    hf_config = loading.hf_config(source, config.architecture() if config.is_shell() else None)
    if not loading.on_meta_device():
        loading.require_weights(source)
    tokenizer, tokenizer_source = loading.load_tokenizer(config, source)
    check_vocabulary(hf_config.vocab_size, tokenizer, source.label, tokenizer_source)  # before reading weights
    if config.template == "chat" and tokenizer_source != loading.STAND_IN_TOKENIZER:
        templates.prompt_parts(
            "chat", "", modality_position="before_instruction", system_prompt=None, tokenizer=tokenizer
        )
    model = loading.build_model(source, hf_config, torch_dtype(config.dtype))
    if config.gradient_checkpointing:
        enable_checkpointing(model)
    return VicunaLLM(model, tokenizer, config, source.label, tokenizer_source)
