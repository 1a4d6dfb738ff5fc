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


def save_gguf(path: Path, seed: int = 0, hidden: int = 32, layers: int = 2, heads: int = 4, kv_heads: int = 2) -> Path:
    """A tiny Llama GGUF (F32 tensors, a byte-level BPE tokenizer of 258 tokens) written with the gguf package.

    transformers reads it as it reads any GGUF: de-quantising each tensor, converting the tokenizer.
    """
    import gguf
    import numpy as np
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = [*bytes_to_unicode().values(), "ab", "<|endoftext|>"]
    inter, head, vocab = 2 * hidden, hidden // heads, len(tokens)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(128)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(vocab)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (vocab - 1) + [3])  # the last one is a control token
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(vocab - 1)
    writer.add_eos_token_id(vocab - 1)
    rng = np.random.default_rng(seed)
    shapes = {"token_embd.weight": (vocab, hidden), "output.weight": (vocab, hidden), "output_norm.weight": (hidden,)}
    for i in range(layers):
        shapes |= {f"blk.{i}.attn_norm.weight": (hidden,), f"blk.{i}.ffn_norm.weight": (hidden,)}
        shapes |= {f"blk.{i}.attn_q.weight": (hidden, hidden), f"blk.{i}.attn_output.weight": (hidden, hidden)}
        shapes |= {
            f"blk.{i}.attn_k.weight": (kv_heads * head, hidden),
            f"blk.{i}.attn_v.weight": (kv_heads * head, hidden),
        }
        shapes |= {f"blk.{i}.ffn_gate.weight": (inter, hidden), f"blk.{i}.ffn_up.weight": (inter, hidden)}
        shapes |= {f"blk.{i}.ffn_down.weight": (hidden, inter)}
    for name, shape in shapes.items():
        values = np.ones(shape) if len(shape) == 1 else rng.standard_normal(shape) * 0.1
        writer.add_tensor(name, values.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
