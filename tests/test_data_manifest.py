"""Manifests: SLAM-LLM jsonl parsing and its errors, relative paths, lhotse cut manifests, format dispatch."""

from __future__ import annotations

import gzip
import json
import string
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data_support import write_audio, write_jsonl

from slam_core.runtime.data import Entry, ManifestError, read_manifest

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
path_parts = st.text(string.ascii_letters + string.digits + "_-. ", min_size=1, max_size=8)
relative_paths = st.lists(path_parts, min_size=1, max_size=3).map("/".join)
entries = st.fixed_dictionaries(
    {"source": relative_paths, "target": st.text()},
    optional={"biasing_words": st.lists(st.text(), max_size=4), "label": json_values},
)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(min_size=1), unique=True, max_size=8), st.data())
def test_jsonl_round_trip_keeps_every_field_and_resolves_sources(keys, data):
    records = [{"key": key, **data.draw(entries)} for key in keys]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_jsonl(Path(tmp) / "m.jsonl", records)
        read = read_manifest(manifest)
    assert [e.key for e in read] == keys
    for line, (entry, record) in enumerate(zip(read, records, strict=True), 1):
        audio = str(Path(tmp) / record["source"])
        assert entry.fields == {**record, "source": audio}
        assert (entry.path, entry.origin, entry.offset, entry.duration) == (audio, f"{manifest}:{line}", 0.0, None)


BAD_LINES = {
    "not json": ('{"key": "x", "source": ', "not valid JSON"),
    "not an object": ('["x", "a.wav"]', "expected a JSON object"),
    "no key": ('{"source": "a.wav"}', "missing 'key'"),
    "no source": ('{"key": "x", "target": "t"}', "missing 'source'"),
    "null key": ('{"key": null, "source": "a.wav"}', "'key' must be a non-empty string"),
    "list source": ('{"key": "x", "source": ["a.wav"]}', "'source' must be a non-empty path string"),
}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5), st.sampled_from(sorted(BAD_LINES)))
def test_a_bad_line_is_reported_with_file_and_line(before, after, case):
    bad, expected = BAD_LINES[case]
    good = [json.dumps({"key": f"k{i}", "source": "a.wav"}) for i in range(before + after)]
    lines = [*good[:before], bad, *good[before:]]
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "m.jsonl"
        manifest.write_text("\n".join(lines) + "\n")
        with pytest.raises(ManifestError) as error:
            read_manifest(manifest)
    assert f"{manifest}:{before + 1}:" in str(error.value)
    assert expected in str(error.value)


def test_duplicate_keys_name_both_lines(tmp_path):
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"key": k, "source": "a.wav"} for k in ("a", "b", "a")])
    with pytest.raises(ManifestError, match=r"m\.jsonl:3: duplicate key 'a' \(first at .*m\.jsonl:1\)"):
        read_manifest(manifest)


def test_blank_lines_are_skipped_and_lines_still_counted(tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text('\n{"key": 7, "source": "a.wav"}\n\n{"key": "b", "source": "/abs/b.wav"}\n\n')
    first, second = read_manifest(manifest)
    assert (first.key, first.origin) == ("7", f"{manifest}:2")  # an integer key becomes a string
    assert (second.path, second.origin) == ("/abs/b.wav", f"{manifest}:4")  # absolute sources stay


def test_relative_sources_resolve_against_the_manifest_not_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "m.jsonl", [{"key": "a", "source": "wav/a.wav"}])
    monkeypatch.chdir(tmp_path)
    (entry,) = read_manifest("data/m.jsonl")
    assert entry.path == str(tmp_path / "data" / "wav" / "a.wav") == entry.fields["source"]


def test_gzipped_jsonl_is_read(tmp_path):
    manifest = tmp_path / "m.jsonl.gz"
    with gzip.open(manifest, "wt") as stream:
        stream.write(json.dumps({"key": "a", "source": "a.wav", "target": "hi"}) + "\n")
    assert [e.fields["target"] for e in read_manifest(manifest)] == ["hi"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "cannot read the manifest"), (b"\xff\xfe{}\n", "not UTF-8"), (b"\x1f\x8bnot gzip", "cannot read")],
)
def test_unreadable_manifests_name_the_file(tmp_path, content, expected):
    manifest = tmp_path / "m.jsonl"
    if content is not None:
        manifest.write_bytes(content)
    with pytest.raises(ManifestError, match=expected) as error:
        read_manifest(manifest)
    assert str(manifest) in str(error.value)


# -- lhotse cut manifests ------------------------------------------------------------------------


def _cut(recording, cut_id, start, duration, text=None, channel=0, **custom):
    from lhotse import MonoCut, SupervisionSegment

    supervisions = (
        [] if text is None else [SupervisionSegment(f"{cut_id}-s", recording.id, 0, duration, text=text, language="en")]
    )
    return MonoCut(
        cut_id, start, duration, channel, supervisions=supervisions, recording=recording, custom=custom or None
    )


def test_lhotse_cuts_become_entries_with_their_segment(tmp_path):
    from lhotse import CutSet, Recording

    (tmp_path / "audio").mkdir()
    write_audio(tmp_path / "audio" / "r.wav", 0.5)
    recording = Recording.from_file(tmp_path / "audio" / "r.wav", relative_path_depth=2)  # stored as audio/r.wav
    cuts = CutSet.from_cuts([_cut(recording, "c1", 0.1, 0.2, "hello", label="dog"), _cut(recording, "c2", 0.3, 0.1)])
    cuts.to_file(tmp_path / "cuts.jsonl.gz")

    first, second = read_manifest(tmp_path / "cuts.jsonl.gz")
    audio = str(tmp_path / "audio" / "r.wav")
    assert first == Entry(
        "c1",
        audio,
        f"{tmp_path / 'cuts.jsonl.gz'}:1",
        {
            "label": "dog",
            "language": "en",
            "key": "c1",
            "source": audio,
            "target": "hello",
            "offset": 0.1,
            "duration": 0.2,
        },
        0.1,
        0.2,
        None,
    )
    assert (second.key, second.fields["target"], second.offset, second.duration) == ("c2", "", 0.3, 0.1)


def test_a_lhotse_cut_on_one_channel_of_a_stereo_file_selects_it(tmp_path):
    from lhotse import CutSet, Recording

    write_audio(tmp_path / "s.wav", 0.2, channels=2)
    recording = Recording.from_file(tmp_path / "s.wav")
    CutSet.from_cuts([_cut(recording, "right", 0, 0.2, channel=1)]).to_file(tmp_path / "cuts.jsonl")
    (entry,) = read_manifest(tmp_path / "cuts.jsonl")
    assert entry.channels == (1,)


def test_a_mixed_cut_is_refused_with_its_line(tmp_path):
    from lhotse import CutSet, Recording

    write_audio(tmp_path / "r.wav", 0.5)
    recording = Recording.from_file(tmp_path / "r.wav")
    mono, other = _cut(recording, "a", 0, 0.2), _cut(recording, "b", 0.2, 0.2)
    CutSet.from_cuts([mono, mono.append(other).with_id("ab")]).to_file(tmp_path / "cuts.jsonl")
    with pytest.raises(ManifestError, match=r"cuts\.jsonl:2: MixedCut 'ab' is not supported"):
        read_manifest(tmp_path / "cuts.jsonl")


def test_a_malformed_cut_names_its_line(tmp_path):
    manifest = write_jsonl(tmp_path / "cuts.jsonl", [{"type": "MonoCut", "id": "x", "start": 0}])
    with pytest.raises(ManifestError, match=r"cuts\.jsonl:1: not a valid lhotse cut"):
        read_manifest(manifest)
