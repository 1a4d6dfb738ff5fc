"""An LLM component over any transformers causal LM (``AutoModelForCausalLM``-style module)."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from slam_core.components import LLM, PromptParts
from slam_core.errors import ContractError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class HFCausalLM(LLM):
    """Wraps a transformers causal LM and its tokenizer.

    The default template is plain: ``[modality | instruction | target]``. Subclasses (e.g.
    the vicuna plugin) override :meth:`prompt_parts` with chat templates.
    """

    def __init__(self, model: nn.Module, tokenizer: Any):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        vocab = model.get_input_embeddings().num_embeddings
        if len(tokenizer) > vocab:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens but the model's embedding has only {vocab} rows")

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def prompt_parts(self, instruction: str) -> PromptParts:
        return PromptParts(prefix="", suffix=instruction)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)

    def model_inputs(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        """Keyword arguments of the wrapped model's forward for a teacher-forced pass."""
        return {"inputs_embeds": inputs_embeds, "attention_mask": attention_mask, "use_cache": False}

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None):
        return self.model(**self.model_inputs(inputs_embeds, attention_mask), labels=labels)

    def logits_at(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Logits at the True positions of ``keep``, the output head run on those positions only.

        Uses transformers' ``logits_to_keep`` with a boolean mask where the model takes one;
        otherwise the full forward of :class:`~slam_core.components.LLM`.
        """
        if not takes_logits_mask(self.model):
            return super().logits_at(inputs_embeds, attention_mask, keep)
        keep = keep.to(device=inputs_embeds.device, dtype=torch.bool)
        logits = self.model(**self.model_inputs(inputs_embeds, attention_mask), logits_to_keep=keep).logits
        wanted = (int(keep.sum()), logits.shape[-1])
        if tuple(logits.shape) != wanted:
            raise ContractError(f"logits_to_keep gave logits {list(logits.shape)}, expected {list(wanted)}")
        return logits

    def generate(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **options: Any) -> torch.Tensor:
        options.setdefault("pad_token_id", self.pad_token_id)
        options.setdefault("eos_token_id", self.eos_token_id)
        if not options.get("do_sample", False):
            options.pop("temperature", None)
            options.pop("top_p", None)
        return self.model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **options)


def takes_logits_mask(model: nn.Module) -> bool:
    """Whether ``model`` (a transformers causal LM, possibly wrapped by peft) takes a boolean ``logits_to_keep``."""
    from transformers import modeling_utils

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        parameters = inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return False
    return "logits_to_keep" in parameters and hasattr(modeling_utils, "slice_logits_to_keep")


def byte_tokenizer():
    """A 259-token byte-level tokenizer (``<pad>``, ``<s>``, ``</s>`` + 256 bytes), built offline."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>"]
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: index for index, token in enumerate(specials + alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
