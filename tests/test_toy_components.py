"""The built-in toy components: encoder + log-mel preprocessing, toy LLM + byte tokenizer, asr task."""

from __future__ import annotations

import functools
import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from slam_core.builtin import ToyEncoderConfig, ToyLLMConfig
from slam_core.components import PromptParts
from slam_core.hf_llm import HFCausalLM, byte_tokenizer
from slam_core.runtime.tasks.asr import ASRTask
from slam_core.runtime.tasks.configs import ASRTaskConfig
from slam_core.toy import LogMel, ToyEncoder, build_toy_llm

ENCODER_CONFIG = ToyEncoderConfig(shape={"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2})
LLM_CONFIG = ToyLLMConfig(
    shape={"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64, "vocab_size": 320}
)


@functools.lru_cache(maxsize=1)
def encoder() -> ToyEncoder:
    return ToyEncoder(ENCODER_CONFIG)


@functools.lru_cache(maxsize=1)
def llm() -> HFCausalLM:
    return build_toy_llm(LLM_CONFIG).eval()


def conv_reference_length(n: int) -> int:
    """Frames left after two kernel-3, stride-2, padding-1 convolutions, measured by running them."""
    x = torch.zeros(1, 1, n)
    kernel = torch.zeros(1, 1, 3)
    for _ in range(2):
        x = F.conv1d(x, kernel, stride=2, padding=1)
    return x.shape[-1]


def padded_batch(lengths: list[int], n_mels: int, seed: int, garbage: float = 0.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(len(lengths), max(lengths), n_mels, generator=generator)
    for b, n in enumerate(lengths):
        features[b, n:] = garbage
    return features


# ----------------------------------------------------------------------------- encoder


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 70), min_size=1, max_size=4), st.integers(0, 1000))
def test_encoder_output_lengths_are_the_real_output_lengths(lengths, seed):
    enc = encoder().eval()
    features = padded_batch(lengths, ENCODER_CONFIG.shape.num_mel_bins, seed, garbage=3.0)
    n = torch.tensor(lengths)
    expected = [conv_reference_length(length) for length in lengths]
    assert enc.output_lengths(n).tolist() == expected
    with torch.no_grad():
        hidden, out_lengths = enc(features, n)
        assert out_lengths.tolist() == expected
        assert tuple(hidden.shape) == (len(lengths), max(expected), ENCODER_CONFIG.shape.hidden_size)
        for b, length in enumerate(lengths):
            alone, alone_lengths = enc(features[b : b + 1, :length], n[b : b + 1])
            assert alone.shape[1] == expected[b] == int(alone_lengths)
            # frames past a sample's length are exactly zero: padding never leaks out
            assert torch.count_nonzero(hidden[b, expected[b] :]) == 0


@pytest.mark.parametrize("train", [False, True])
@settings(max_examples=25, deadline=None)
@given(lengths=st.lists(st.integers(1, 60), min_size=2, max_size=4), seed=st.integers(0, 1000))
def test_encoder_is_batch_invariant(train, lengths, seed):
    """A sample padded in a batch (with garbage padding) encodes exactly as it does alone."""
    enc = encoder().train(train)
    try:
        features = padded_batch(lengths, ENCODER_CONFIG.shape.num_mel_bins, seed, garbage=-7.5)
        n = torch.tensor(lengths)
        with torch.set_grad_enabled(train):
            hidden, out_lengths = enc(features, n)
            for b, length in enumerate(lengths):
                alone, _ = enc(features[b : b + 1, :length], n[b : b + 1])
                k = int(out_lengths[b])
                torch.testing.assert_close(hidden[b, :k], alone[0], atol=1e-5, rtol=1e-5)
    finally:
        enc.eval()


def test_encoder_ignores_non_finite_padding():
    """Padding frames may hold anything, even NaN/inf, without touching the real frames."""
    enc = encoder().eval()
    lengths = [20, 9]
    clean = padded_batch(lengths, ENCODER_CONFIG.shape.num_mel_bins, seed=1)
    dirty = clean.clone()
    dirty[1, 9:] = float("nan")
    dirty[1, 12:] = float("inf")
    n = torch.tensor(lengths)
    with torch.no_grad():
        expected, out_lengths = enc(clean, n)
        got, _ = enc(dirty, n)
    k = int(out_lengths[1])
    assert torch.isfinite(got[1, :k]).all()
    torch.testing.assert_close(got[1, :k], expected[1, :k])


def test_encoder_zero_length_sample_yields_zeros_not_nan():
    """A zero-length sample in a batch (frozen path: eval + no_grad) must give a finite, all-zero row."""
    enc = encoder().eval()
    features = padded_batch([12, 12], ENCODER_CONFIG.shape.num_mel_bins, seed=2)
    with torch.no_grad():
        hidden, out_lengths = enc(features, torch.tensor([12, 0]))
    assert out_lengths.tolist() == [3, 0]
    assert torch.isfinite(hidden).all(), "a zero-length sample's padding row is NaN"
    assert torch.count_nonzero(hidden[1]) == 0


def test_encoder_attributes_follow_config():
    enc = encoder()
    assert enc.modality == "audio"
    assert enc.sample_rate == ENCODER_CONFIG.sample_rate
    assert enc.output_dim == ENCODER_CONFIG.shape.hidden_size
    assert enc.frame_rate == pytest.approx(ENCODER_CONFIG.sample_rate / ENCODER_CONFIG.hop_length / 4)


def test_encoder_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    first = ToyEncoder(ENCODER_CONFIG)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = ToyEncoder(ENCODER_CONFIG)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    other = ToyEncoder(ENCODER_CONFIG.model_copy(update={"seed": 1}))
    assert not torch.equal(first.conv1.weight, other.conv1.weight)


# ----------------------------------------------------------------------------- log-mel


HOP = ENCODER_CONFIG.hop_length


@settings(max_examples=30, deadline=None)
@given(st.integers(HOP + 41, 4000))  # longer than half the 400-sample FFT window
def test_logmel_frame_count(samples):
    features = encoder().preprocess(torch.randn(samples))
    assert tuple(features.shape) == (1 + samples // HOP, ENCODER_CONFIG.shape.num_mel_bins)
    assert torch.isfinite(features).all()


@pytest.mark.parametrize("samples", [1, 50, 160, 200])
def test_logmel_frame_count_of_short_waveforms(samples):
    """Waveforms shorter than half the FFT window (200 samples here) still give 1 + N // hop frames."""
    features = LogMel(ENCODER_CONFIG.sample_rate, ENCODER_CONFIG.shape.num_mel_bins, HOP)(torch.randn(samples))
    assert tuple(features.shape) == (1 + samples // HOP, ENCODER_CONFIG.shape.num_mel_bins)


def test_logmel_accepts_lists_and_silence():
    preprocess = encoder().preprocessor()
    from_list = preprocess([0.0] * 800)
    assert tuple(from_list.shape) == (1 + 800 // HOP, ENCODER_CONFIG.shape.num_mel_bins)
    assert torch.isfinite(from_list).all()
    waveform = torch.randn(900, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(preprocess(waveform.tolist()), preprocess(waveform))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (torch.zeros(0), "empty"),
        (torch.tensor([0.0, float("nan"), 0.0] * 200), "NaN or infinite"),
        (torch.tensor([0.0, float("inf"), 0.0] * 200), "NaN or infinite"),
        (torch.zeros(2, 800), r"mono.*got shape \(2, 800\)"),
        (torch.tensor(1.0), r"mono.*got shape \(\)"),
    ],
)
def test_logmel_rejects_bad_waveforms_clearly(raw, message):
    with pytest.raises(ValueError, match=message):
        encoder().preprocess(raw)


def test_preprocessor_pickles_small_before_and_after_use():
    preprocess = encoder().preprocessor()
    assert len(pickle.dumps(preprocess)) < 2000
    waveform = torch.randn(1600, generator=torch.Generator().manual_seed(3))
    features = preprocess(waveform)
    blob = pickle.dumps(preprocess)
    assert len(blob) < 2000  # the lazily built transform is not pickled
    restored = pickle.loads(blob)
    torch.testing.assert_close(restored(waveform), features)
    assert torch.equal(encoder().preprocess(waveform), features)


# ----------------------------------------------------------------------------- toy LLM


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=40))
@example("say </s> or <pad> or <s>")  # text that spells a special token is still just bytes
def test_byte_tokenizer_round_trips_unicode(text):
    model = llm()
    ids = model.tokenize(text)
    assert all(3 <= i < 259 for i in ids)  # bytes only: no special token is ever produced
    assert len(ids) == len(text.encode("utf-8"))
    assert model.tokenizer.decode(ids) == text


def test_special_token_ids():
    model = llm()
    tokenizer = model.tokenizer
    assert len(tokenizer) == 259
    assert model.pad_token_id == tokenizer.convert_tokens_to_ids("<pad>") == 0
    assert model.eos_token_id == tokenizer.convert_tokens_to_ids("</s>") == 2
    assert tokenizer.bos_token_id == tokenizer.convert_tokens_to_ids("<s>") == 1
    config = model.model.config
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (0, 1, 2)
    assert model.tokenize("ab") == tokenizer("ab", add_special_tokens=False)["input_ids"]
    assert len(model.tokenize("ab")) == 2  # no bos/eos added


def test_toy_llm_shape_and_prompt():
    from transformers import LlamaForCausalLM

    model = llm()
    assert isinstance(model.model, LlamaForCausalLM)
    assert model.hidden_size == LLM_CONFIG.shape.hidden_size
    assert model.model.get_input_embeddings().num_embeddings == LLM_CONFIG.shape.vocab_size
    assert model.model.config.num_hidden_layers == LLM_CONFIG.shape.num_layers
    assert model.prompt_parts("Say it.") == PromptParts(prefix="", suffix="Say it.")
    ids = torch.tensor([[5, 6, 7]])
    assert torch.equal(model.embed(ids), model.model.get_input_embeddings().weight[ids])


def test_toy_llm_is_seeded_and_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    again = build_toy_llm(LLM_CONFIG)
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, a), (_, b) in zip(llm().model.state_dict().items(), again.model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_toy_llm_dtype():
    model = build_toy_llm(
        LLM_CONFIG.model_copy(update={"dtype": "bf16", "shape": LLM_CONFIG.shape.model_copy(update={"num_layers": 1})})
    )
    assert model.model.get_input_embeddings().weight.dtype == torch.bfloat16


def right_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    return ids, mask


def left_padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), pad)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for b, row in enumerate(rows):
        ids[b, width - len(row) :] = torch.tensor(row)
        mask[b, width - len(row) :] = 1
    return ids, mask


