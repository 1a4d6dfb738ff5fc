"""The reader of fbai-speech is21_deep_bias biasing lists and word lists, on small files in that layout."""

from __future__ import annotations

import json

import pytest

from slam_core.runtime.tasks.biasing_lists import (
    BIASING_FIELD,
    BiasingEntry,
    BiasingListError,
    attach_biasing_lists,
    read_biasing_tsv,
    read_word_list,
)

# Written here in the release's layout: id, reference, JSON list of the reference's rare words,
# JSON list of those plus distractors (sorted), tab-separated; the second line has no rare words.
TSV = (
    '1272-128104-0004\tthe gawain knight rode to camelot\t["camelot", "gawain"]\t'
    '["ambrosial", "camelot", "gawain", "kestrel\'s", "zwingli"]\n'
    '1272-128104-0005\tand so it was\t[]\t["bather", "quetelet"]\n'
)


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "test-clean.biasing_100.tsv"
    path.write_text(TSV, encoding="utf-8")
    return path


def test_reads_each_utterance_with_its_rare_words_and_full_list(tsv):
    entries = read_biasing_tsv(tsv)
    assert list(entries) == ["1272-128104-0004", "1272-128104-0005"]
    first = entries["1272-128104-0004"]
    assert first == BiasingEntry(
        "1272-128104-0004",
        "the gawain knight rode to camelot",
        ("camelot", "gawain"),
        ("ambrosial", "camelot", "gawain", "kestrel's", "zwingli"),
    )
    assert set(first.rare_words) <= set(first.biasing_words)
    assert entries["1272-128104-0005"].rare_words == ()


def test_round_trip_of_a_written_file(tmp_path):
    rows = {f"u{i}": (f"text {i}", [f"r{i}"], [f"r{i}", f"d{i}", "o'neil"]) for i in range(20)}
    path = tmp_path / "b.tsv"
    path.write_text(
        "".join(f"{k}\t{t}\t{json.dumps(r)}\t{json.dumps(b)}\n" for k, (t, r, b) in rows.items()), encoding="utf-8"
    )
    entries = read_biasing_tsv(path)
    assert {k: (e.text, list(e.rare_words), list(e.biasing_words)) for k, e in entries.items()} == rows


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("u1\ttext\t[]\n", r"b\.tsv:2: expected 4 tab-separated columns .* found 3"),
        ("u1\ttext\tnot json\t[]\n", r"b\.tsv:2: the rare-words column is not a JSON list"),
        ('u1\ttext\t[]\t{"a": 1}\n', r"b\.tsv:2: the biasing-words column must be a JSON list of strings"),
        ("u1\ttext\t[]\t[1, 2]\n", "must be a JSON list of strings"),
        ("1272-128104-0005\tagain\t[]\t[]\n", "utterance '1272-128104-0005' appears twice"),
    ],
)
def test_malformed_lines_name_the_file_line_and_problem(tmp_path, line, message):
    path = tmp_path / "b.tsv"
    path.write_text(TSV.splitlines(keepends=True)[1] + line, encoding="utf-8")
    with pytest.raises(BiasingListError, match=message):
        read_biasing_tsv(path)


def test_word_lists_one_word_per_line_and_word_count_columns(tmp_path):
    rare = tmp_path / "all_rare_words.txt"
    rare.write_text("goin\nhasten\n\nleaping\n", encoding="utf-8")
    counts = tmp_path / "all_words.count.txt"
    counts.write_text("the\t570817\nand\t320837\n", encoding="utf-8")
    assert read_word_list(rare) == ["goin", "hasten", "leaping"]
    assert read_word_list(counts) == ["the", "and"]


def test_attach_biasing_lists_to_a_manifest(tsv):
    entries = read_biasing_tsv(tsv)
    manifest = [{"key": "1272-128104-0005", "source": "b.flac", "target": "AND SO IT WAS"}]
    attached = attach_biasing_lists(manifest, entries)
    assert attached == [{**manifest[0], BIASING_FIELD: ["bather", "quetelet"]}]
    assert BIASING_FIELD not in manifest[0]
    rare = attach_biasing_lists([{"key": "1272-128104-0004"}], entries, column="rare_words")
    assert rare[0][BIASING_FIELD] == ["camelot", "gawain"]


def test_attach_refuses_or_empties_a_sample_without_a_list(tsv):
    entries = read_biasing_tsv(tsv)
    with pytest.raises(BiasingListError, match="sample 'other' has no biasing list"):
        attach_biasing_lists([{"key": "other"}], entries)
    assert attach_biasing_lists([{"key": "other"}], entries, missing="empty")[0][BIASING_FIELD] == []
