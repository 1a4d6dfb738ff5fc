"""A manifest that is a folder: lhotse Shar shards, or a Hugging Face dataset, recognised by the files in it."""

from __future__ import annotations

from pathlib import Path

from slam_core.runtime.data.errors import ManifestError
from slam_core.runtime.data.manifest import Entry

FOLDER_KINDS = (
    "a lhotse Shar folder (cuts.000000.jsonl.gz beside recording.000000.tar, as `slam data shard` writes), "
    "a Hugging Face dataset written by save_to_disk, or a folder of .parquet files"
)


def read_folder(folder: Path) -> list[Entry]:
    """The entries of a folder of shards, read by the reader its layout names."""
    from slam_core.runtime.data.hf_datasets import is_hf_dataset, read_hf_dataset
    from slam_core.runtime.data.shar import is_shar_folder, read_shar

    try:
        if is_shar_folder(folder):
            return read_shar(folder)
        if is_hf_dataset(folder):
            return read_hf_dataset(folder)
        empty = not any(folder.iterdir())
    except OSError as exc:
        raise ManifestError(f"{folder}: cannot read the folder: {exc.strerror or exc}") from None
    raise ManifestError(
        f"{folder}: {'an empty folder' if empty else 'a folder of no known layout'}; expected {FOLDER_KINDS}"
    )
