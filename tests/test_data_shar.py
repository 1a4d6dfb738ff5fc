"""lhotse Shar folders as a data source: `slam data shard` round trip, lazy reads, rank × worker shares,
a SIGKILL mid-epoch resume on a sharded corpus, and the errors a damaged folder gives."""

from __future__ import annotations

import gzip
import json
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from support.kill_resume import different_tensors, reference_and_resumed
from support.synthetic import toy_spec
from test_data_support import audio_manifest, preprocessor, write_audio, write_jsonl

from slam_core.runtime.cli import main
from slam_core.runtime.data import BadSampleError, ManifestError, manifest_batches, read_audio, read_manifest
from slam_core.runtime.data.media import read_raw
from slam_core.spec import DataSpec

DEMO_TRAIN = Path(__file__).resolve().parent.parent / "recipes" / "demo" / "data" / "train.jsonl"
SECONDS = [0.05, 0.3, 0.1, 0.45, 0.2, 0.15, 0.5, 0.25, 0.35, 0.12, 0.4, 0.08]


def shard(manifest, out, *options: str) -> None:
    assert main(["data", "shard", str(manifest), str(out), *options]) == 0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A 12-sample manifest and its Shar copy in shards of 5 (3 shards)."""
    root = tmp_path_factory.mktemp("corpus")
    manifest = audio_manifest(root, SECONDS)
    shard(manifest, root / "shar", "--shard-size", "5")
    return manifest, root / "shar"


def test_a_sharded_manifest_reads_back_the_same_samples_and_audio(tmp_path, capsys):
    stereo = write_audio(tmp_path / "stereo.wav", 0.3, channels=2, seed=7)
    mono = write_audio(tmp_path / "mono.wav", 0.2, seed=8)
    manifest = write_jsonl(
        tmp_path / "m.jsonl",
        [
            {"key": "a.1", "source": "stereo.wav", "target": "two channels", "speaker": "s1"},
            {"key": "b", "source": "mono.wav", "target": "one channel", "prompt": "Transcribe"},
            {"key": "c", "source": "mono.wav", "target": "again"},
        ],
    )
    capsys.readouterr()
    shard(manifest, tmp_path / "out", "--shard-size", "2")
    assert capsys.readouterr().out == f"slam data shard: 2 shards written to {tmp_path / 'out'}\n"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "cuts.000000.jsonl.gz", "cuts.000001.jsonl.gz", "recording.000000.tar", "recording.000001.tar",
    ]  # fmt: skip
    original, sharded = read_manifest(manifest), read_manifest(tmp_path / "out")
    assert [e.key for e in sharded] == ["a.1", "b", "c"]
    for before, after in zip(original, sharded, strict=True):
        assert {k: v for k, v in after.fields.items() if k not in ("source", "offset", "duration")} == {
            k: v for k, v in before.fields.items() if k != "source"
        }
        assert after.fields["source"] == f"{after.path}#{after.key}.flac"
        waveform = read_raw(after, "audio")
        assert waveform.sample_rate == 16000
        assert np.array_equal(waveform.waveform, read_audio(before.path).waveform)
    assert np.array_equal(read_raw(sharded[0], "audio").waveform, stereo.mean(axis=1))
    assert np.array_equal(read_raw(sharded[1], "audio").waveform, mono[:, 0])


def test_a_lhotse_segment_is_sharded_as_its_own_audio(tmp_path):
    full = write_audio(tmp_path / "long.wav", 1.0, seed=3)
    cut = {
        "id": "seg", "start": 0.25, "duration": 0.5, "channel": 0, "type": "MonoCut",
        "supervisions": [{"id": "seg", "recording_id": "r", "start": 0, "duration": 0.5, "text": "a segment"}],
        "recording": {"id": "r", "sources": [{"type": "file", "channels": [0], "source": "long.wav"}],
                      "sampling_rate": 16000, "num_samples": 16000, "duration": 1.0},
    }  # fmt: skip
    manifest = write_jsonl(tmp_path / "cuts.jsonl", [cut])
    shard(manifest, tmp_path / "out")
    (entry,) = read_manifest(tmp_path / "out")
    assert (entry.offset, entry.duration, entry.fields["target"]) == (0.0, 0.5, "a segment")
    assert np.array_equal(read_raw(entry, "audio").waveform, full[4000:12000, 0])


def test_indexing_reads_no_audio_a_damaged_member_is_found_when_its_sample_loads(tmp_path):
    manifest = audio_manifest(tmp_path, [0.2, 0.3])
    shard(manifest, tmp_path / "shar")
    tar = tmp_path / "shar" / "recording.000000.tar"
    with tarfile.open(tar) as archive:
        member = archive.getmember("u1.flac")
    with open(tar, "r+b") as stream:  # overwrite the audio bytes of u1, keep the tar intact
        stream.seek(member.offset_data)
        stream.write(b"\0" * member.size)
    batches = manifest_batches(
        tmp_path / "shar", preprocessor(), DataSpec(batch_size=1, num_workers=0), shuffle=False, seed=0
    )
    assert batches.planner.durations == [0.2, 0.3]  # from the cuts, not the damaged audio
    run = iter(batches)
    assert next(run).keys == ["u0"]
    with pytest.raises(BadSampleError, match=rf"sample 'u1': {tar}: cannot read the audio"):
        next(run)


def test_two_ranks_of_two_workers_share_the_shards_without_duplicates_and_decode_like_the_manifest(corpus):
    manifest, shar = corpus
    data = DataSpec(batch_size=3, num_workers=2, num_buckets=2)

    def loaded(source, rank):
        batches = manifest_batches(source, preprocessor(), data, shuffle=True, seed=5, rank=rank, world_size=2)
        batches.set_epoch(1)
        return {key: batch.features[row, :length] for batch in batches
                for row, (key, length) in enumerate(zip(batch.keys, batch.feature_lengths, strict=True))}  # fmt: skip

    shares = [loaded(shar, rank) for rank in (0, 1)]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] | shares[1]) == sorted(f"u{i}" for i in range(len(SECONDS)))
    for rank, share in enumerate(shares):
        from_manifest = loaded(manifest, rank)
        assert list(share) == list(from_manifest)  # the same plan: durations and keys are the manifest's
        assert all(torch.equal(share[key], from_manifest[key]) for key in share)


def test_sigkill_mid_epoch_on_the_sharded_demo_corpus_resumes_bit_exactly(tmp_path):
    from slam_recipes._demo.run import first_lines

    manifest = first_lines(DEMO_TRAIN, 300, tmp_path / "train.jsonl")
    shard(manifest, tmp_path / "shar", "--shard-size", "100")  # 300 utterances, 3 shards
    spec = toy_spec(
        data={"train_manifest": str(tmp_path / "shar"), "batch_size": 32, "num_workers": 1, "num_buckets": 4},
        peft={"dropout": 0.2},
        train={"epochs": 2, "save_every_steps": 3, "keep_last": None, "dtype": "bf16"},
    )
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))

    def command(run_dir, delay: float) -> list[str]:
        return [sys.executable, "-m", "support.synthetic", str(spec_path), str(run_dir), "--spec-data",
                "--step-delay", str(delay)]  # fmt: skip

    expected, resumed = reference_and_resumed(command, tmp_path / "reference", tmp_path / "victim", "step-00000003")
    steps = expected["step"]
    per_epoch = steps // 2
    resumed_at = int(resumed["resumed_from"].rsplit("-", 1)[1])
    assert resumed_at % 3 == 0 and 3 <= resumed_at < per_epoch, "resumed mid-epoch 0"
    assert resumed["step"] == steps
    assert resumed["losses"] == {s: expected["losses"][s] for s in map(str, range(resumed_at + 1, steps + 1))}
    assert not different_tensors(tmp_path / "reference", tmp_path / "victim", steps)


# damaged and unknown folders ------------------------------------------------------------------------


@pytest.fixture
def copy(tmp_path, corpus):
    """A fresh copy of the corpus's Shar folder, to damage."""
    import shutil

    return shutil.copytree(corpus[1], tmp_path / "shar")


