"""Hugging Face datasets as a data source: a save_to_disk folder and a parquet folder with an Audio column
decode the same samples as the equivalent manifest; the errors of a folder that cannot be read."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_data_support import audio_manifest, preprocessor

from slam_core.runtime.data import ManifestError, manifest_batches, read_manifest
from slam_core.spec import DataSpec

datasets = pytest.importorskip("datasets")

SECONDS = [0.2, 0.35, 0.1, 0.3, 0.25]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Parquet folders are converted into the datasets cache: keep it in the test's folder."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


@pytest.fixture
def corpus(tmp_path):
    """A manifest, and the same samples as a dataset (``id``, ``text``, ``audio`` bytes, a task field)."""
    manifest = audio_manifest(tmp_path / "wav", SECONDS)
    entries = read_manifest(manifest)
    rows = {
        "id": [e.key for e in entries],
        "text": [e.fields["target"] for e in entries],
        "prompt": ["Transcribe"] * len(entries),
        "audio": [{"bytes": Path(e.path).read_bytes(), "path": f"{e.key}.wav"} for e in entries],
    }
    return manifest, datasets.Dataset.from_dict(rows).cast_column("audio", datasets.Audio())


def decoded(source, workers=0):
    data = DataSpec(batch_size=2, num_workers=workers)
    batches = manifest_batches(source, preprocessor(), data, shuffle=False, seed=0)
    return [(batch.keys, batch.features, batch.feature_lengths, batch.samples) for batch in batches]


@pytest.mark.parametrize("layout", ["save_to_disk", "parquet"])
def test_a_dataset_folder_decodes_the_samples_of_the_equivalent_manifest(tmp_path, corpus, layout):
    manifest, dataset = corpus
    folder = tmp_path / layout
    if layout == "save_to_disk":
        dataset.save_to_disk(str(folder))
    else:
        folder.mkdir()
        dataset.to_parquet(str(folder / "train-00000.parquet"))
    want, got = decoded(manifest), decoded(folder, workers=1)  # a worker reads the cells
    assert [keys for keys, *_ in got] == [keys for keys, *_ in want]
    for (_, features, lengths, samples), (_, ref_features, ref_lengths, ref_samples) in zip(got, want, strict=True):
        assert torch.equal(features, ref_features) and torch.equal(lengths, ref_lengths)
        for sample, reference in zip(samples, ref_samples, strict=True):
            assert sample["target"] == reference["target"] and sample["prompt"] == "Transcribe"
            assert sample["source"] == f"{folder}#{int(sample['key'][1:])}"


def test_the_key_falls_back_to_the_row_number_and_a_path_only_cell_names_a_file(tmp_path, corpus):
    manifest, _ = corpus
    # a parquet file whose audio cells hold only a path: the sample reads that file
    path_only = datasets.Dataset.from_dict({"audio": [str(manifest.parent / "a1.wav")], "target": ["t"]})
    path_only.cast_column("audio", datasets.Audio()).to_parquet(str(tmp_path / "p.parquet"))
    (entry,) = read_manifest(tmp_path)
    assert (entry.key, entry.path, entry.stored, entry.fields["target"]) == (
        "0",
        str(manifest.parent / "a1.wav"),
        None,
        "t",
    )


def test_a_dataset_dict_or_a_dataset_without_audio_is_refused_saying_what_to_do(tmp_path, corpus):
    _, dataset = corpus
    datasets.DatasetDict({"train": dataset, "test": dataset}).save_to_disk(str(tmp_path / "dict"))
    split = tmp_path / "dict" / "test"
    message = rf"dict: a DatasetDict \(splits: test, train\); name one split's folder, e.g. {split}"
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "dict")
    dataset.remove_columns("audio").save_to_disk(str(tmp_path / "silent"))
    with pytest.raises(ManifestError, match=r"silent: no Audio column among id, text, prompt; cast the audio column"):
        read_manifest(tmp_path / "silent")
