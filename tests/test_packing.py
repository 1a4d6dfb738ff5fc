"""Sequence packing (slam_core.packing, train.pack_sequences): rows filled without overflow, every
real position placed exactly once, and the packed model's loss, logits and gradients equal the
padded model's (they would not if one sample attended to another)."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support.synthetic import TOY_SPEC
from support.tiny_models import save_tiny_llama

from slam_core import packing
from slam_core.components import LLM
from slam_core.errors import SpecError
from slam_core.hf_llm import HFCausalLM
from slam_core.model import build_model
from slam_core.spec import validate_spec

SPEC = {section: TOY_SPEC[section] for section in ("encoder", "projector", "llm", "peft", "task")}
N_MELS = SPEC["encoder"]["shape"]["num_mel_bins"]

lengths_st = st.lists(st.integers(0, 12), min_size=1, max_size=8)


@settings(max_examples=200, deadline=None)
@given(lengths=lengths_st, extra=st.integers(0, 10))
def test_first_fit_decreasing_places_every_sample_once_within_capacity(lengths, extra):
    capacity = max(max(lengths), 1) + extra
    rows = packing.first_fit_decreasing(lengths, capacity)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= capacity for row in rows)
    # First fit: no sample could have gone into an earlier row than its own.
    for r, row in enumerate(rows):
        for later in rows[r + 1 :]:
            assert all(sum(lengths[i] for i in row) + lengths[j] > capacity for j in later)


def test_first_fit_decreasing_known_case_and_refusals():
    assert packing.first_fit_decreasing([4, 2, 6, 1], 6) == [[2], [0, 1], [3]]
    assert packing.first_fit_decreasing([3, 3, 3], 6) == [[0, 1], [2]]
    with pytest.raises(ValueError, match="samples of 7 tokens do not fit packed rows of 6"):
        packing.first_fit_decreasing([7, 1], 6)
    with pytest.raises(ValueError, match="capacity of at least 1"):
        packing.first_fit_decreasing([0], 0)


@settings(max_examples=200, deadline=None)
@given(lengths=lengths_st, pad=st.integers(0, 3), capacity=st.none() | st.integers(1, 30))
def test_pack_keeps_each_sample_whole_in_order_and_numbered_from_zero(lengths, pad, capacity):
    from transformers.masking_utils import find_packed_sequence_indices

    width = max(lengths) + pad
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    rows = packing.pack(mask, capacity)
    grid = torch.arange(len(lengths) * width).reshape(len(lengths), width)
    packed = rows.gather(grid, fill=-1)
    assert packed.shape[0] <= len(lengths) and packed.shape[1] <= max(capacity or 0, max(lengths), 1)
    real = packed[packed >= 0]
    assert sorted(real.tolist()) == grid[mask.bool()].tolist()  # every real position exactly once
    # What transformers reads off the positions (None: one sequence a row).
    sequence = find_packed_sequence_indices(rows.position_ids) if packed.shape[1] else None
    sequence = torch.zeros_like(packed) if sequence is None else sequence
    for r, row in enumerate(rows.rows):
        start = 0
        for b in row:
            n = lengths[b]
            assert packed[r, start : start + n].tolist() == grid[b, :n].tolist()
            assert rows.position_ids[r, start : start + n].tolist() == list(range(n))
            if n:  # one sequence id for the whole sample, and none shared with its neighbours
                ids = sequence[r, start : start + n]
                assert (ids == ids[0]).all()
                assert not (sequence[r, :start] == ids[0]).any() and not (sequence[r, start + n :] == ids[0]).any()
            start += n


def test_pack_refuses_a_left_padded_batch():
    with pytest.raises(ValueError, match="right-padded batch"):
        packing.pack(torch.tensor([[0, 1, 1], [1, 1, 1]]))


def test_original_order_undoes_the_packing():
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]])
    keep = torch.tensor([[0, 1, 1, 0, 0], [0, 0, 1, 1, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    rows = packing.pack(mask)
    packed_keep = rows.gather(keep, fill=False)
    values = rows.gather(torch.arange(15).reshape(3, 5), fill=-1)[packed_keep]
    assert values[rows.original_order(packed_keep)].tolist() == torch.arange(15).reshape(3, 5)[keep].tolist()


# ----------------------------------------------------------------------------- the model


def _spec(llm: dict | None = None, **train):
    data = copy.deepcopy(SPEC)
    if llm is not None:
        data["llm"] = llm
    data["train"] = {"dtype": "fp32", **train}
    return validate_spec(data)


def _pair(llm: dict | None, attention: str, **pack):
    torch.manual_seed(0)
    padded = build_model(_spec(llm))
    packed = build_model(_spec(llm, pack_sequences=True, **pack))
    packed.load_state_dict(padded.state_dict())
    for model in (padded, packed):
        model.llm.model.set_attn_implementation(attention)
        with torch.no_grad():  # LoRA's B starts at zero: give the adapter something to say
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.copy_(torch.linspace(-0.5, 0.5, parameter.numel()).reshape(parameter.shape))
    return padded.train(), packed.train()


def _run(model, features, n, text):
    model.zero_grad(set_to_none=True)
    out = model(features, n, text)
    out.loss.backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return out, grads


@pytest.fixture(scope="module")
def vicuna_llm(tmp_path_factory):
    return {"type": "vicuna", "path": str(save_tiny_llama(tmp_path_factory.mktemp("llama"))), "dtype": "fp32"}


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("which", ["toy-llm", "vicuna"])
@pytest.mark.parametrize("pack_tokens", [None, 1000], ids=["rows-of-the-longest", "rows-of-1000"])
def test_packed_loss_logits_and_gradients_equal_the_padded_ones(which, attention, pack_tokens, vicuna_llm):
    llm = vicuna_llm if which == "vicuna" else None
    padded, packed = _pair(llm, attention, pack_tokens=pack_tokens)
    generator = torch.Generator().manual_seed(3)
    frames = [240, 9, 30, 17, 12]
    features = torch.randn(len(frames), max(frames), N_MELS, generator=generator)
    n = torch.tensor(frames)
    samples = [{"key": f"u{b}", "target": t} for b, t in enumerate(["one two", "x", "three four five", "six", "ab"])]
    text = padded.text_inputs(samples)
    calls = []
    handle = packed.llm.model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(kwargs["inputs_embeds"].shape), with_kwargs=True
    )
    reference, reference_grads = _run(padded, features, n, text)
    ours, our_grads = _run(packed, features, n, text)
    handle.remove()
    rows = calls[0][0]
    assert rows < len(frames) if pack_tokens else rows <= len(frames), f"packed rows {list(calls[0])}"
    torch.testing.assert_close(ours.logits, reference.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.loss, reference.loss, atol=1e-6, rtol=1e-6)
    assert float(ours.token_accuracy) == float(reference.token_accuracy)
    assert our_grads.keys() == reference_grads.keys() and any("lora_A" in name for name in our_grads)
    for name, grad in our_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(grad, reference_grads[name], atol=1e-6, rtol=1e-5, msg=name)


def test_an_llm_that_cannot_pack_is_refused_at_build(monkeypatch):
    monkeypatch.setattr(HFCausalLM, "packed_logits_at", LLM.packed_logits_at)
    with pytest.raises(SpecError) as error:
        build_model(_spec(pack_sequences=True))
    assert (
        str(error.value)
        .splitlines()[-1]
        .strip()
        .endswith(
            "train.pack_sequences: the llm 'toy-llm' cannot run packed rows (its component does not implement "
            "packed_logits_at); set train.pack_sequences: false"
        )
    )


# ----------------------------------------------------------------------------- through the trainer


def _train_losses(tmp_path, name: str, **train) -> list[float]:
    from support.synthetic import toy_spec, train_synthetic

    spec = toy_spec(train={"epochs": 1, **train})
    return train_synthetic(spec, tmp_path / name, batches=3, batch_size=4).losses


def test_training_with_packed_rows_takes_the_same_steps(tmp_path):
    padded = _train_losses(tmp_path, "padded")
    packed = _train_losses(tmp_path, "packed", pack_sequences=True, pack_tokens=400)
    assert len(packed) == len(padded) == 3
    assert packed == pytest.approx(padded, rel=1e-5)


@pytest.mark.slow
def test_compiled_layers_take_the_same_steps(tmp_path):
    from slam_core.runtime.train.engines.native import repeated_blocks

    spec = validate_spec({**copy.deepcopy(SPEC), "train": {"dtype": "fp32"}})
    assert [type(b).__name__ for b in repeated_blocks(build_model(spec))] == ["LlamaDecoderLayer"] * 2
    eager = _train_losses(tmp_path, "eager")
    compiled = _train_losses(tmp_path, "compiled", compile=True)
    assert compiled == pytest.approx(eager, rel=1e-4)