def test_llm_logits_equal_the_causal_lm_called_with_input_ids():
    model = llm()
    rows = [[74, 71, 78, 78, 81], [9, 10], [100, 101, 102, 103, 104, 105, 106]]
    ids, mask = right_padded(rows, model.pad_token_id)
    labels = torch.where(mask.bool(), ids, torch.full_like(ids, -100))
    with torch.no_grad():
        ours = model(model.embed(ids), mask, labels)
        direct = model.model(input_ids=ids, attention_mask=mask, labels=labels)
    real = mask.bool()
    torch.testing.assert_close(ours.logits[real], direct.logits[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.loss, direct.loss, atol=1e-5, rtol=1e-5)


def test_generate_from_embeddings_equals_generate_from_ids():
    model = llm()
    rows = [[74, 71, 78, 78, 81, 223, 89], [9, 10, 11], [40]]
    ids, mask = left_padded(rows, model.pad_token_id)
    options = {"max_new_tokens": 6, "do_sample": False}
    with torch.no_grad():
        ours = model.generate(model.embed(ids), mask, **options)
        direct = model.model.generate(input_ids=ids, attention_mask=mask, pad_token_id=model.pad_token_id, **options)[
            :, ids.shape[1] :
        ]
    assert ours.shape[0] == len(rows)
    assert 1 <= ours.shape[1] <= 6
    assert torch.equal(ours, direct)
    # each prompt alone gives the same continuation as in the left-padded batch
    for b, row in enumerate(rows):
        with torch.no_grad():
            single = torch.tensor([row])
            alone = model.generate(model.embed(single), torch.ones_like(single), **options)
        assert ours[b, : alone.shape[1]].tolist() == alone[0].tolist()


def test_generate_drops_sampling_options_when_greedy():
    model = llm()
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        plain = model.generate(model.embed(ids), torch.ones_like(ids), max_new_tokens=3, do_sample=False)
        extra = model.generate(
            model.embed(ids), torch.ones_like(ids), max_new_tokens=3, do_sample=False, temperature=0.7, top_p=0.9
        )
    assert torch.equal(plain, extra)


def test_tokenizer_bigger_than_the_model_vocabulary_is_rejected():
    from transformers import LlamaConfig, LlamaForCausalLM

    small = LlamaForCausalLM(
        LlamaConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=100)
    )
    with pytest.raises(ValueError, match="tokenizer has 259 tokens but the model's embedding has only 100 rows"):
        HFCausalLM(small, byte_tokenizer())


