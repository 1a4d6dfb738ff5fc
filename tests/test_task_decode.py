"""The task heads through SlamModel.decode on a tiny random toy pipeline.

mc: decoding scores the labels, so even an untrained model answers a label, the one with the
highest likelihood. contextual-asr: a first pass with the plain prompt, then a second pass
whose prompt holds the biasing words that match the first-pass hypothesis.
"""

from __future__ import annotations

import functools

import torch

from slam_core.model import SlamModel, build_model
from slam_core.runtime.infer.service import decode_batch
from slam_core.spec import validate_spec

N_MELS = 8
LABELS = ["blues", "classical", "Hip Hop", "jazz", "metal"]


@functools.cache
def model_for(task: tuple[tuple[str, object], ...]) -> SlamModel:
    torch.manual_seed(0)
    spec = {
        "encoder": {
            "type": "toy-encoder",
            "shape": {"num_mel_bins": N_MELS, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
        },
        "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 32},
        "llm": {
            "type": "toy-llm",
            "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64},
        },
        "task": dict(task),
    }
    return build_model(validate_spec(spec)).eval()


def features(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(12, 40, (count,), generator=generator)
    return torch.randn(count, int(lengths.max()), N_MELS, generator=generator), lengths


def test_mc_always_decodes_the_most_likely_label():
    model = model_for((("type", "mc"), ("labels", tuple(LABELS))))
    samples = [{"key": f"clip{i}", "target": "jazz"} for i in range(4)]
    for seed in range(3):
        feats, lengths = features(len(samples), seed)
        decoded = decode_batch(model, feats, lengths, samples, max_new_tokens=4)
        assert all(answer in LABELS for answer in decoded)
        # the answer is the label whose target tokens the model finds most likely
        embeds, out_lengths = model.encode(feats, lengths)
        for b, answer in enumerate(decoded):
            rows = [{**samples[b], "target": label} for label in LABELS]
            text = model.text_inputs(rows)
            picked = torch.full((len(LABELS),), b)
            likelihood = model.sequence_log_likelihood(embeds[picked], out_lengths[picked], text)
            assert answer == LABELS[int(likelihood.argmax())]


def test_contextual_asr_decodes_twice_with_the_filtered_words_in_the_second_prompt(monkeypatch):
    model = model_for((("type", "contextual-asr"), ("hotword_case", "upper")))
    instructions: list[str] = []
    original_parts = model.llm.prompt_parts

    def recording_parts(instruction):
        instructions.append(instruction)
        return original_parts(instruction)

    hypotheses = iter([["THE KNIGHT GAWAYNE RODE", "NOTHING RARE HERE"], ["second", "pass"]])
    calls = []

    def fake_generate(inputs_embeds, attention_mask, **options):
        calls.append(inputs_embeds.shape[0])
        texts = next(hypotheses)
        ids = [[*model.llm.tokenize(t), model.llm.eos_token_id] for t in texts]
        width = max(map(len, ids))
        return torch.tensor([row + [model.llm.pad_token_id] * (width - len(row)) for row in ids])

    monkeypatch.setattr(model.llm, "prompt_parts", recording_parts)
    monkeypatch.setattr(model.llm, "generate", fake_generate)
    samples = [
        {"key": "a", "target": "THE KNIGHT GAWAIN RODE", "biasing_words": ["camelot", "gawain", "zwingli"]},
        {"key": "b", "target": "NOTHING RARE HERE", "biasing_words": ["zwingli"]},
    ]
    feats, lengths = features(2, 0)
    decoded = decode_batch(model, feats, lengths, samples, max_new_tokens=8)
    assert calls == [2, 2] and decoded == ["second", "pass"]
    plain = "Transcribe speech to text."
    assert instructions == [
        plain,
        plain,
        'Transcribe speech to text. Some hotwords might help. The hotwords are "GAWAIN".',
        plain,
    ]
    assert "hotwords" not in samples[0]  # decode leaves the caller's samples alone
