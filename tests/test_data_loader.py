"""build_batches: spec to batches, padding, shuffling, rank shares, exact resume, preprocessor guards, DataSpec."""

from __future__ import annotations

import pytest
import torch
from test_data_support import audio_manifest, preprocessor, write_audio

from slam_core.audio import RawAudio
from slam_core.runtime.data import Batch, Batches, DataError, build_batches, manifest_batches, read_audio
from slam_core.spec import DataSpec, SpecError, validate_spec
from slam_core.toy import ToyEncoder

SECONDS = [0.05, 0.3, 0.1, 0.45, 0.2, 0.15, 0.5, 0.25, 0.35, 0.12, 0.4, 0.08]
COMPONENTS = {
    "encoder": {
        "type": "toy-encoder",
        "shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    },
    "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 32},
    "llm": {"type": "toy-llm", "shape": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64}},
    "task": {"type": "asr"},
}


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return audio_manifest(tmp_path_factory.mktemp("data"), SECONDS)


def spec_for(manifest, data=None, **sections):
    data = {"train_manifest": str(manifest), "valid_manifest": str(manifest), "num_workers": 0, **(data or {})}
    return validate_spec({**COMPONENTS, "data": data, **sections})


def batches_of(manifest, *, shuffle=True, seed=0, rank=0, world_size=1, **data) -> Batches:
    spec = DataSpec(**{"batch_size": 3, "num_workers": 0, **data})
    return manifest_batches(
        manifest, preprocessor(), spec, shuffle=shuffle, seed=seed, rank=rank, world_size=world_size
    )


def same(a: Batch, b: Batch) -> bool:
    return (
        a.keys == b.keys
        and torch.equal(a.features, b.features)
        and torch.equal(a.feature_lengths, b.feature_lengths)
        and a.samples == b.samples
        and a.skipped == b.skipped
    )


def test_batches_from_a_spec_pad_features_with_zeros_and_carry_the_samples(manifest):
    spec = spec_for(manifest, {"batch_size": 4})
    process = ToyEncoder(spec.encoder).preprocessor()
    run = list(build_batches(spec, "valid", process))
    assert sorted(key for batch in run for key in batch.keys) == sorted(f"u{i}" for i in range(len(SECONDS)))
    for batch in run:
        assert 1 <= len(batch) <= 4 and batch.features.shape[0] == len(batch) and batch.features.shape[2] == 8
        assert int(batch.feature_lengths.max()) == batch.features.shape[1]
        for row, (key, sample, length) in enumerate(zip(batch.keys, batch.samples, batch.feature_lengths, strict=True)):
            i = int(key[1:])
            assert sample == {"key": key, "source": str(manifest.parent / f"a{i}.wav"), "target": f"text {i}"}
            alone = process(read_audio(sample["source"]))
            assert int(length) == alone.shape[0]
            assert torch.equal(batch.features[row, :length], alone)
            assert not batch.features[row, length:].any()


def test_the_test_split_takes_infer_batch_size_and_a_missing_manifest_is_named(manifest):
    spec = spec_for(manifest, {"batch_size": 4, "test_manifest": str(manifest)}, infer={"batch_size": 1})
    assert {len(batch) for batch in build_batches(spec, "test", preprocessor())} == {1}
    with pytest.raises(DataError, match=r"data\.test_manifest is not set"):
        build_batches(spec_for(manifest), "test", preprocessor())
    with pytest.raises(ValueError, match="split must be"):
        build_batches(spec, "dev", preprocessor())


def test_train_reshuffles_each_epoch_valid_keeps_its_order(manifest):
    spec = spec_for(manifest, {"batch_size": 2})
    for split, changes in (("train", True), ("valid", False)):
        batches = build_batches(spec, split, preprocessor())
        orders = []
        for epoch in (0, 1, 0):
            batches.set_epoch(epoch)
            orders.append([batch.keys for batch in batches])
        assert orders[0] == orders[2]
        assert (orders[0] != orders[1]) is changes


def test_max_batch_seconds_bounds_every_batch_of_several_samples(manifest):
    for batch in batches_of(manifest, max_batch_seconds=0.6, batch_size=None):
        seconds = [SECONDS[int(key[1:])] for key in batch.keys]
        assert len(seconds) == 1 or len(seconds) * max(seconds) <= 0.6