def test_toy_llm_config_rejects_too_small_vocab_and_bad_heads():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"shape\.vocab_size\n  Input should be greater than or equal to 259"):
        ToyLLMConfig(shape={"vocab_size": 100})
    with pytest.raises(ValidationError, match="toy-llm: hidden_size 30 is not divisible by num_heads 4"):
        ToyLLMConfig(shape={"hidden_size": 30, "num_heads": 4})
    with pytest.raises(
        ValidationError, match=r"toy-llm: 'vocab_size' is now 'shape\.vocab_size' \(see docs/spec\.md\)"
    ):
        ToyLLMConfig(vocab_size=320)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dim": 32}, r"toy-encoder: 'dim' is now 'shape\.hidden_size' \(see docs/spec\.md\)"),
        (
            {"n_mels": 8, "heads": 2},
            r"toy-encoder: 'n_mels' is now 'shape\.num_mel_bins'; 'heads' is now 'shape\.num_heads'",
        ),
        ({"layers": 1}, r"toy-encoder: 'layers' is now 'shape\.num_layers'"),
        ({"shape": {"hidden_size": 30, "num_heads": 4}}, "toy-encoder: hidden_size 30 is not divisible by num_heads 4"),
    ],
)
def test_toy_encoder_config_names_the_new_keys(config, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        ToyEncoderConfig(**config)


# ----------------------------------------------------------------------------- asr task


def test_asr_instruction_target_and_metrics():
    task = ASRTask(ASRTaskConfig())
    sample = {"key": "utt1", "target": "Hello World"}
    assert task.instruction(sample) == ASRTaskConfig().prompt
    assert task.instruction({}) == ASRTaskConfig().prompt  # no target needed for the prompt
    assert task.target(sample) == "Hello World"
    assert tuple(task.metrics) == ("wer",)
    custom = ASRTask(ASRTaskConfig(prompt="Write down what you hear.", lowercase_target=True))
    assert custom.instruction(sample) == "Write down what you hear."
    assert custom.target(sample) == "hello world"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet="abcXYZ'é", min_size=1, max_size=5), max_size=6), st.data())
def test_asr_postprocess_normalises_white_space(words, data):
    task = ASRTask(ASRTaskConfig())
    separators = [data.draw(st.text(alphabet=" \t\n", min_size=1, max_size=3)) for _ in words]
    leading = data.draw(st.text(alphabet=" \n", max_size=2))
    text = leading + "".join(w + s for w, s in zip(words, separators, strict=True))
    assert task.postprocess(text) == " ".join(words)


def test_asr_missing_target_names_the_sample():
    task = ASRTask(ASRTaskConfig())
    with pytest.raises(KeyError, match="utt-42"):
        task.target({"key": "utt-42", "audio": "a.wav"})
    with pytest.raises(KeyError, match="no key"):
        task.target({"audio": "a.wav"})
