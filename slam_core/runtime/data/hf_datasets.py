"""Hugging Face ``datasets`` as a source: a folder written by ``Dataset.save_to_disk``, or a folder of one
split's ``.parquet`` files, with one ``Audio`` column (needs ``pip install 'slam-core[hf]'``).

Each row is a sample: its columns are the sample's fields, as a SLAM-LLM jsonl line's are. ``key`` is
the ``key`` column, else ``id``, else the row number; ``target`` is the ``target`` column, else
``text`` (rename another with ``dataset.rename_column`` before saving). The audio is read from the
row's cell when the sample is loaded (the dataset is memory-mapped; indexing reads each cell's header
once for its duration); a cell holding only a path names a file, resolved against the folder.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slam_core.runtime.data.errors import AudioFileError, ManifestError
from slam_core.runtime.data.manifest import Entry

#: Columns read as the key and the target, in order of preference.
KEY_COLUMNS = ("key", "id")
TARGET_COLUMNS = ("target", "text")


def is_hf_dataset(folder: Path) -> bool:
    """Whether ``folder`` was written by ``save_to_disk`` (a Dataset or a DatasetDict) or holds ``.parquet`` files."""
    saved = (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    return saved or (folder / "dataset_dict.json").is_file() or any(folder.glob("*.parquet"))


@dataclass(frozen=True, slots=True)
class DatasetCell:
    """The encoded audio file in row ``row`` of column ``column`` of the dataset in ``folder``."""

    folder: str
    row: int
    column: str

    def read(self) -> bytes:
        cell = open_dataset(self.folder).data.fast_slice(self.row, 1).column(self.column)[0].as_py()
        data = (cell or {}).get("bytes")
        if not data:
            raise AudioFileError(f"{self.folder}: row {self.row} has no audio in column {self.column!r}")
        return data


@functools.lru_cache(maxsize=8)
def open_dataset(folder: str) -> Any:
    """The dataset in ``folder`` (memory-mapped; opened once per process), its audio column left undecoded."""
    datasets = _datasets(folder)
    path = Path(folder)
    if (path / "dataset_dict.json").is_file():
        splits = sorted(p.name for p in path.iterdir() if p.is_dir())
        raise ManifestError(
            f"{folder}: a DatasetDict (splits: {', '.join(splits)}); name one split's folder, e.g. {path / splits[0]}"
            if splits
            else f"{folder}: a DatasetDict without splits"
        )
    try:
        if (path / "state.json").is_file():
            dataset = datasets.load_from_disk(folder)
        else:
            dataset = datasets.Dataset.from_parquet([str(p) for p in sorted(path.glob("*.parquet"))])
    except Exception as exc:  # datasets and pyarrow raise assorted errors on a damaged folder
        raise ManifestError(f"{folder}: cannot open the Hugging Face dataset ({type(exc).__name__}: {exc})") from None
    column = audio_column(dataset, folder)
    return dataset.cast_column(column, datasets.Audio(decode=False))


def audio_column(dataset: Any, folder: str) -> str:
    """The dataset's one ``Audio`` column (``audio`` when there are several)."""
    from datasets import Audio

    columns = [name for name, feature in dataset.features.items() if isinstance(feature, Audio)]
    if len(columns) == 1:
        return columns[0]
    if "audio" in columns:
        return "audio"
    if not columns:
        raise ManifestError(
            f"{folder}: no Audio column among {', '.join(dataset.column_names)}; cast the audio column with "
            "dataset.cast_column(NAME, datasets.Audio()) before saving"
        )
    raise ManifestError(f"{folder}: several Audio columns ({', '.join(columns)}); name the one to read 'audio'")


def read_hf_dataset(folder: Path) -> list[Entry]:
    """One entry per row of the dataset in ``folder``."""
    dataset = open_dataset(str(folder))
    column = audio_column(dataset, str(folder))
    if len(dataset) == 0:
        raise ManifestError(f"{folder}: the dataset has no rows")
    audio = dataset.data.column(column)
    paths = audio.combine_chunks().field("path").to_pylist()
    stored = audio.combine_chunks().field("bytes").is_valid().to_pylist()
    rows = dataset.remove_columns(column).to_list()
    return [_entry(folder, index, row, column, paths[index], stored[index]) for index, row in enumerate(rows)]


def _entry(folder: Path, index: int, row: dict[str, Any], column: str, path: str | None, stored: bool) -> Entry:
    origin = f"{folder}: row {index}"
    key = next((row[name] for name in KEY_COLUMNS if name in row), index)
    if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
        raise ManifestError(f"{origin}: the key column must hold non-empty strings, got {key!r}")
    fields = {**row, "key": str(key)}
    target = next((row[name] for name in TARGET_COLUMNS if name in row), None)
    if target is not None:
        fields["target"] = target
    if stored or not path:
        fields["source"] = f"{folder}#{index}"
        return Entry(str(key), str(folder), origin, fields, stored=DatasetCell(str(folder), index, column))
    fields["source"] = str(folder / path)  # an absolute path stays as it is
    return Entry(str(key), fields["source"], origin, fields)


def _datasets(folder: str) -> Any:
    try:
        import datasets
    except ImportError:
        raise ManifestError(
            f"{folder}: a Hugging Face dataset; reading it needs the datasets package (pip install 'slam-core[hf]')"
        ) from None
    return datasets
