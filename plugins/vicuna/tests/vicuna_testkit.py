"""Tiny Llama checkpoints for vicuna's tests, saved in the real on-disk format (safetensors + tokenizer files).

Every model here has random weights, is written with ``save_pretrained`` and is read back by
the plugin through transformers' own loading code.
"""

from __future__ import annotations

import string
from pathlib import Path

import torch

#: A Zephyr-style chat template for the tiny tokenizer (the real ones are tested on SmolLM2).
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 64,
    "vocab_size": 352,
}


def tiny_tokenizer(chat_template: str | None = CHAT_TEMPLATE):
    """A Llama tokenizer (byte fallback, ``▁`` word marker, BOS added) over ASCII characters: 330 tokens."""
    from transformers import LlamaTokenizer

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"<0x{byte:02X}>": 3 + byte for byte in range(256)})
    for piece in ["▁", *string.ascii_letters, *string.digits, *".,:;!?'-"]:
        vocab.setdefault(piece, len(vocab))
    tokenizer = LlamaTokenizer(vocab=vocab, merges=[], add_bos_token=True)
    tokenizer.chat_template = chat_template
    return tokenizer


def tiny_model(seed: int = 0, **overrides):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**{**TINY, **overrides}, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).eval()


def save_checkpoint(directory: Path, model=None, tokenizer=None) -> Path:
    """``model`` (default: a tiny one) and ``tokenizer`` (default: the tiny one) saved to ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (model if model is not None else tiny_model()).save_pretrained(directory)
    (tokenizer if tokenizer is not None else tiny_tokenizer()).save_pretrained(directory)
    return directory
