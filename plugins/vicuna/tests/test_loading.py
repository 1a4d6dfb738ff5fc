"""vicuna: loading from directories (safetensors, weights-only .bin), dtypes, the meta device, bad input."""

from __future__ import annotations

import json
import re

import pytest
import torch
from slam_plugin_vicuna.llm import VicunaLLM, build_vicuna, position_ids
from slam_plugin_vicuna.plugin import VicunaConfig
from vicuna_testkit import save_checkpoint, tiny_model, tiny_tokenizer

from slam_core.errors import CheckpointError


def build(**fields) -> VicunaLLM:
    return build_vicuna(VicunaConfig(dtype="fp32", **fields))


def text_batch(llm: VicunaLLM, texts, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of ``texts`` (with BOS) padded on ``side``, and the attention mask."""
    rows = [llm.tokenizer(text)["input_ids"] for text in texts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), llm.pad_token_id)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for index, row in enumerate(rows):
        span = slice(width - len(row), width) if side == "left" else slice(0, len(row))
        ids[index, span], mask[index, span] = torch.tensor(row), 1
    return ids, mask


TEXTS = ("hello world", "USER: transcribe this, please. ASSISTANT:", "a")


def test_logits_equal_plain_transformers(tiny_llm, tiny_reference):
    ids, mask = text_batch(tiny_llm, TEXTS)
    with torch.no_grad():
        ours = tiny_llm(tiny_llm.embed(ids), mask).logits
        reference = tiny_reference(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    assert ours.dtype == reference.dtype == torch.float32
    assert (ours[real] - reference[real]).abs().max() <= 1e-5


def test_loss_equals_plain_transformers(tiny_llm, tiny_reference):
    ids, mask = text_batch(tiny_llm, TEXTS)
    labels = ids.masked_fill(mask == 0, -100)
    with torch.no_grad():
        ours = tiny_llm(tiny_llm.embed(ids), mask, labels).loss
        reference = tiny_reference(input_ids=ids, attention_mask=mask, labels=labels).loss
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=1e-6)


def test_left_and_right_padding_give_the_same_logits(tiny_llm):
    right_ids, right_mask = text_batch(tiny_llm, TEXTS, "right")
    left_ids, left_mask = text_batch(tiny_llm, TEXTS, "left")
    with torch.no_grad():
        right = tiny_llm(tiny_llm.embed(right_ids), right_mask).logits[right_mask.bool()]
        left = tiny_llm(tiny_llm.embed(left_ids), left_mask).logits[left_mask.bool()]
    torch.testing.assert_close(left, right, atol=1e-5, rtol=1e-5)


def test_position_ids_count_real_tokens():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]])
    assert position_ids(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 0]]


def test_sdpa_attention_and_the_requested_dtype(tiny_dir):
    llm = build_vicuna(VicunaConfig(path=str(tiny_dir), dtype="bf16"))
    assert llm.model.config._attn_implementation == "sdpa"
    assert {p.dtype for p in llm.parameters()} == {torch.bfloat16}


def test_auto_dtype_is_bf16_only_with_cuda(monkeypatch):
    from slam_core.configs import torch_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_dtype("auto") is torch.float32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert torch_dtype("auto") is torch.bfloat16
    assert torch_dtype("fp16") is torch.float16


def test_pickled_bin_weights_load_weights_only(tmp_path, tiny_dir):
    model = tiny_model(seed=3)
    model.config.save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    llm = build(path=str(tmp_path))
    for name, tensor in model.state_dict().items():
        assert torch.equal(llm.model.state_dict()[name], tensor), name


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_bin_with_code_is_refused(tmp_path, capsys):
    model = tiny_model()
    model.config.save_pretrained(tmp_path)
    tiny_tokenizer().save_pretrained(tmp_path)
    torch.save({**model.state_dict(), "payload": _Payload()}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"refusing the pickled weights in .*weights_only=True.*safetensors"):
        build(path=str(tmp_path))
    assert "this must never run" not in capsys.readouterr().out


def test_gradient_checkpointing_gives_the_same_gradients(tiny_dir):
    grads = []
    for checkpointing in (False, True):
        llm = build(path=str(tiny_dir), gradient_checkpointing=checkpointing).train()
        assert llm.model.is_activation_checkpointing is checkpointing
        ids, mask = text_batch(llm, TEXTS)
        llm(llm.embed(ids), mask, ids.masked_fill(mask == 0, -100)).loss.backward()
        grads.append({name: p.grad.clone() for name, p in llm.named_parameters()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-5, msg=name)


# -- pad and EOS ------------------------------------------------------------------------------
def test_pad_token_is_eos_by_default(tiny_llm):
    assert tiny_llm.tokenizer.pad_token == tiny_llm.tokenizer.eos_token == "</s>"
    assert tiny_llm.pad_token_id == tiny_llm.eos_token_id == tiny_llm.tokenizer.convert_tokens_to_ids("</s>")


def test_pad_token_unk(tiny_dir):
    llm = build(path=str(tiny_dir), pad_token="unk")
    assert llm.pad_token_id == llm.tokenizer.convert_tokens_to_ids("<unk>") != llm.eos_token_id


def test_pad_token_unk_without_an_unk_token_is_refused():
    tokenizer = tiny_tokenizer()
    tokenizer.unk_token = None
    with pytest.raises(CheckpointError, match="pad_token: unk but the tokenizer 'tok' has no unk token"):
        VicunaLLM(tiny_model(), tokenizer, VicunaConfig(pad_token="unk"), "m", "tok")


# -- the meta device: shells, no weights read --------------------------------------------------
def llama_parameters(hidden, layers, intermediate, vocab, kv_heads_ratio=1, tied=False):
    """Parameters of a Llama model (no biases): embeddings, attention, MLP, norms, LM head."""
    kv = hidden // kv_heads_ratio
    per_layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate + 2 * hidden
    return vocab * hidden * (1 if tied else 2) + layers * per_layer + hidden


def test_shape_builds_an_empty_shell_on_meta():
    shape = {"hidden_size": 4096, "num_layers": 32, "num_heads": 32, "intermediate_size": 11008}
    with torch.device("meta"):
        llm = build_vicuna(VicunaConfig(shape=shape, dtype="bf16"))
    assert {p.device.type for p in llm.parameters()} == {"meta"}
    assert sum(p.numel() for p in llm.parameters()) == llama_parameters(4096, 32, 11008, 32000)
    assert llm.hidden_size == 4096 and "stand-in" in llm.tokenizer_source


def test_shape_with_grouped_query_attention_and_tied_embeddings():
    shape = {"hidden_size": 64, "num_layers": 3, "num_heads": 8, "num_kv_heads": 2, "intermediate_size": 96}
    with torch.device("meta"):
        llm = build_vicuna(VicunaConfig(shape={**shape, "vocab_size": 500, "tie_word_embeddings": True}))
    assert sum(p.numel() for p in llm.parameters()) == llama_parameters(64, 3, 96, 500, kv_heads_ratio=4, tied=True)


def test_shape_outside_meta_is_refused():
    shape = {"hidden_size": 64, "num_layers": 1, "num_heads": 4, "intermediate_size": 96}
    with pytest.raises(
        CheckpointError,
        match=r"vicuna: llm\.size / llm\.shape have no weights; they build only an empty shell on the meta",
    ):
        build_vicuna(VicunaConfig(shape=shape))


def test_meta_build_from_a_directory_reads_no_weights(tmp_path, tiny_dir):
    broken = save_checkpoint(tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(Exception):  # noqa: B017 - outside meta the (broken) weights are read
        build(path=str(broken))
    with torch.device("meta"):
        shell = build(path=str(broken))
    assert {p.device.type for p in shell.parameters()} == {"meta"}
    assert shell.tokenizer_source == str(broken)
    expected = sum(p.numel() for p in build(path=str(tiny_dir)).parameters())
    assert sum(p.numel() for p in shell.parameters()) == expected


def test_config_json_alone_is_a_shell_on_meta_and_refused_elsewhere(tmp_path):
    tiny_model().config.save_pretrained(tmp_path)
    with torch.device("meta"):
        shell = build(path=str(tmp_path))
    assert "stand-in" in shell.tokenizer_source
    with pytest.raises(CheckpointError, match=r"has a config.json but no weights .*model\.safetensors"):
        build(path=str(tmp_path))


# -- bad input ---------------------------------------------------------------------------------
def write_config(directory, **config):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return directory


@pytest.mark.parametrize("model_type", ["gpt2", "whisper", None])
def test_other_architectures_are_refused(tmp_path, model_type):
    directory = write_config(tmp_path / "other", model_type=model_type)
    message = rf"{re.escape(str(directory))}' holds a {model_type!r} model, not a Llama-family causal LM"
    with pytest.raises(CheckpointError, match=message):
        build(path=str(directory))


def test_a_real_gpt2_directory_is_refused(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    GPT2LMHeadModel(GPT2Config(n_embd=16, n_layer=1, n_head=2, vocab_size=64)).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="holds a 'gpt2' model, not a Llama-family"):
        build(path=str(tmp_path))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp, "has no config.json, so it is not a Hugging Face model directory"),
        (lambda tmp: tmp / "missing", "does not exist; set llm.path"),
        (lambda tmp: _file(tmp / "model.gguf"), r"is a file, not a model directory \(for a .gguf file use llm.gguf\)"),
        (lambda tmp: _file(write_config(tmp / "m") / "config.json", "{oops") and tmp / "m", "is not a JSON object"),
    ],
)
def test_bad_paths_are_refused(tmp_path, make, message):
    with pytest.raises(CheckpointError, match=message):
        build(path=str(make(tmp_path)))


def _file(path, text="x"):
    path.write_text(text)
    return path


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path, tiny_dir):
    small = save_checkpoint(tmp_path / "small", model=tiny_model(vocab_size=300))
    message = (
        rf"tokenizer '{re.escape(str(small))}' has 330 tokens but the model '{re.escape(str(small))}' has only 300"
    )
    with pytest.raises(CheckpointError, match=message):
        build(path=str(small))
    with pytest.raises(CheckpointError, match=r"has 330 tokens but the model .* has only 300 embedding rows"):
        VicunaLLM(tiny_model(vocab_size=300), tiny_tokenizer(), VicunaConfig())


def test_tokenizer_from_another_directory(tmp_path, tiny_dir):
    bare = tmp_path / "weights-only"
    tiny_model().save_pretrained(bare)
    with pytest.raises(CheckpointError, match=r"has no tokenizer files .*set llm\.tokenizer"):
        build(path=str(bare))
    llm = build(path=str(bare), tokenizer=str(tiny_dir))
    assert llm.tokenizer_source == str(tiny_dir)
    with pytest.raises(CheckpointError, match="is not a tokenizer directory"):
        build(path=str(bare), tokenizer=str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "is not a file; give the path of a .gguf file"), (b"GGUF? no", "cannot read the GGUF file")],
)
def test_bad_gguf_files_are_refused(tmp_path, content, message):
    path = tmp_path / "model.gguf"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        build(gguf=str(path))


def test_gguf_must_end_in_gguf(tmp_path):
    with pytest.raises(CheckpointError, match=r"does not end in \.gguf"):
        build(gguf=str(_file(tmp_path / "model.bin")))
