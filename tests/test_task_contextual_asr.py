"""contextual-asr: pseudo-hotwords in training, the first-pass filter and the other modes in decoding."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from slam_core.model import build_component
from slam_core.runtime.metrics import score
from slam_core.runtime.tasks import hotwords
from slam_core.runtime.tasks.configs import ContextualASRTaskConfig
from slam_core.runtime.tasks.contextual_asr import HOTWORDS_FIELD

TARGETS = [
    "THE FERRY LEFT THE HARBOUR BEFORE DAWN",
    "SHE PAINTED THE OLD BARN A BRIGHT RED",
    "A COLD WIND BLEW ACROSS THE EMPTY MARKET SQUARE",
    "HELLO BERTIE",
]
PLAIN = "Transcribe speech to text."


def task(**settings):
    return build_component("task", ContextualASRTaskConfig(**settings))


def batch(targets=TARGETS, **fields):
    return [{"key": f"u{i}", "target": t, **fields} for i, t in enumerate(targets)]


def is_run_of(gram: str, target: str) -> bool:
    words, run = target.split(), gram.split()
    return any(words[i : i + len(run)] == run for i in range(len(words) - len(run) + 1))


# ----------------------------------------------------------------------------- pseudo-hotwords


def test_each_target_gives_an_ngram_of_one_to_four_words_with_probability_one_half():
    random.seed(0)
    kept, lengths, total = 0, Counter(), 0
    for _ in range(2000):
        grams = hotwords.batch_ngrams(TARGETS[:3], keep_probability=0.5, max_ngram=4)
        for gram, target in zip(grams, TARGETS, strict=False):
            total += 1
            if gram is not None:
                kept += 1
                lengths[len(gram.split())] += 1
                assert is_run_of(gram, target)
    assert 0.47 < kept / total < 0.53  # 6000 draws: 3 standard deviations is about 0.02
    assert set(lengths) == {1, 2, 3, 4}
    for n in (1, 2, 3, 4):  # uniform length for targets of at least 4 words
        assert 0.22 < lengths[n] / kept < 0.28


def test_short_targets_give_ngrams_no_longer_than_themselves():
    random.seed(1)
    grams = [hotwords.batch_ngrams(["HELLO BERTIE", ""], keep_probability=1.0, max_ngram=4) for _ in range(200)]
    assert {g[0] for g in grams} == {"HELLO", "BERTIE", "HELLO BERTIE"}
    assert all(g[1] is None for g in grams)  # an empty target has nothing to give


def test_keep_probability_zero_and_one():
    random.seed(2)
    assert hotwords.batch_ngrams(TARGETS, keep_probability=0.0, max_ngram=4) == [None] * 4
    assert None not in hotwords.batch_ngrams(TARGETS, keep_probability=1.0, max_ngram=4)


def test_training_hotwords_are_the_batch_pool_shuffled_per_sample():
    head = task(keep_probability=1.0)
    random.seed(3)
    prepared = head.prepare(batch(), training=True)
    pools = [s[HOTWORDS_FIELD] for s in prepared]
    assert all(sorted(pool) == sorted(pools[0]) for pool in pools)  # one pool for the batch
    assert len(pools[0]) == len(set(pools[0])) >= 3  # duplicates removed
    for target in TARGETS:  # every target's n-gram is there: its own hotword, the others' distractors
        assert any(is_run_of(gram, target) for gram in pools[0])
    orders = set()
    for seed in range(10):
        random.seed(seed)
        orders.add(tuple(head.prepare(batch(), training=True)[0][HOTWORDS_FIELD]))
    assert len(orders) > 1


def test_training_prompt_holds_the_hotwords_and_no_hotwords_gives_the_plain_prompt():
    head = task(keep_probability=1.0, max_ngram=1, hotword_separator=" | ")
    random.seed(4)
    sample = head.prepare(batch(["ALPHA", "BETA"]), training=True)[0]
    instruction = head.instruction(sample)
    assert instruction.startswith('Transcribe speech to text. Some hotwords might help. The hotwords are "')
    assert instruction in {
        'Transcribe speech to text. Some hotwords might help. The hotwords are "ALPHA | BETA".',
        'Transcribe speech to text. Some hotwords might help. The hotwords are "BETA | ALPHA".',
    }
    none = task(keep_probability=0.0)
    assert none.instruction(none.prepare(batch(), training=True)[0]) == PLAIN


def test_training_is_deterministic_under_random_seed():
    head = task(prompt=["A {hotwords}", "B {hotwords}"], plain_prompt=["plain one", "plain two"])

    def run(seed):
        random.seed(seed)
        return [head.instruction(s) for _ in range(5) for s in head.prepare(batch(), training=True)]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_list_distractors_come_from_the_samples_own_list():
    head = task(keep_probability=0.0, list_distractors=2)
    random.seed(6)
    words = ["zwingli", "quetelet", "bather", "gawain"]
    for sample in head.prepare(batch(biasing_words=words), training=True):
        assert len(sample[HOTWORDS_FIELD]) == 2 and set(sample[HOTWORDS_FIELD]) <= set(words)
    assert head.prepare(batch(), training=True)[0][HOTWORDS_FIELD] == []  # no list: none


def test_hotword_case_follows_the_config():
    head = task(hotword_case="upper")
    sample = {"key": "u", HOTWORDS_FIELD: ["gawain", "o'neil"]}
    assert head.instruction(sample).endswith('"GAWAIN, O\'NEIL".')
    assert task(hotword_case="lower").instruction({HOTWORDS_FIELD: ["Gawain"]}).endswith('"gawain".')


# ----------------------------------------------------------------------------- decoding


LISTED = {"key": "1089-134686-0001", "target": "THE KNIGHT GAWAIN RODE TO CAMELOT"}
WORDS = ["ambrosial", "camelot", "gawain", "quetelet", "zwingli"]


def test_filter_mode_decodes_twice_first_with_the_plain_prompt():
    head = task()
    assert head.first_pass is True
    first = head.prepare([{**LISTED, "biasing_words": WORDS}], training=False)
    assert first[0][HOTWORDS_FIELD] == [] and head.instruction(first[0]) == PLAIN
    second = head.after_first_pass(first, ["the night gawayne rode to camelott"])
    assert second[0][HOTWORDS_FIELD] == ["camelot", "gawain"]
    assert head.instruction(second[0]).endswith('The hotwords are "camelot, gawain".')
    assert HOTWORDS_FIELD not in LISTED and first[0][HOTWORDS_FIELD] == []  # new dicts


def test_filter_settings_reach_the_filter(tmp_path):
    strict = task(filter={"threshold": 0.95})
    assert strict.after_first_pass([{"biasing_words": WORDS}], ["gawayne at camelot"])[0][HOTWORDS_FIELD] == ["camelot"]
    common = tmp_path / "common.txt"
    common.write_text("gawayne\n", encoding="utf-8")
    custom = task(filter={"common_words": str(common)})
    assert custom.after_first_pass([{"biasing_words": WORDS}], ["gawayne"])[0][HOTWORDS_FIELD] == []
    kept = task(filter={"drop_common_words": False})
    assert kept.after_first_pass([{"biasing_words": ["thee"]}], ["the"])[0][HOTWORDS_FIELD] == ["thee"]


def test_samples_without_a_list_or_with_an_empty_one_decode_with_the_plain_prompt():
    head = task()
    samples = head.prepare([{"key": "a"}, {"key": "b", "biasing_words": []}], training=False)
    second = head.after_first_pass(samples, ["gawain", "gawain"])
    assert [head.instruction(s) for s in second] == [PLAIN, PLAIN]
    with pytest.raises(ValueError, match="2 samples but 1 first-pass hypotheses"):
        head.after_first_pass(samples, ["x"])


def test_list_oracle_and_none_modes_need_no_first_pass():
    sample = {**LISTED, "biasing_words": [*WORDS, "camelot", "knight errant"]}
    listed = task(inference_hotwords="list")
    oracle = task(inference_hotwords="oracle")
    none = task(inference_hotwords="none")
    assert not (listed.first_pass or oracle.first_pass or none.first_pass)
    assert listed.prepare([sample], training=False)[0][HOTWORDS_FIELD] == [*WORDS, "knight errant"]
    assert oracle.prepare([sample], training=False)[0][HOTWORDS_FIELD] == ["camelot", "gawain"]
    assert none.instruction(none.prepare([sample], training=False)[0]) == PLAIN


def test_a_biasing_list_that_is_not_a_list_of_strings_names_the_sample():
    head = task(inference_hotwords="list")
    for bad in ("gawain camelot", 3, ["gawain", None]):
        with pytest.raises(TypeError, match="'u7': 'biasing_words' must be a list of strings"):
            head.prepare([{"key": "u7", "biasing_words": bad}], training=False)


def test_missing_common_words_file_is_reported_when_the_filter_is_first_used(tmp_path):
    head = task(filter={"common_words": str(tmp_path / "nope.txt")})  # builds: slam inspect needs no data
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        head.after_first_pass([{**LISTED, "biasing_words": WORDS}], ["the knight rode"])


def test_metrics_score_with_the_samples_biasing_lists():
    head = task()
    assert head.metrics == ("wer", "b_wer", "u_wer")
    samples = [{**LISTED, "biasing_words": WORDS}]
    references = [head.target(s) for s in samples]
    result = score(head.metrics, ["the knight gawayne rode to camelot"], references, samples)
    assert result == pytest.approx({"wer": 1 / 6, "b_wer": 1 / 2, "u_wer": 0.0})
