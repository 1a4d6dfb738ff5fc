"""CIDEr-D, caption tokenisation, SPICE and SPIDEr (``slam_core.runtime.metrics``)."""

from __future__ import annotations

import json
import math
import shutil
import sys
import textwrap

import pytest

from slam_core.runtime.metrics import MetricUnavailable, metric_availability, score
from slam_core.runtime.metrics.captions import ptb_tokenize, python_tokenize, tokenize_captions

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for the PTB tokenizer")


def cider(hyps, refs):
    return score(["cider_d"], hyps, refs, caption_tokenizer="python")["cider_d"]


# Two items, each reference's n-grams unique to it: every idf is log(2) - log(1) = log 2.
def test_cider_d_of_identical_two_word_captions_by_hand():
    # unigram and bigram cosines are 1, no 3- or 4-grams: 10 * (1 + 1 + 0 + 0) / 4 = 5
    assert cider(["a b", "c d"], [["a b"], ["c d"]]) == pytest.approx(5.0)


def test_cider_d_partial_match_with_length_penalty_by_hand():
    # item 1: "a" vs "a b": unigram cosine 1/sqrt(2), no bigram, length penalty exp(-1 / (2 * 6**2))
    first = 10 * (2**-0.5 * math.exp(-1 / 72)) / 4
    assert cider(["a", "c d"], [["a b"], ["c d"]]) == pytest.approx((first + 5.0) / 2)


def test_cider_d_clips_repeated_ngrams_by_hand():
    # "a a" vs "a b": tf-idf of "a" is clipped to the reference's: (log2 * log2) / (2 log2 * sqrt2 log2)
    first = 10 * (1 / (2 * 2**0.5)) / 4
    assert cider(["a a", "c d"], [["a b"], ["c d"]]) == pytest.approx((first + 5.0) / 2)


def test_cider_d_averages_over_references_and_uses_corpus_idf():
    # "c" is in both items' references: idf 0.  Item 1 refs "a b" (cosines 1, 1) and "a c"
    # (unigram 1/sqrt2, bigram 0): 10 * ((1 + 1/sqrt2) + 1) / 4 / 2.  Item 2 ("c d"): 5.
    first = 10 * (2 + 2**-0.5) / 4 / 2
    assert cider(["a b", "c d"], [["a b", "a c"], ["c d"]]) == pytest.approx((first + 5.0) / 2)


def test_cider_d_of_a_single_item_is_zero():
    # one item: every n-gram has df 1 = the number of items, so every idf is 0
    assert cider(["a dog barks loudly"], [["a dog barks loudly"]]) == 0.0


@needs_java
def test_cider_d_equals_pycocoevalcap_run_directly():
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    hyps = ["A dog barks, then a car passes.", "Rain falls on a tin roof!", "Someone is typing (fast)."]
    refs = [
        ["A dog is barking and a car drives by.", "Dogs bark while cars pass."],
        ["Heavy rain falls onto a metal roof.", "Rain is falling on a roof."],
        ["A person types on a keyboard.", "Someone types quickly on a keyboard."],
    ]
    tokenizer = PTBTokenizer()
    gts = tokenizer.tokenize({i: [{"caption": c} for c in r] for i, r in enumerate(refs)})
    res = tokenizer.tokenize({i: [{"caption": h}] for i, h in enumerate(hyps)})
    expected, _ = Cider().compute_score(gts, res)
    assert score(["cider_d"], hyps, refs, caption_tokenizer="ptb")["cider_d"] == pytest.approx(expected)


def test_python_tokenizer_follows_ptb_on_typical_captions():
    # expected outputs are what CoreNLP's PTBTokenizer -lowerCase gives, minus pycocoevalcap's punctuation
    assert python_tokenize("A dog's bark, isn't it?") == "a dog 's bark is n't it"
    assert (
        python_tokenize("The U.S. team won 3.5 points... e.g. 1,000 fans!")
        == "the u.s. team won 3.5 points e.g. 1,000 fans"
    )
    assert (
        python_tokenize("A man (briefly) speaks -- then birds chirp.")
        == "a man -lrb- briefly -rrb- speaks then birds chirp"
    )
    assert python_tokenize("It\u2019s \u201cloud\u201d; I cannot hear") == "it 's loud i can not hear"
    assert python_tokenize("") == ""


