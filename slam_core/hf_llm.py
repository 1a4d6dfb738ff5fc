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
        return self._logits_where(self.model_inputs(inputs_embeds, attention_mask), keep)

    def packed_logits_at(
        self, inputs_embeds: torch.Tensor, position_ids: torch.Tensor, keep: torch.Tensor
    ) -> torch.Tensor:
        """Logits at ``keep`` over packed rows: no 2-D attention mask, so transformers reads the
        samples' boundaries off ``position_ids`` (block-diagonal causal masks; varlen flash-attention)."""
        inputs = {"inputs_embeds": inputs_embeds, "position_ids": position_ids.to(inputs_embeds.device)}
        inputs.update(attention_mask=None, use_cache=False)
        if not takes_logits_mask(self.model):
            return self.model(**inputs).logits[keep.to(inputs_embeds.device)]
        return self._logits_where(inputs, keep)

    def _logits_where(self, inputs: dict[str, Any], keep: torch.Tensor) -> torch.Tensor:
        keep = keep.to(device=inputs["inputs_embeds"].device, dtype=torch.bool)
        logits = self.model(**inputs, logits_to_keep=keep).logits
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
        return generate_prompt_once(self.model, inputs_embeds, attention_mask, **options)


def generate_prompt_once(
    model: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, **generate_kwargs: Any
) -> torch.Tensor:
    """``model.generate`` from left-padded embeddings, running each prompt position as few times as it must.

    transformers runs every prompt ``num_beams`` times over, and the part all rows share (a chat
    template's system prompt before the audio) once per row. Here the shared prefix runs once
    for the whole batch and its key/value cache is repeated for the rows (each row's padding
    moved behind the prefix, so that the prefix sits at the same cache positions in every
    row); with beams, the rest of each prompt but its last position runs once per row and the
    cache is repeated for the beams. ``generate`` continues from that cache: the same tokens as
    transformers alone. A batch with nothing shared and no beams goes straight to ``generate``.
    """
    config = generate_kwargs.get("generation_config")
    beams = int(generate_kwargs.get("num_beams", getattr(config, "num_beams", 1) or 1))
    left_padded = bool(attention_mask[:, -1].all())
    if inputs_embeds.shape[1] < 2 or not left_padded:
        return model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **generate_kwargs)
    rows = inputs_embeds.shape[0]
    shared = shared_prefix_length(inputs_embeds, attention_mask) if rows > 1 else 0
    if beams <= 1 and shared == 0:
        return model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **generate_kwargs)
    from transformers import DynamicCache

    inputs_embeds, attention_mask = prefix_first(inputs_embeds, attention_mask, shared)
    parameters = forward_parameters(model)
    cache = {("cache" if "cache" in parameters else "past_key_values"): DynamicCache(config=model.config)}
    head = {"logits_to_keep": 1} if "logits_to_keep" in parameters else {}
    positions = position_ids(attention_mask)
    done = 0
    if shared:
        prefix = {"inputs_embeds": inputs_embeds[:1, :shared], "attention_mask": attention_mask[:1, :shared]}
        model(**prefix, position_ids=positions[:1, :shared], use_cache=True, **head, **cache)
        next(iter(cache.values())).batch_repeat_interleave(rows)
        done = shared
    if beams > 1:
        rest = {"inputs_embeds": inputs_embeds[:, done:-1], "attention_mask": attention_mask[:, :-1]}
        model(**rest, position_ids=positions[:, done:-1], use_cache=True, **head, **cache)
        next(iter(cache.values())).batch_repeat_interleave(beams)
    return model.generate(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **cache, **generate_kwargs)


def shared_prefix_length(inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> int:
    """How many leading real positions every row of a left-padded batch has in common (equal
    embeddings), short of each row's last position."""
    lengths = attention_mask.long().sum(1)
    longest_possible = int(lengths.min()) - 1
    if longest_possible < 1:
        return 0
    starts = inputs_embeds.shape[1] - lengths
    index = (starts[:, None] + torch.arange(longest_possible, device=starts.device)[None, :]).to(inputs_embeds.device)
    leading = torch.gather(inputs_embeds, 1, index[..., None].expand(-1, -1, inputs_embeds.shape[-1]))
    same = (leading == leading[:1]).all(-1).all(0)
    return int(same.long().cumprod(0).sum())


def prefix_first(
    inputs_embeds: torch.Tensor, attention_mask: torch.Tensor, shared: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each left-padded row with its first ``shared`` real positions moved before its padding:
    ``[prefix | padding | rest]``, so the prefix sits at positions ``0 .. shared - 1`` of every row."""
    if shared == 0:
        return inputs_embeds, attention_mask
    width = attention_mask.shape[1]
    starts = (width - attention_mask.long().sum(1)).tolist()
    order = torch.stack(
        [torch.cat([torch.arange(s, s + shared), torch.arange(s), torch.arange(s + shared, width)]) for s in starts]
    ).to(inputs_embeds.device)
    embeds = torch.gather(inputs_embeds, 1, order[..., None].expand_as(inputs_embeds))
    return embeds, torch.gather(attention_mask, 1, order.to(attention_mask.device))


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """0, 1, 2, ... over the real positions of each row (padding gets 0), as generate() computes them."""
    mask = attention_mask.long()
    return (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)


def forward_parameters(model: nn.Module) -> Any:
    """The parameters of the forward of ``model`` (a transformers causal LM, possibly wrapped by peft)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        return inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return {}


def takes_logits_mask(model: nn.Module) -> bool:
    """Whether ``model`` (a transformers causal LM, possibly wrapped by peft) takes a boolean ``logits_to_keep``."""
    from transformers import modeling_utils

    return "logits_to_keep" in forward_parameters(model) and hasattr(modeling_utils, "slice_logits_to_keep")


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
