"""vicuna: generation from embeddings, batched with left padding, with InferSpec's options."""

from __future__ import annotations

import pytest
import torch
from slam_plugin_vicuna.generation import GENERATION_OPTIONS, decoding
from slam_plugin_vicuna.llm import build_vicuna, left_align
from slam_plugin_vicuna.plugin import VicunaConfig

from slam_core.spec import InferSpec

PROMPTS = ("hello world", "USER: say something. ASSISTANT:", "ok")
DECODERS = {
    "greedy": {"max_new_tokens": 7},
    "beam": {"max_new_tokens": 7, "num_beams": 3},
    "penalties": {"max_new_tokens": 7, "repetition_penalty": 1.5, "no_repeat_ngram_size": 2},
}


def left_padded(llm, prompts=PROMPTS) -> tuple[torch.Tensor, torch.Tensor]:
    rows = [llm.tokenizer(text)["input_ids"] for text in prompts]
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), llm.pad_token_id)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, width - len(row) :], mask[index, width - len(row) :] = torch.tensor(row), 1
    return ids, mask


def generate_ids(llm, ids, mask, **options) -> torch.Tensor:
    with torch.no_grad():
        return llm.generate(llm.embed(ids), mask, **options)


def strip_padding(tokens: torch.Tensor, pad: int) -> list[int]:
    values = tokens.tolist()
    while values and values[-1] == pad:
        values.pop()
    return values


@pytest.mark.parametrize("decoder", DECODERS)
def test_batched_left_padded_generation_equals_each_sample_alone(tiny_llm, decoder):
    ids, mask = left_padded(tiny_llm)
    batched = generate_ids(tiny_llm, ids, mask, **DECODERS[decoder])
    for row in range(len(PROMPTS)):
        real = mask[row].bool()
        alone = generate_ids(tiny_llm, ids[row : row + 1, real], mask[row : row + 1, real], **DECODERS[decoder])
        pad = tiny_llm.pad_token_id
        assert strip_padding(batched[row], pad) == strip_padding(alone[0], pad), (decoder, row)


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
def test_generating_from_embeddings_equals_generating_from_ids(tiny_llm, tiny_reference, decoder):
    ids, mask = left_padded(tiny_llm)
    options = DECODERS[decoder]
    ours = generate_ids(tiny_llm, ids, mask, **options)
    with torch.no_grad():
        reference = tiny_reference.generate(
            input_ids=ids,
            attention_mask=mask,
            do_sample=False,
            pad_token_id=tiny_llm.pad_token_id,
            eos_token_id=tiny_llm.eos_token_id,
            **options,
        )[:, ids.shape[1] :]
    assert ours.tolist() == reference.tolist()


def test_right_padding_is_moved_to_the_left(tiny_llm):
    ids, mask = left_padded(tiny_llm)
    embeds = tiny_llm.embed(ids)
    shift = [int(n) for n in (mask == 0).sum(1)]
    right = torch.stack([row.roll(-n, 0) for row, n in zip(embeds, shift, strict=True)])
    right_mask = torch.stack([row.roll(-n, 0) for row, n in zip(mask, shift, strict=True)])
    assert right_mask[:, -1].eq(0).any()
    realigned, realigned_mask = left_align(right, right_mask)
    assert torch.equal(realigned_mask, mask) and torch.equal(realigned[mask.bool()], embeds[mask.bool()])
    with torch.no_grad():
        assert torch.equal(
            tiny_llm.generate(right, right_mask, max_new_tokens=5), tiny_llm.generate(embeds, mask, max_new_tokens=5)
        )


def _free_run_then_stop_token(tiny_dir):
    """A fresh LLM, a left-padded batch, 8 freely generated tokens, and the third of them made an extra
    EOS id of the checkpoint (a checkpoint's extra EOS ids end generation too); ``first`` is where it
    first comes in row 0."""
    llm = build_vicuna(VicunaConfig(path=str(tiny_dir), dtype="fp32")).eval()
    ids, mask = left_padded(llm)
    free = generate_ids(llm, ids, mask, max_new_tokens=8)
    stop = int(free[0, 2])
    first = free[0].tolist().index(stop)
    llm.model.generation_config.eos_token_id = stop
    return llm, ids, mask, free, stop, first


def test_generation_stops_at_eos(tiny_dir):
    llm, ids, mask, free, stop, first = _free_run_then_stop_token(tiny_dir)
    assert llm.eos_token_ids == sorted({llm.eos_token_id, stop})
    stopped = generate_ids(llm, ids, mask, max_new_tokens=8)
    assert stopped[0, : first + 1].tolist() == free[0, : first + 1].tolist()
    assert set(stopped[0, first + 1 :].tolist()) <= {llm.pad_token_id}


def test_min_new_tokens_holds_back_the_end_of_sequence(tiny_dir):
    llm, ids, mask, free, stop, first = _free_run_then_stop_token(tiny_dir)
    held = generate_ids(llm, ids, mask, max_new_tokens=8, min_new_tokens=first + 3)
    assert held.shape[1] >= first + 3
    assert stop not in held[0, : first + 2].tolist()  # without min_new_tokens it stops at `first`
    assert held[0, :first].tolist() == free[0, :first].tolist()
    with pytest.raises(ValueError, match="min_new_tokens"):
        generate_ids(llm, ids, mask, max_new_tokens=2, min_new_tokens=3)


def test_no_repeat_ngram_size_and_repetition_penalty(tiny_llm):
    ids, mask = left_padded(tiny_llm, PROMPTS[:1])
    free = generate_ids(tiny_llm, ids, mask, max_new_tokens=12)[0].tolist()
    assert len(set(free)) < len(free), "the tiny model should repeat itself when left alone"
    no_repeat = generate_ids(tiny_llm, ids, mask, max_new_tokens=12, no_repeat_ngram_size=1)[0].tolist()
    penalised = generate_ids(tiny_llm, ids, mask, max_new_tokens=12, repetition_penalty=1e4)[0].tolist()
    assert len(set(no_repeat)) == len(no_repeat) == 12
    assert len(set(penalised)) == len(penalised) == 12