CAPTIONS = [
    "A person is walking on a gravel path while birds chirp in the background.",
    "Water is running from a faucet into a sink and then stops.",
    "Several people are talking at once in a large, echoing room.",
    "A vehicle's engine idles, then it accelerates away.",
    "Someone types on a keyboard; clicks are heard.",
    "A bell rings three times and then there is silence....",
    "The wind blows hard against the microphone!?",
    "A man speaks and a woman laughs (briefly) [muffled] {x}",
    "A dog barks while children play and/or shout",
    "An alarm goes off at 6:00 a.m. and Mr. Smith hits snooze",
    "A train passes at high-speed, its horn blaring -- loudly",
    "people's voices, cars' horns and buses' brakes",
    'She said "hello" and he replied \u2018hi\u2019',
    "It's raining; it isn't snowing, we're wet and they'd've gone.",
    "A cat meows 2 times, then purrs for 1.5 minutes; 50% louder at 5pm $5",
    "The crowd cheers!! Gonna wanna",
    "",
]


@needs_java
def test_python_tokenizer_agrees_with_the_ptb_jar():
    assert [python_tokenize(c) for c in CAPTIONS] == ptb_tokenize(CAPTIONS)


def test_auto_tokenizer_falls_back_to_python_without_java():
    with pytest.warns(UserWarning, match="no Java found"):
        tokens = tokenize_captions(["A dog's bark."], java="/nonexistent/java")
    assert tokens == ["a dog 's bark"]
    with pytest.raises(ValueError, match="auto, ptb, python"):
        tokenize_captions(["x"], tokenizer="nltk")


def test_spice_unavailable_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv("SLAM_SPICE_JAR", raising=False)
    jar = tmp_path / "spice-1.0.jar"
    jar.write_bytes(b"")
    for name in ("spice", "spider"):
        with pytest.raises(MetricUnavailable) as caught:
            score([name], ["a"], ["a"], spice_jar=str(jar), java=sys.executable)
        message = str(caught.value)
        assert "stanford-corenlp-3.6.0-models.jar" in message and "SLAM_SPICE_JAR" in message
        assert caught.value.metric == name
    with pytest.raises(MetricUnavailable, match="no Java runtime"):
        score(["spice"], ["a"], ["a"], java="/nonexistent/java")
    with pytest.raises(MetricUnavailable, match="no SPICE jar"):
        score(["spice"], ["a"], ["a"], spice_jar=str(tmp_path / "missing.jar"), java=sys.executable)


FAKE_JAVA = """\
#!{python}
# Stands in for `java -jar spice-1.0.jar IN -out OUT -subset -silent`: F = 1 when the test caption
# equals the first reference, else 0; records its arguments and input beside OUT.
import json, sys
args = sys.argv[1:]
if args == ["-version"]:
    sys.stderr.write('openjdk version "1.8.0_292"\\n')
    sys.exit(0)
jar = args[args.index("-jar") + 2]
items = json.load(open(args[args.index(jar) + 1]))
out = args[args.index("-out") + 1]
with open("{record}", "a") as log:
    log.write(json.dumps({{"args": args, "items": items}}) + "\\n")
scores = [{{"image_id": it["image_id"], "scores": {{"All": {{"f": float(it["test"] == it["refs"][0])}}}}}}
          for it in items]
json.dump(scores, open(out, "w"))
"""


@pytest.fixture
def fake_spice(tmp_path, monkeypatch):
    """A SPICE jar with its CoreNLP libraries (empty files) found through $SLAM_SPICE_JAR, and a fake java."""
    (tmp_path / "lib").mkdir()
    for name in ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar"):
        (tmp_path / "lib" / name).write_bytes(b"")
    jar = tmp_path / "spice-1.0.jar"
    jar.write_bytes(b"")
    java = tmp_path / "java"
    record = tmp_path / "record.json"
    java.write_text(textwrap.dedent(FAKE_JAVA).format(python=sys.executable, record=record))
    java.chmod(0o755)
    monkeypatch.setenv("SLAM_SPICE_JAR", str(jar))
    return {"java": str(java), "record": record}


def test_spice_and_spider_run_the_jar_found_through_the_environment(fake_spice):
    assert metric_availability(java=fake_spice["java"])["spider"] is None
    hyps, refs = ["A", "C D."], [["a b"], ["c d"]]
    out = score(["cider_d", "spice", "spider"], hyps, refs, java=fake_spice["java"], caption_tokenizer="python")
    cider_d = (10 * (2**-0.5 * math.exp(-1 / 72)) / 4 + 5.0) / 2  # as in the hand-worked CIDEr-D case
    assert out == {"cider_d": pytest.approx(cider_d), "spice": 0.5, "spider": pytest.approx((cider_d + 0.5) / 2)}
    (record,) = [json.loads(line) for line in fake_spice["record"].read_text().splitlines()]  # one SPICE run
    assert record["items"] == [
        {"image_id": 0, "test": "a", "refs": ["a b"]},
        {"image_id": 1, "test": "c d", "refs": ["c d"]},
    ]
    assert {"-subset", "-silent"} <= set(record["args"]) and "--add-opens" not in " ".join(record["args"])
