"""HFCausalLM generation: the prompt prefix all rows share runs once per batch, each prompt once (not once per
beam), and the tokens are transformers' own."""

from __future__ import annotations

import pytest
import torch

from slam_core.builtin import ToyLLMConfig, ToyLLMShape
from slam_core.hf_llm import generate_prompt_once, prefix_first, shared_prefix_length
from slam_core.toy import build_toy_llm

PROMPT_LENGTHS = (9, 4, 6)


@pytest.fixture(scope="module")
def llm():
    shape = ToyLLMShape(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=64)
    return build_toy_llm(ToyLLMConfig(shape=shape, dtype="fp32", seed=3)).eval()


def left_padded_embeddings(llm, lengths=PROMPT_LENGTHS, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random prompt embeddings, left-padded with embeddings of garbage, and their mask."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    embeds = torch.randn(len(lengths), width, llm.hidden_size, generator=generator)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, width - length :] = 1
    return embeds, mask


def rows_seen_by_first_layer(llm, run) -> list[tuple[int, int]]:
    """``(batch, positions)`` of every call of the LLM's first decoder layer during ``run()``."""
    seen: list[tuple[int, int]] = []
    layer = llm.model.model.layers[0]
    handle = layer.register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape[:2])))
    try:
        run()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("beams", [2, 3])
@pytest.mark.parametrize("lengths", [PROMPT_LENGTHS, (5, 5)])
def test_beam_search_from_a_shared_prompt_gives_transformers_tokens(llm, beams, lengths):
    embeds, mask = left_padded_embeddings(llm, lengths)
    options = {"max_new_tokens": 6, "num_beams": beams, "do_sample": False, "pad_token_id": llm.pad_token_id}
    with torch.no_grad():
        reference = llm.model.generate(inputs_embeds=embeds, attention_mask=mask, **options)
        ours = generate_prompt_once(llm.model, embeds, mask, **options)
    assert ours.tolist() == reference.tolist()


def test_each_prompt_runs_once_and_the_beams_only_see_new_positions(llm):
    embeds, mask = left_padded_embeddings(llm)
    width = embeds.shape[1]
    with torch.no_grad():
        seen = rows_seen_by_first_layer(llm, lambda: llm.generate(embeds, mask, max_new_tokens=4, num_beams=3))
    assert seen[0] == (3, width - 1)  # the prompt, once per row, but for its last position
    assert all(shape == (9, 1) for shape in seen[1:]), seen  # each step: one new position per beam
    with torch.no_grad():
        plain = rows_seen_by_first_layer(
            llm, lambda: llm.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=4, num_beams=3)
        )
    assert plain[0] == (9, width)  # what transformers alone runs first: every prompt once per beam


def with_shared_prefix(llm, shared: int, lengths=PROMPT_LENGTHS, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`left_padded_embeddings` whose rows all begin with the same ``shared`` embeddings."""
    embeds, mask = left_padded_embeddings(llm, lengths, seed)
    prefix = torch.randn(shared, llm.hidden_size, generator=torch.Generator().manual_seed(seed + 1))
    for row, length in enumerate(lengths):
        start = embeds.shape[1] - length
        embeds[row, start : start + shared] = prefix
    return embeds, mask


@pytest.mark.parametrize("beams", [1, 3])
@pytest.mark.parametrize("shared", [1, 3])
def test_a_shared_prefix_runs_once_per_batch_and_gives_transformers_tokens(llm, beams, shared):
    embeds, mask = with_shared_prefix(llm, shared)
    assert shared_prefix_length(embeds, mask) == shared
    width, rows = embeds.shape[1], embeds.shape[0]
    options = {"max_new_tokens": 6, "num_beams": beams, "do_sample": False, "pad_token_id": llm.pad_token_id}
    with torch.no_grad():
        reference = llm.model.generate(inputs_embeds=embeds, attention_mask=mask, **options)
    ours: list = []
    with torch.no_grad():
        seen = rows_seen_by_first_layer(
            llm, lambda: ours.append(generate_prompt_once(llm.model, embeds, mask, **options))
        )
    assert ours[0].tolist() == reference.tolist()
    assert seen[0] == (1, shared)  # the shared prefix, once for the batch
    rest = (rows, width - shared - 1) if beams > 1 else (rows, width - shared)
    assert seen[1] == rest and all(shape == (rows * beams, 1) for shape in seen[2:]), seen


def test_shared_prefix_length_and_prefix_first():
    embeds = torch.tensor([[[9.0], [1.0], [2.0], [5.0]], [[1.0], [2.0], [3.0], [6.0]]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    assert shared_prefix_length(embeds, mask) == 2
    moved, moved_mask = prefix_first(embeds, mask, 2)
    assert moved[:, :, 0].tolist() == [[1.0, 2.0, 9.0, 5.0], [1.0, 2.0, 3.0, 6.0]]
    assert moved_mask.tolist() == [[1, 1, 0, 1], [1, 1, 1, 1]]
    assert shared_prefix_length(embeds[:, :, :] * torch.tensor([[[1.0]], [[2.0]]]), mask) == 0
    same = torch.ones(2, 3, 1)  # identical rows: all but the last position is shared
    assert shared_prefix_length(same, torch.ones(2, 3, dtype=torch.long)) == 2


def test_greedy_decoding_and_right_padding_go_straight_to_generate(llm):
    embeds, mask = left_padded_embeddings(llm)
    with torch.no_grad():
        seen = rows_seen_by_first_layer(llm, lambda: llm.generate(embeds, mask, max_new_tokens=3))
        assert seen[0] == (3, embeds.shape[1])
        right = mask.flip(1)
        seen = rows_seen_by_first_layer(
            llm, lambda: generate_prompt_once(llm.model, embeds, right, max_new_tokens=3, num_beams=2)
        )
    assert seen[0] == (6, embeds.shape[1])
