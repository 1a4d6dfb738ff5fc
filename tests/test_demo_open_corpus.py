"""The open-vocabulary corpus generator (recipes/demo/make_open_corpus.py) and its sentence list (make_sentences.py)."""

from __future__ import annotations

import json
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st
from support.demo import TINY_ENCODER, TOY_LLM, recipe_script

RECIPE = Path(__file__).resolve().parent.parent / "recipes" / "demo"


corpus = recipe_script("make_open_corpus")
sentences = recipe_script("make_sentences")


@pytest.fixture(scope="module")
def splits():
    return corpus.split_sentences(corpus.read_sentences(), random.Random(corpus.SEED))


def test_the_splits_are_disjoint_sentences_of_the_everyday_vocabulary(splits):
    assert {name: len(splits[name]) for name in corpus.SPLITS} == corpus.SPLITS
    assert len(splits["train"]) >= corpus.MIN_TRAIN
    every = [s for split in splits.values() for s in split]
    assert len(every) == len(set(every))
    listed = corpus.read_sentences()
    spread = Counter(word for sentence in set(listed) for word in set(sentence.split()))
    ranked = sorted(spread, key=lambda word: (-spread[word], word))
    common = set(ranked[: corpus.VOCABULARY])
    assert all(common.issuperset(s.split()) for s in every)
    assert all(4 <= len(s.split()) <= 15 for s in every)


def test_the_splits_do_not_depend_on_the_string_hash_seed():
    """Ties in word counts are broken alphabetically, not by set order (which PYTHONHASHSEED changes)."""
    import hashlib
    import os
    import subprocess

    program = (
        "import importlib.util, random, sys\n"
        f"spec = importlib.util.spec_from_file_location('corpus', {str(RECIPE / 'make_open_corpus.py')!r})\n"
        "corpus = importlib.util.module_from_spec(spec)\n"
        "sys.modules['corpus'] = corpus\n"
        "spec.loader.exec_module(corpus)\n"
        "print(repr(corpus.split_sentences(corpus.read_sentences(), random.Random(corpus.SEED))))\n"
    )
    digests = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True, text=True, check=True)
        digests.add(hashlib.sha256(out.stdout.encode()).hexdigest())
    assert len(digests) == 1


def test_each_test_sentence_holds_exactly_one_word_no_other_sentence_has(splits):
    heard = {word for name in ("train", "valid") for sentence in splits[name] for word in sentence.split()}
    unheard = [[word for word in sentence.split() if word not in heard] for sentence in splits["test"]]
    assert all(len(set(words)) == 1 for words in unheard)
    held_out = [words[0] for words in unheard]
    assert len(set(held_out)) == len(held_out)  # one test sentence per held-out word
    assert all(len(word) >= 4 and "'" not in word for word in held_out)


def test_unseen_voices_speak_only_half_of_test_and_the_plan_is_deterministic(splits):
    plan = corpus.plan(splits, random.Random(7))
    assert plan == corpus.plan(splits, random.Random(7))
    for utterance in plan:
        split = utterance.key.split("-")[0]
        variants = corpus.SEEN_VARIANTS if utterance.seen_voice else corpus.UNSEEN_VARIANTS
        assert utterance.variant in variants and utterance.accent in corpus.ACCENTS
        assert utterance.seen_voice == (split != "test" or int(utterance.key.split("-")[1]) % 2 == 0)
        assert corpus.RATES[0] <= utterance.rate <= corpus.RATES[1]
    assert not set(corpus.SEEN_VARIANTS) & set(corpus.UNSEEN_VARIANTS)
    test = [u for u in plan if u.key.startswith("test-")]
    assert sum(not u.seen_voice for u in test) == len(test) // 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), speech=st.floats(0.3, 3.0), silence=st.floats(0.0, 1.0))
def test_the_recording_chain_resamples_to_16khz_and_trims_to_the_speech_with_a_margin(seed, speech, silence):
    rate = 22050
    time = np.arange(int(speech * rate)) / rate
    tone = 0.3 * np.sin(2 * np.pi * 440 * time)
    quiet = np.zeros(int(silence * rate))
    audio = corpus.record(np.concatenate([quiet, tone, quiet]), rate, np.random.default_rng(seed))
    assert audio.dtype == np.float32 and np.all(np.isfinite(audio)) and np.abs(audio).max() <= 1.0
    seconds = len(audio) / corpus.SAMPLE_RATE
    margin = min(corpus.MARGIN_SECONDS[1], silence) + 0.01  # a margin cannot reach past the silence there is
    assert speech - 0.02 <= seconds <= speech + 2 * margin + 0.01


def test_espeak_phoneme_output_becomes_a_manifest_phoneme_string():
    # stress marks go, pauses and the palatal mark go, linking r is r, clauses on new lines join
    assert corpus.phoneme_string("h 'i: ;  a# g r 'i: d _:\n t @  h 3: r-\n") == "h i: | a# g r i: d | t @ | h 3: r"
    assert corpus.phoneme_string("  _!  ") == ""


def test_the_spoken_lexicon_keeps_training_words_whose_sentence_splits_into_as_many_words():
    records = [
        {"key": "train-0000", "target": "the cat", "phonemes": "D @ | k a t"},
        {"key": "train-0001", "target": "for the cat", "phonemes": "f 3 D @2 | k a t"},  # joined: left out
        {"key": "test-0000", "target": "a dog", "phonemes": "a# | d 0 g"},  # not training
    ]
    assert corpus.spoken_lexicon(records) == {("the", "D @"), ("cat", "k a t")}


