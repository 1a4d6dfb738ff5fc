"""The embedded demo recipe (recipes/demo) and its runner (slam_recipes._demo, in slam-recipes)."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from slam_recipes._demo import ctc
from slam_recipes._demo import run as demo
from support.demo import TINY_ENCODER, TOY_LLM, recipe_script

from slam_core.errors import SlamError, SpecError
from slam_core.runtime.data import read_manifest
from slam_core.spec import load_spec, validate_spec

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "demo"
DATA = RECIPE / "data"
SPLITS = ("train", "valid", "test")
MAX_BYTES = 40_000_000


def _generator():
    return recipe_script("make_open_corpus")


def _targets(split: str) -> list[str]:
    return [entry.fields["target"] for entry in read_manifest(DATA / f"{split}.jsonl")]


def _few(tmp_path, train: int = 16, valid: int = 4) -> list[str]:
    """Overrides for manifests of the first few train and valid utterances (a tiny run reads no more)."""
    cut = {"train": train, "valid": valid}
    return [
        f"data.{s}_manifest={demo.first_lines(DATA / f'{s}.jsonl', n, tmp_path / f'{s}.jsonl')}" for s, n in cut.items()
    ]


def test_the_shipped_spec_validates_and_trains_a_random_whisper_into_smollm2_with_lora():
    document, base = demo.load_demo_spec()
    assert demo.RECIPE_DIR == RECIPE and base == RECIPE
    spec = validate_spec(document)
    assert (spec.encoder.type, spec.encoder.path, spec.encoder.mode) == ("whisper", None, "variable")
    assert spec.encoder.architecture().num_mel_bins == 80 and spec.encoder.shape.hidden_size == 256
    assert (spec.projector.type, spec.llm.type, spec.llm.gguf, spec.llm.dtype) == (
        "linear-projector",
        "vicuna",
        "smollm2",
        "fp32",
    )
    assert spec.peft.type == "lora" and spec.task.type == "asr" and spec.train.dtype == "fp32"
    shipped = load_spec(RECIPE / "spec.yaml")
    for split in SPLITS:  # relative to the spec file's folder, made absolute by the loader
        assert Path(getattr(spec.data, f"{split}_manifest")) == RECIPE / getattr(shipped.data, f"{split}_manifest")
        assert Path(getattr(spec.data, f"{split}_manifest")) == DATA / f"{split}.jsonl"
    assert ctc.load_ctc_config(RECIPE / "ctc.yaml").epochs > 0


def test_the_llm_stage_spec_loads_the_ctc_encoder_instead_of_a_random_one(tmp_path):
    document, _ = demo.load_demo_spec()
    staged = demo.with_encoder_checkpoint(document, tmp_path / "encoder")
    encoder = validate_spec(staged).encoder  # the shape settings are gone: a path with a shape is refused
    assert (encoder.type, encoder.path) == ("whisper", str(tmp_path / "encoder"))
    # the settings that still apply with a checkpoint are kept, the random-init shape is dropped
    kept = ("mode", "long_audio", "hop_length")
    assert [getattr(encoder, name) for name in kept] == [document["encoder"][name] for name in kept]
    assert set(staged["encoder"]) == {"type", "path", *kept}
    assert "path" not in document["encoder"]  # the shipped document is left alone
    with pytest.raises(SpecError, match="path"):
        validate_spec({**document, "encoder": {**document["encoder"], "path": str(tmp_path / "encoder")}})


@pytest.mark.parametrize("split", SPLITS)
def test_every_manifest_entry_is_a_short_16khz_mono_opus_with_its_phonemes(split):
    limit = _generator().MAX_SECONDS
    entries = read_manifest(DATA / f"{split}.jsonl")
    assert entries
    for entry in entries:
        assert Path(entry.path).is_file(), entry.origin
        assert Path(entry.path).parent == DATA / "audio"
        info = soundfile.info(entry.path)
        assert (info.format, info.subtype, info.samplerate, info.channels) == ("OGG", "OPUS", 16000, 1)
        assert 0.3 < info.duration <= limit, entry.origin
        assert entry.fields["target"].strip() == entry.fields["target"] and entry.fields["target"]
        assert entry.key.startswith(f"{split}-")
        words = entry.fields["phonemes"].split(" | ")
        assert 0 < len(words) <= len(entry.fields["target"].split()) and all(w.split() for w in words)


def test_each_test_sentence_has_one_word_no_training_sentence_has_and_the_splits_are_disjoint():
    train, valid, test = (_targets(split) for split in SPLITS)
    heard = {word for sentence in train + valid for word in sentence.split()}
    assert all(len(set(sentence.split()) - heard) == 1 for sentence in test)
    assert len(set(train + valid + test)) == len(train) + len(valid) + len(test)


def test_the_manifests_are_what_the_generator_draws():
    generator = _generator()
    splits = generator.split_sentences(generator.read_sentences(), random.Random(generator.SEED))
    for split in SPLITS:
        assert _targets(split) == splits[split]
    records = [json.loads(line) for split in SPLITS for line in (DATA / f"{split}.jsonl").read_text().splitlines()]
    assert {r["accent"] for r in records} == set(generator.ACCENTS)
    seen = {r["variant"] for r in records if r["seen_voice"]}
    assert seen == set(generator.SEEN_VARIANTS) and not seen & {r["variant"] for r in records if not r["seen_voice"]}


def test_the_lexicon_spells_the_word_list_and_every_held_out_word():
    lexicon = {}
    for line in (DATA / "lexicon.txt").read_text(encoding="utf-8").splitlines():
        word, phonemes = line.split("\t")
        lexicon.setdefault(word, set()).add(phonemes)
    assert set(_generator().read_words()) <= set(lexicon)
    # every held-out word can be written (the dictionary has them; this draw has no out-of-lexicon test word)
    assert {word for split in ("valid", "test") for sentence in _targets(split) for word in sentence.split()} <= set(
        lexicon
    )
    train = [word for sentence in _targets("train") for word in sentence.split()]
    assert sum(word not in lexicon for word in train) <= len(train) // 1000
    for line in (DATA / "train.jsonl").read_text().splitlines():  # a training word as spoken there
        record = json.loads(line)
        spoken = record["phonemes"].split(" | ")
        if len(spoken) == len(record["target"].split()):
            assert all(p in lexicon[w] for w, p in zip(record["target"].split(), spoken, strict=True))


def test_the_data_is_small_enough_to_commit_and_has_no_stray_files():
    files = [path for path in DATA.rglob("*") if path.is_file()]
    assert sum(path.stat().st_size for path in files) < MAX_BYTES
    referenced = {Path(entry.path) for split in SPLITS for entry in read_manifest(DATA / f"{split}.jsonl")}
    assert set((DATA / "audio").iterdir()) == referenced
    assert {path.name for path in files} - {path.name for path in referenced} == {
        *(f"{s}.jsonl" for s in SPLITS),
        "lexicon.txt",
    }


def test_ctc_vocabulary_round_trip_and_greedy_decoding():
    import torch

    vocabulary = ctc.CTCVocabulary([list("ab c"), list("ba")])  # chars ' ', a, b, c -> ids 1..4; 0 is the blank
    assert len(vocabulary) == 5 and vocabulary.encode("cab") == [4, 2, 3]
    with pytest.raises(ValueError, match="not in the CTC vocabulary"):
        vocabulary.encode("abz")
    # frames a a blank a b space c c | a (padding): repeats merge, a blank separates, padding is ignored
    ids = [2, 2, 0, 2, 3, 1, 4, 4, 2]
    log_probs = torch.nn.functional.one_hot(torch.tensor([ids]), 5).float().log()
    assert vocabulary.greedy_decode(log_probs, torch.tensor([8])) == ["aab c"]


def test_a_phoneme_vocabulary_spells_symbols_and_names_a_missing_field():
    import torch

    samples = [{"key": "a", "target": "the cat", "phonemes": "D @ | k a t"}, {"key": "b", "phonemes": "a t"}]
    vocabulary = ctc.CTCVocabulary([ctc.ctc_symbols(s, "phonemes") for s in samples], "phonemes")
    assert vocabulary.symbols == ["@", "D", "a", "k", "t", "|"] and vocabulary.word_boundary == "|"
    assert vocabulary.encode(["k", "a", "t"]) == [4, 3, 5]
    ids = [4, 0, 3, 3, 5, 6, 5]  # k a t | t
    log_probs = torch.nn.functional.one_hot(torch.tensor([ids]), len(vocabulary)).float().log()
    assert vocabulary.greedy_decode(log_probs, torch.tensor([7])) == ["k a t | t"]
    assert ctc.ctc_symbols(samples[0], "characters") == list("the cat")
    with pytest.raises(SlamError, match=r"^ctc.targets: phonemes needs a `phonemes` field .* 'c' has none"):
        ctc.ctc_symbols({"key": "c", "target": "x"}, "phonemes")


def test_a_phoneme_ctc_stage_trains_scores_and_saves_a_head_that_reloads(tmp_path):
    import torch

    from slam_core.model import build_component
    from slam_core.runtime.data import build_batches

    overrides = [*TINY_ENCODER, *_few(tmp_path, train=8), "data.batch_size=4"]
    spec = validate_spec(demo.load_demo_spec(overrides=overrides)[0])
    torch.manual_seed(0)
    encoder = build_component("encoder", spec.encoder)
    config = ctc.CTCConfig(epochs=1, batch_size=4, targets="phonemes")
    result = ctc.pretrain_encoder_ctc(
        encoder,
        build_batches(spec, "train", encoder.preprocessor()),
        config,
        valid_batches=build_batches(spec, "valid", encoder.preprocessor()),
        log=lambda _: None,
    )
    assert set(result.scores) == {"loss", "ctc_per", "ctc_wer"} and result.scores["ctc_per"] >= 0
    symbols = result.vocabulary.symbols
    assert "|" in symbols and "@" in symbols and " " not in symbols
    ctc.save_ctc_head(result, tmp_path / "encoder")
    head, vocabulary = ctc.load_ctc_head(tmp_path / "encoder")
    assert vocabulary.symbols == result.vocabulary.symbols and vocabulary.targets == "phonemes"
    hidden = torch.randn(2, 5, encoder.output_dim)
    torch.testing.assert_close(head(hidden), result.head(hidden), rtol=0, atol=0)
    with pytest.raises(SlamError, match="has no CTC head"):
        ctc.load_ctc_head(tmp_path)


def test_a_ctc_trained_whisper_encoder_reloads_through_encoder_path(tmp_path):
    import torch

    from slam_core.model import build_component
    from slam_core.spec import validate_spec

    document, _ = demo.load_demo_spec(overrides=TINY_ENCODER)
    spec = validate_spec(document)
    torch.manual_seed(0)
    encoder = build_component("encoder", spec.encoder).eval()
    ctc.save_whisper_encoder(encoder, tmp_path / "encoder")
    reloaded = build_component(
        "encoder", validate_spec(demo.with_encoder_checkpoint(document, tmp_path / "encoder")).encoder
    )
    features = torch.randn(2, 50, 80)
    lengths = torch.tensor([50, 31])
    with torch.no_grad():
        expected, expected_lengths = encoder(features, lengths)
        got, got_lengths = reloaded.eval()(features, lengths)
    assert torch.equal(expected_lengths, got_lengths)
    torch.testing.assert_close(got, expected)


def test_a_demo_folder_of_something_else_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(demo.DemoError, match="not a demo run folder"):
        demo.run_demo(tmp_path, overrides=TINY_ENCODER + TOY_LLM, ctc=ctc.CTCConfig(epochs=1))
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_missing_wav_to_transcribe_fails_before_training(tmp_path):
    from slam_core.audio import AudioError

    with pytest.raises(AudioError, match="no such audio file"):
        demo.run_demo(tmp_path / "run", transcribe=tmp_path / "missing.wav")
    assert not (tmp_path / "run").exists()


def test_the_demo_pipeline_runs_end_to_end_and_prints_the_wer_last(tmp_path, capsys):
    """A tiny run of the shipped settings (a 1-layer encoder, 1 CTC epoch on phonemes, the lexicon, a toy LLM
    choosing among the candidates, 4 test utterances), then --quick."""
    wav = DATA / "audio" / "test-0000.ogg"
    output = tmp_path / "demo"
    shipped = ctc.load_ctc_config(RECIPE / "ctc.yaml", {"epochs": 1})
    assert shipped.targets == "phonemes" and Path(shipped.lexicon.path) == DATA / "lexicon.txt"
    overrides = TINY_ENCODER + TOY_LLM + _few(tmp_path)
    wer = demo.run_demo(output, transcribe=wav, overrides=overrides, ctc=shipped, limit_test=4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(r"WER: \d+\.\d%", lines[-1]), lines[-3:]
    assert lines[-1] == f"WER: {100 * wer:.1f}%"
    assert any(line.startswith(f"{wav}: ") for line in lines)
    assert any(line.startswith("[2/2] decoding the held-out test sentences: lexicon of ") for line in lines)
    encoder = output / "encoder"
    assert all((encoder / name).is_file() for name in ("config.json", "model.safetensors", ctc.HEAD_FILE))
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["wer"] == wer and metrics["test_utterances"] == 4 and "llm_steps" not in metrics
    hypotheses = [json.loads(line)["hypothesis"] for line in (output / "test_hypotheses.jsonl").open()]
    words = {line.split("\t")[0] for line in (DATA / "lexicon.txt").read_text().splitlines()}
    assert len(hypotheses) == 4 and all(set(h.split()) <= words for h in hypotheses)
    # a second run into the same folder starts afresh; --quick's settings: CTC epochs, test sentences
    demo.run_demo(output, overrides=overrides, quick=True)
    assert json.loads((output / "metrics.json").read_text())["test_utterances"] == demo.QUICK.test_utterances
    lines = capsys.readouterr().out.strip().splitlines()
    assert sum("ctc epoch" in line for line in lines) == demo.QUICK.ctc_epochs
    assert re.fullmatch(r"WER: \d+\.\d%", lines[-1])


def test_without_a_lexicon_the_demo_trains_the_llm_stage_on_the_encoder(tmp_path, capsys):
    """Character CTC, then the projector and LoRA through a toy LLM for 2 steps, then generation."""
    output = tmp_path / "demo"
    overrides = TINY_ENCODER + TOY_LLM + _few(tmp_path)
    wer = demo.run_demo(output, overrides=overrides, ctc=ctc.CTCConfig(epochs=1), limit_test=4)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"WER: {100 * wer:.1f}%"
    assert any(line.startswith("[2/3] LLM: toy-llm + lora") for line in lines)
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["llm_steps"] == 2 and metrics["test_utterances"] == 4


def test_the_decode_stage_scores_seen_and_unseen_voices_apart():
    references = ["the cat sat", "a dog ran", "we go home"]
    hypotheses = ["the cat sat", "a dig ran", "we go"]
    samples = [{"key": "a", "seen_voice": True}, {"key": "b", "seen_voice": False}, {"key": "c", "seen_voice": True}]
    groups = demo.group_scores(hypotheses, references, samples)
    assert list(groups) == ["all", "seen voices", "unseen voices"]
    assert groups["all"]["wer"] == pytest.approx(2 / 9) and groups["all"]["utterances"] == 3
    assert groups["seen voices"]["wer"] == pytest.approx(1 / 6) and groups["seen voices"]["utterances"] == 2
    assert groups["unseen voices"]["wer"] == pytest.approx(1 / 3)
    # CER counts characters: one substitution in "a dog ran" (9 characters)
    assert groups["unseen voices"]["cer"] == pytest.approx(1 / 9)
    # a manifest without the field gives the overall figures alone
    assert list(demo.group_scores(hypotheses, references, [{"key": k} for k in "abc"])) == ["all"]


def _ctc_run(tmp_path, **settings):
    """Two CTC epochs of the tiny encoder on 12 demo utterances: (result, weights, the audio featurised)."""
    import torch

    from slam_core.model import build_component
    from slam_core.runtime.data import build_batches

    manifest = demo.first_lines(DATA / "train.jsonl", 12, tmp_path / "train.jsonl")
    document, _ = demo.load_demo_spec(overrides=[*TINY_ENCODER, f"data.train_manifest={manifest}", "data.batch_size=4"])
    spec = validate_spec(document)
    torch.manual_seed(0)
    encoder = build_component("encoder", spec.encoder)
    batches = build_batches(spec, "train", encoder.preprocessor())
    reads = []
    featurise = batches.dataset.preprocessor

    def counted(raw):
        reads.append(raw)
        return featurise(raw)

    batches.dataset.preprocessor = counted  # the demo spec loads in-process (num_workers: 0)
    config = ctc.CTCConfig(epochs=2, batch_size=4, **settings)
    result = ctc.pretrain_encoder_ctc(encoder, batches, config, seed=0, log=lambda _: None)
    return result.scores, {k: v.clone() for k, v in encoder.state_dict().items()}, reads


def test_the_ctc_feature_cache_reads_each_sample_once_and_trains_identically(tmp_path):
    import torch

    cached, cached_weights, cached_reads = _ctc_run(tmp_path, cache_features=True)
    plain, plain_weights, plain_reads = _ctc_run(tmp_path, cache_features=False)
    assert len(cached_reads) == 12 and len(plain_reads) == 24
    assert cached["loss"] == plain["loss"]
    assert all(torch.equal(cached_weights[k], plain_weights[k]) for k in plain_weights)


def test_the_ctc_stage_computes_in_bf16_when_asked_and_keeps_fp32_weights(tmp_path):
    import torch

    mixed, weights, _ = _ctc_run(tmp_path, dtype="bf16")
    plain, _, _ = _ctc_run(tmp_path, dtype="fp32")
    assert all(value.dtype == torch.float32 for value in weights.values() if value.is_floating_point())
    assert mixed["loss"] != plain["loss"] and abs(mixed["loss"] - plain["loss"]) < 0.05 * plain["loss"]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    masks=st.integers(0, 3),
    widest=st.integers(1, 12),
    axis=st.sampled_from(["time", "freq"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_spec_augment_zeroes_bounded_spans_inside_each_utterance_only(lengths, masks, widest, axis, seed):
    import torch

    frames, bins = max(lengths), 16
    features = torch.rand(len(lengths), frames, bins) + 1.0  # no natural zeros
    settings_ = {"time_masks": 0, "freq_masks": 0, f"{axis}_masks": masks}
    settings_["time_mask_frames" if axis == "time" else "freq_mask_bins"] = widest
    config = ctc.CTCConfig(**settings_)
    lengths_ = torch.tensor(lengths)
    out = ctc.spec_augment(features, lengths_, config, torch.Generator().manual_seed(seed))
    assert torch.equal(out, ctc.spec_augment(features, lengths_, config, torch.Generator().manual_seed(seed)))
    zero = out == 0
    assert torch.equal(out[~zero], features[~zero])  # only zeroing
    for row, length in enumerate(lengths):
        assert not zero[row, length:].any()  # padding untouched
        inside = zero[row, :length]
        if axis == "time":  # whole frames, at most masks × widest of them
            assert torch.equal(inside.all(1), inside.any(1))
            assert int(inside.all(1).sum()) <= masks * widest
        else:  # the same bins on every frame, at most masks × widest of them
            assert torch.equal(inside.all(0), inside.any(0))
            assert int(inside.all(0).sum()) <= masks * widest


@settings(max_examples=60, deadline=None)
@given(factor=st.floats(0.6, 1.4), bins=st.integers(8, 80))
def test_stretch_bins_moves_each_bin_to_its_warped_frequency(factor, bins):
    import torch

    ramp = torch.arange(bins, dtype=torch.float32).expand(3, bins)  # bin j holds j
    out = ctc.stretch_bins(ramp, factor)
    width = max(2, round(bins * factor))
    expected = (torch.arange(bins) * (bins - 1) / (width - 1)).clamp(max=bins - 1)  # j / factor, as interpolated
    assert out.shape == ramp.shape
    torch.testing.assert_close(out, expected.expand(3, bins), atol=1e-4, rtol=0)


def test_warp_frequencies_keeps_padding_and_is_off_at_zero():
    import torch

    features = torch.rand(4, 30, 80) + 1.0
    lengths = torch.tensor([30, 12, 5, 20])
    for row, length in enumerate(lengths.tolist()):
        features[row, length:] = 0.0
    assert ctc.warp_frequencies(features, lengths, 0.0, torch.Generator()) is features
    out = ctc.warp_frequencies(features, lengths, 0.2, torch.Generator().manual_seed(1))
    assert torch.equal(out, ctc.warp_frequencies(features, lengths, 0.2, torch.Generator().manual_seed(1)))
    for row, length in enumerate(lengths.tolist()):
        assert not out[row, length:].any()
        assert not torch.equal(out[row, :length], features[row, :length])  # no factor rounds to 1 here
    assert ctc.CTCConfig(vtlp=0.1).vtlp == 0.1


def test_spec_augment_masks_about_as_much_as_its_settings_say():
    import torch

    features = torch.rand(512, 200, 80) + 1.0
    config = ctc.CTCConfig(time_masks=2, time_mask_frames=10, freq_masks=2, freq_mask_bins=10)
    out = ctc.spec_augment(features, torch.full((512,), 200), config, torch.Generator().manual_seed(0))
    zero = out == 0
    frames = zero.all(2).sum(1).float().mean()  # widths 0..10: 5 frames per mask on average
    bands = zero.all(1).sum(1).float().mean()
    assert 8.5 < float(frames) < 10.5 and 8.5 < float(bands) < 10.5