def test_an_empty_or_unknown_folder_says_what_a_folder_source_is(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"empty: an empty folder; expected a lhotse Shar folder \(cuts\.000000"):
        read_manifest(tmp_path / "empty")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ManifestError, match="other: a folder of no known layout; expected a lhotse Shar folder"):
        read_manifest(tmp_path / "other")


def test_a_shar_folder_without_audio_shards_or_with_a_shard_missing_is_refused(copy):
    (copy / "recording.000001.tar").unlink()
    with pytest.raises(
        ManifestError, match=r"not a complete Shar folder: Expected 3 shards available for field 'recording'"
    ):
        read_manifest(copy)
    for tar in copy.glob("recording.*"):
        tar.unlink()
    with pytest.raises(ManifestError, match=r"has no recording\.\*\.tar shards \(fields: none\)"):
        read_manifest(copy)


def test_a_compressed_or_truncated_tar_is_refused_naming_the_shard(copy):
    tar = copy / "recording.000001.tar"
    data = tar.read_bytes()
    tar.write_bytes(gzip.compress(data))
    with pytest.raises(ManifestError, match=rf"{tar}: not an uncompressed tar file .*must be plain \.tar"):
        read_manifest(copy)
    tar.write_bytes(data[: len(data) // 2])
    with pytest.raises(ManifestError, match=rf"{tar}: not an uncompressed tar file \(unexpected end of data\)"):
        read_manifest(copy)


def test_a_cut_without_its_audio_member_names_the_cut_and_the_shard(copy):
    cuts = copy / "cuts.000002.jsonl.gz"
    lines = gzip.decompress(cuts.read_bytes()).decode().splitlines()
    extra = json.loads(lines[0]) | {"id": "ghost"}
    cuts.write_bytes(gzip.compress(("\n".join([*lines, json.dumps(extra)]) + "\n").encode()))
    with pytest.raises(
        ManifestError, match=rf"{cuts}:3: cut 'ghost' has no audio member in {copy / 'recording.000002.tar'}"
    ):
        read_manifest(copy)


def test_slam_data_shard_refuses_a_used_folder_and_a_bad_shard_size(tmp_path, corpus, capsys):
    manifest, shar = corpus
    assert main(["data", "shard", str(manifest), str(shar)]) == 2
    assert capsys.readouterr().err == (
        f"slam: error: {shar}: already exists and is not an empty folder; name a new folder to write the shards to\n"
    )
    assert main(["data", "shard", str(manifest), str(tmp_path / "new"), "--shard-size", "0"]) == 2
    assert "slam: error: --shard-size must be at least 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert main(["data", "shard", str(tmp_path / "missing.jsonl"), str(tmp_path / "new")]) == 2
    assert "missing.jsonl: cannot read the manifest" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing half-written left behind