def test_the_lexicon_word_list_is_plain_sorted_words_of_wordnet(tmp_path):
    words = corpus.read_words()
    assert words == sorted(set(words)) and len(words) > 15_000
    assert all(word.isascii() and word.isalpha() and word.islower() for word in words)
    for part in ("adj", "adv", "noun", "verb"):
        (tmp_path / f"index.{part}").write_text(f"  1 licence\n{part}_lemma n 1\ncat n 1\n", encoding="latin-1")
        (tmp_path / f"{part}.exc").write_text("mice mouse\n", encoding="latin-1")
        (tmp_path / f"data.{part}").write_text(
            '  1 licence\n00001740 03 n 01 cat 0 000 | a feline Mammal; "the unquoted example"\n', encoding="latin-1"
        )
    found = sentences.dictionary_words(tmp_path)
    assert found == {"cat", "mice", "mouse", "a", "feline", "mammal"}  # no example words, no underscores


def test_a_gloss_example_becomes_plain_lowercase_words_or_nothing():
    assert sentences.plain("The plan was kept carefully under wraps.") == "the plan was kept carefully under wraps"
    assert sentences.plain("a well-known fact, surely") == "a well known fact surely"
    assert sentences.plain("don't you want to go?") == "don't you want to go"
    assert sentences.plain("a 3-day trip to Rome") is None  # digits
    assert sentences.plain("too short") is None
    assert sentences.plain("he said (quietly) that he would") is None  # symbols
    assert sentences.plain(" ".join(["word"] * 16)) is None


def test_examples_are_read_from_the_glosses_of_a_wordnet_folder(tmp_path):
    for part in ("adj", "adv", "noun", "verb"):
        (tmp_path / f"data.{part}").write_text(
            "  1 This software and database is provided under a licence\n"
            f'00001740 03 n 01 entity 0 000 | a {part}; "the first {part} example"; "a second one"\n',
            encoding="latin-1",
        )
    found = list(sentences.examples(tmp_path))
    assert found == [
        text for part in ("adj", "adv", "noun", "verb") for text in (f"the first {part} example", "a second one")
    ]
    assert sentences.everyday(["the cat sat down", "the cat sat down", "a zyx sat here"], lambda w: w != "zyx") == [
        "the cat sat down"
    ]


def test_the_committed_sentence_list_is_what_the_parser_keeps():
    listed = corpus.read_sentences()
    assert listed == sorted(set(listed)) and len(listed) > 10_000
    assert all(sentences.plain(s) == s for s in listed)
    assert (RECIPE / "sentences.LICENSE").read_text().count("WordNet 3.0 Copyright 2006 by Princeton University") == 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_the_corpus_pipeline_and_a_short_training_on_it_run_end_to_end(tmp_path, capsys):
    """The generator speaks 3 utterances per split with their phonemes and lexicon; a tiny demo run trains a
    phoneme CTC head on them, decodes through the lexicon and scores both voice groups."""
    from slam_recipes._demo import ctc
    from slam_recipes._demo import run as demo

    out = tmp_path / "data"
    corpus.main(["--out", str(out), "--limit", "3", "--workers", "1"])
    records = {
        split: [json.loads(line) for line in (out / f"{split}.jsonl").open()] for split in ("train", "valid", "test")
    }
    assert {split: len(lines) for split, lines in records.items()} == {"train": 3, "valid": 3, "test": 3}
    for record in records["test"]:
        audio, rate = soundfile.read(out / record["source"])
        assert rate == corpus.SAMPLE_RATE and audio.ndim == 1 and 0.3 < len(audio) / rate < corpus.MAX_SECONDS
    assert [r["seen_voice"] for r in records["test"]] == [True, False, True]
    pronunciations = {}
    for line in (out / "lexicon.txt").read_text().splitlines():
        word, phonemes = line.split("\t")
        pronunciations.setdefault(word, set()).add(phonemes)
    for record in (r for split in records.values() for r in split):
        spoken = record["phonemes"].split(" | ")
        assert 0 < len(spoken) <= len(record["target"].split())  # espeak-ng joins "for the" into one word
        assert all(word in pronunciations for word in record["target"].split())
        if record["key"].startswith("train-") and len(spoken) == len(record["target"].split()):
            # training words keep their pronunciation in context
            assert all(p in pronunciations[w] for w, p in zip(record["target"].split(), spoken, strict=True))

    manifests = [f"data.{split}_manifest={out / f'{split}.jsonl'}" for split in ("train", "valid", "test")]
    wer = demo.run_demo(
        tmp_path / "run",
        overrides=manifests + TINY_ENCODER + TOY_LLM,
        ctc=ctc.CTCConfig(
            epochs=1, batch_size=2, targets="phonemes", lexicon={"path": str(out / "lexicon.txt"), "nbest": 3}
        ),
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == f"WER: {100 * wer:.1f}%"
    assert any(line.startswith("[2/2] decoding the held-out test sentences: lexicon of ") for line in lines)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_utterances"] == 3
    assert {name: group["utterances"] for name, group in metrics["groups"].items()} == {
        "all": 3,
        "seen voices": 2,
        "unseen voices": 1,
    }
    assert any(line.startswith("  unseen voices: WER ") for line in lines)
    hypotheses = [json.loads(line)["hypothesis"] for line in (tmp_path / "run" / "test_hypotheses.jsonl").open()]
    assert all(word in pronunciations for hypothesis in hypotheses for word in hypothesis.split())
    assert (tmp_path / "run" / "encoder" / "ctc_vocabulary.json").is_file()