def test_sampling_with_a_tiny_top_p_is_greedy_and_seeded_sampling_repeats(tiny_llm):
    ids, mask = left_padded(tiny_llm)
    greedy = generate_ids(tiny_llm, ids, mask, max_new_tokens=6)
    narrow = generate_ids(tiny_llm, ids, mask, max_new_tokens=6, do_sample=True, top_p=1e-6)
    assert torch.equal(narrow, greedy)
    runs = []
    for _ in range(2):
        torch.manual_seed(7)
        runs.append(generate_ids(tiny_llm, ids, mask, max_new_tokens=6, do_sample=True, temperature=2.0))
    assert torch.equal(*runs)


def test_checkpoint_sampling_defaults_do_not_leak_into_greedy(tiny_dir, tiny_llm):
    llm = build_vicuna(VicunaConfig(path=str(tiny_dir), dtype="fp32")).eval()
    llm.model.generation_config.update(do_sample=True, temperature=5.0, top_k=3)
    ids, mask = left_padded(llm)
    torch.manual_seed(0)
    assert torch.equal(
        generate_ids(llm, ids, mask, max_new_tokens=6), generate_ids(tiny_llm, ids, mask, max_new_tokens=6)
    )


def test_generation_config_follows_the_infer_spec():
    from transformers import NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    assert set(GENERATION_OPTIONS) == set(InferSpec.model_fields) - {"batch_size"}
    options = {"max_new_tokens": 9, "num_beams": 2, "repetition_penalty": 1.2, "no_repeat_ngram_size": 3}
    config, processors = decoding(options, pad_token_id=0, eos_token_ids=[2, 5, 2])
    assert (config.max_new_tokens, config.num_beams) == (9, 2)
    assert (config.do_sample, config.pad_token_id, config.eos_token_id) == (False, 0, [2, 5])
    penalty, ngrams = processors
    assert isinstance(penalty, RepetitionPenaltyLogitsProcessor) and penalty.penalty == 1.2
    assert isinstance(ngrams, NoRepeatNGramLogitsProcessor) and ngrams.ngram_size == 3
    sampling, none = decoding({"do_sample": True, "temperature": 0.7, "top_p": 0.9}, pad_token_id=0, eos_token_ids=[2])
    assert (sampling.do_sample, sampling.temperature, sampling.top_p, sampling.top_k) == (True, 0.7, 0.9, 0)
    assert len(none) == 0
    defaults, _ = decoding({}, pad_token_id=0, eos_token_ids=[2])
    assert (defaults.max_new_tokens, defaults.num_beams) == (InferSpec().max_new_tokens, InferSpec().num_beams)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"batch_size": 4}, TypeError, "batch_size is the data loader's, not a generation option"),
        ({"top_k": 5}, TypeError, r"unknown generation option\(s\) \['top_k'\]; the options are: max_new_tokens"),
        ({"num_beams": 0}, ValueError, "bad generation option: num_beams: Input should be greater than 0"),
    ],
)
def test_bad_generation_options_are_refused(tiny_llm, options, error, message):
    ids, mask = left_padded(tiny_llm)
    with pytest.raises(error, match=message):
        generate_ids(tiny_llm, ids, mask, **options)


def test_inputs_of_the_wrong_width_are_refused(tiny_llm):
    with pytest.raises(ValueError, match=r"inputs_embeds must be \[batch, length, 32\]"):
        tiny_llm.generate(torch.zeros(1, 3, 8), torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"attention_mask \[1, 2\] does not match inputs_embeds \[1, 3\]"):
        tiny_llm(torch.zeros(1, 3, 32), torch.ones(1, 2, dtype=torch.long))


def test_the_composed_model_decodes_a_batch_like_each_sample_alone(tiny_dir):
    """toy-encoder → linear-projector → vicuna + LoRA: SlamModel's left-padded batch against one sample at a time."""
    from slam_core.model import build_model
    from slam_core.spec import validate_spec

    spec = validate_spec(
        {
            "encoder": {"type": "toy-encoder", "shape": {"hidden_size": 16, "num_layers": 1, "num_heads": 2}},
            "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 16},
            "llm": {"type": "vicuna", "path": str(tiny_dir), "dtype": "fp32"},
            "peft": {"type": "lora", "r": 2, "alpha": 4, "dropout": 0.0},
            "task": {"type": "asr"},
        }
    )
    torch.manual_seed(0)
    model = build_model(spec).eval()
    samples = [{"target": "hi"}, {"target": "a longer one"}]
    waves = [0.1 * torch.randn(n, generator=torch.Generator().manual_seed(n)) for n in (4800, 2400)]
    features = [model.encoder.preprocess(w) for w in waves]
    lengths = torch.tensor([f.shape[0] for f in features])
    padded = torch.nn.utils.rnn.pad_sequence(features, batch_first=True)
    text = model.text_inputs(samples, with_targets=False)
    assert text.prefix_ids[0][0] == model.llm.tokenizer.bos_token_id
    batched = model.generate(padded, lengths, text, max_new_tokens=5)
    for index, sample in enumerate(samples):
        alone_text = model.text_inputs([sample], with_targets=False)
        alone = model.generate(features[index][None], lengths[index : index + 1], alone_text, max_new_tokens=5)
        assert alone == [batched[index]]
    assert type(model.llm.model).__name__ == "PeftModel"
    loss = model(padded, lengths, model.text_inputs(samples)).loss
    assert torch.isfinite(loss)
