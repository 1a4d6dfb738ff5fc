"""Tiny pretrained-format checkpoints for tests: a Llama directory (safetensors + tokenizer files)
and the spec of a Whisper → linear projector → Llama composition over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def save_tiny_llama(directory: Path, seed: int = 0, **overrides: Any) -> Path:
    """A random 2-layer Llama (hidden 32) with the 259-token byte-level tokenizer, saved with ``save_pretrained``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from slam_core.hf_llm import byte_tokenizer

    tokenizer = byte_tokenizer()
    shape = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 64,
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(**{**shape, **overrides})).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def whisper_llama_spec(llm_dir: Path, *, window_positions: int = 100, **projector: Any) -> dict[str, Any]:
    """A random tiny Whisper (30 s windows shrunk to ``window_positions`` frames, padded as Whisper's
    extractor pads) → ``linear-projector`` (k=4) → the Llama in ``llm_dir`` + LoRA, for ASR."""
    return {
        "encoder": {
            "type": "whisper",
            "mode": "pad_to_30s",
            "dtype": "fp32",
            "shape": {
                "num_mel_bins": 80,
                "hidden_size": 16,
                "num_layers": 2,
                "num_heads": 2,
                "intermediate_size": 64,
                "max_position_embeddings": window_positions,
            },
        },
        "projector": {"type": "linear-projector", "k": 4, "hidden_dim": 32, **projector},
        "llm": {"type": "vicuna", "path": str(llm_dir), "dtype": "fp32", "template": "plain"},
        "peft": {"type": "lora", "r": 2, "alpha": 4, "dropout": 0.0},
        "task": {"type": "asr"},
        "data": {"max_duration_s": window_positions / 50, "num_workers": 0},
        "train": {"dtype": "fp32"},
        "infer": {"batch_size": 2, "max_new_tokens": 5},
    }