def test_ranks_share_the_data_disjointly_with_equal_batch_counts(manifest):
    ranks = [batches_of(manifest, rank=rank, world_size=3, batch_size=2) for rank in range(3)]
    keys = [[key for batch in rank for key in batch.keys] for rank in ranks]
    assert len({len(rank) for rank in ranks}) == 1 and len({len(list(rank)) for rank in ranks}) == 1
    assert sorted(key for rank in keys for key in rank) == sorted(f"u{i}" for i in range(len(SECONDS)))


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_continues_with_exactly_the_remaining_batches(manifest, workers):
    reference = batches_of(manifest, num_workers=workers, max_batch_seconds=0.7, batch_size=3, seed=5)
    reference.set_epoch(1)
    run, state = [], None
    for batch in reference:
        run.append(batch)
        if len(run) == 2:
            state = reference.state_dict()
    assert state == {**state, "epoch": 1, "batches": 2} and len(run) > 3

    resumed = batches_of(manifest, num_workers=workers, max_batch_seconds=0.7, batch_size=3, seed=5)
    resumed.load_state_dict(state)
    resumed.set_epoch(1)  # a trainer sets the epoch it resumes in: the resume point stays
    rest = list(resumed)
    assert len(rest) == len(run) - 2 and all(same(a, b) for a, b in zip(rest, run[2:], strict=True))
    assert resumed.state_dict() == reference.state_dict()
    again = list(resumed)  # iterating the epoch again starts at its beginning
    assert all(same(a, b) for a, b in zip(again, run, strict=True))


def test_a_new_epoch_discards_the_resume_point(manifest):
    batches = batches_of(manifest)
    batches.load_state_dict({**batches.state_dict(), "batches": 3})
    batches.set_epoch(1)
    fresh = batches_of(manifest)
    fresh.set_epoch(1)
    assert [b.keys for b in batches] == [b.keys for b in fresh]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"world_size": 2}, "saved with world_size 2, this run has 1"),
        ({"fingerprint": "0" * 16}, "saved for another manifest, seed or batching settings"),
        ({"extra": 1}, "not a data state"),
    ],
)
def test_a_state_from_another_setup_is_refused(manifest, change, message):
    batches = batches_of(manifest)
    with pytest.raises(ValueError, match=message):
        batches.load_state_dict({**batches.state_dict(), **change})


def test_a_different_seed_changes_the_fingerprint(manifest):
    assert batches_of(manifest, seed=1).state_dict() != batches_of(manifest, seed=2).state_dict()


def test_workers_get_the_preprocessor_never_a_module(manifest):
    encoder = ToyEncoder(spec_for(manifest).encoder)
    with pytest.raises(TypeError, match=r"\(encoder\.preprocessor\(\)\), not a module"):
        manifest_batches(manifest, encoder, DataSpec(num_workers=0), shuffle=False, seed=0)
    with pytest.raises(TypeError, match="cannot be pickled"):
        manifest_batches(manifest, lambda raw: torch.zeros(1, 1), DataSpec(num_workers=1), shuffle=False, seed=0)


def test_data_spec_batch_limits():
    assert DataSpec().batch_size == 4
    seconds_only = DataSpec(max_batch_seconds=20)
    assert seconds_only.batch_size is None
    assert DataSpec.model_validate(seconds_only.model_dump()).batch_size is None  # round trips
    assert DataSpec(max_batch_seconds=20, batch_size=8).batch_size == 8
    with pytest.raises(SpecError, match=r"set data\.batch_size, data\.max_batch_seconds or both"):
        validate_spec({**COMPONENTS, "data": {"batch_size": None}})
    with pytest.raises(SpecError, match=r"data\.bad_samples"):
        validate_spec({**COMPONENTS, "data": {"bad_samples": "ignore"}})


def test_a_lhotse_cut_manifest_loads_each_cut_segment(tmp_path):
    from lhotse import CutSet, MonoCut, Recording

    stereo = write_audio(tmp_path / "s.wav", 0.5, channels=2)
    recording = Recording.from_file(tmp_path / "s.wav")
    cuts = [MonoCut("left", 0.1, 0.2, 0, recording=recording), MonoCut("right", 0.25, 0.25, 1, recording=recording)]
    CutSet.from_cuts(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    process = preprocessor()
    (batch,) = manifest_batches(
        tmp_path / "cuts.jsonl.gz", process, DataSpec(batch_size=2, num_workers=0), shuffle=False, seed=0
    )
    segments = {"left": stereo[1600:4800, 0], "right": stereo[4000:8000, 1]}
    for row, key in enumerate(batch.keys):
        expected = process(RawAudio(segments[key], 16000))
        assert torch.equal(batch.features[row, : batch.feature_lengths[row]], expected)
