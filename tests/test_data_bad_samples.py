"""The bad-sample policy: each kind of bad sample is an error or a counted skip, always naming the file."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf
from test_data_support import RATE, audio_manifest, preprocessor, write_audio, write_jsonl

from slam_core.runtime.data import BadSampleError, DataError, manifest_batches
from slam_core.spec import DataSpec

GOOD = [0.1, 0.15, 0.2, 0.25]


def _make_bad(kind: str, path):
    if kind == "empty":
        sf.write(path, np.zeros(0, np.int16), RATE)
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot audio at all")
    elif kind == "over-long":
        write_audio(path, 0.5)
    elif kind == "nan":  # passes the header check; the preprocessor refuses it while loading
        sf.write(path, np.full(1600, np.nan, np.float32), RATE, subtype="FLOAT")


def _manifest_with_bad(tmp_path, kind: str):
    """Four good samples and, on line 3, a bad one of ``kind``."""
    manifest = audio_manifest(tmp_path, GOOD)
    records = [{"key": f"u{i}", "source": f"a{i}.wav", "target": "t"} for i in range(len(GOOD))]
    records.insert(2, {"key": "bad", "source": "bad.wav", "target": "t"})
    _make_bad(kind, tmp_path / "bad.wav")
    return write_jsonl(manifest, records)


def _batches(manifest, policy, *, shuffle=True, **data):
    spec = DataSpec(**{"batch_size": 2, "num_workers": 0, "max_duration_s": 0.4, "bad_samples": policy, **data})
    return manifest_batches(manifest, preprocessor(), spec, shuffle=shuffle, seed=0)


KINDS = {
    "missing": "no such audio file",
    "empty": "empty audio file",
    "corrupt": "cannot read the audio header",
    "over-long": "0.50 s of audio exceeds data.max_duration_s = 0.4 s",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_bad_sample_is_an_error_naming_manifest_line_and_file(tmp_path, kind):
    manifest = _manifest_with_bad(tmp_path, kind)
    with pytest.raises(BadSampleError) as error:
        _batches(manifest, "error")
    message = str(error.value)
    assert f"{manifest}:3: sample 'bad': {tmp_path / 'bad.wav'}: " in message
    assert KINDS[kind] in message and "data.bad_samples: skip" in message


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_skipped_bad_sample_is_left_out_and_reported_each_epoch(tmp_path, kind, caplog):
    manifest = _manifest_with_bad(tmp_path, kind)
    with caplog.at_level(logging.WARNING, logger="slam_core.runtime.data"):
        batches = _batches(manifest, "skip")
    assert str(tmp_path / "bad.wav") in caplog.text and KINDS[kind] in caplog.text
    for epoch in (0, 1):
        batches.set_epoch(epoch)
        run = list(batches)
        assert sorted(key for batch in run for key in batch.keys) == ["u0", "u1", "u2", "u3"]
        assert [batch.skipped for batch in run] == [["bad"], []]


def test_audio_refused_while_loading_is_an_error_naming_the_file(tmp_path):
    manifest = _manifest_with_bad(tmp_path, "nan")
    batches = _batches(manifest, "error")  # the header is fine
    with pytest.raises(BadSampleError, match=rf"{manifest}:3: sample 'bad': {tmp_path / 'bad.wav'}: .*NaN"):
        list(batches)


def test_the_error_keeps_its_type_and_file_across_worker_processes(tmp_path):
    batches = _batches(_manifest_with_bad(tmp_path, "nan"), "error", num_workers=2)
    with pytest.raises(BadSampleError, match=str(tmp_path / "bad.wav")):
        list(batches)


@pytest.mark.parametrize("workers", [0, 2])
def test_audio_refused_while_loading_is_skipped_in_its_batch(tmp_path, workers):
    batches = _batches(_manifest_with_bad(tmp_path, "nan"), "skip", num_workers=workers)
    run = list(batches)
    assert sorted(key for batch in run for key in batch.keys) == ["u0", "u1", "u2", "u3"]
    (holder,) = [batch for batch in run if batch.skipped]
    assert holder.skipped == ["bad"] and "bad" not in holder.keys


def test_a_batch_of_only_skipped_samples_is_dropped_and_its_keys_ride_on(tmp_path):
    manifest = audio_manifest(tmp_path, [0.1, 0.1])
    for name in ("n0.wav", "n1.wav"):
        _make_bad("nan", tmp_path / name)
    records = [{"key": "n0", "source": "n0.wav"}, {"key": "n1", "source": "n1.wav"}]
    records += [{"key": f"u{i}", "source": f"a{i}.wav"} for i in range(2)]
    batches = _batches(write_jsonl(manifest, records), "skip", bucketing=False, shuffle=False)
    (only,) = list(batches)
    assert (only.keys, only.skipped) == (["u0", "u1"], ["n0", "n1"])
    assert batches.state_dict()["batches"] == 2  # the dropped batch counts as consumed


def test_a_manifest_of_only_bad_samples_is_an_error(tmp_path):
    manifest = write_jsonl(tmp_path / "m.jsonl", [{"key": "x", "source": "missing.wav"}])
    with pytest.raises(DataError, match=r"m\.jsonl: no usable samples, all 1 are bad"):
        _batches(manifest, "skip")
