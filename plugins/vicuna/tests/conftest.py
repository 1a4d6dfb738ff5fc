"""Fixtures of vicuna's tests; the checkpoint builders live in ``vicuna_testkit``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if str(Path(__file__).parent) not in sys.path:  # --import-mode=importlib: make vicuna_testkit importable
    sys.path.insert(0, str(Path(__file__).parent))

from vicuna_testkit import save_checkpoint, save_gguf


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A tiny Llama checkpoint directory, shared by the whole session (never modified)."""
    return save_checkpoint(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_reference(tiny_dir):
    """The same checkpoint loaded by plain transformers (``LlamaForCausalLM``, fp32)."""
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def tiny_llm(tiny_dir):
    """The plugin's component over ``tiny_dir`` (fp32); tests must not modify it."""
    from slam_plugin_vicuna.llm import build_vicuna
    from slam_plugin_vicuna.plugin import VicunaConfig

    return build_vicuna(VicunaConfig(path=str(tiny_dir), dtype="fp32")).eval()


@pytest.fixture(scope="session", autouse=True)
def _gguf_cache_in_a_temporary_folder(tmp_path_factory):
    """Conversions of GGUF files go to a session folder, never to the user's cache."""
    from slam_plugin_vicuna.gguf_cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("slam-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory) -> Path:
    """A tiny Llama GGUF file (F32, byte-level BPE tokenizer), shared by the session (never modified)."""
    return save_gguf(tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf")
