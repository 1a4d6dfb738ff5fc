"""AudioCaps or Clotho -> SLAM jsonl manifests for audio captioning.

    python recipes/aac/prepare_data.py audiocaps --csv-dir CSVS --audio-dir AUDIO [--output-dir data/aac-audiocaps]
    python recipes/aac/prepare_data.py clotho --root CLOTHO [--output-dir data/aac-clotho]

AudioCaps: ``train.csv``, ``val.csv`` and ``test.csv`` from github.com/cdjkim/audiocaps (columns
audiocap_id, youtube_id, start_time, caption) and the clips you downloaded from YouTube, found as
``<audio-dir>[/<split>]/<name>.<wav|flac|ogg|mp3>`` with ``<name>`` one of ``<youtube_id>_<start_time>``
(aac-datasets), ``<youtube_id>`` or ``Y<youtube_id>``. Clips that could not be downloaded are skipped
and counted; their ids go to ``missing-<split>.txt``.

Clotho (v2.1, zenodo.org/records/4783391): ``clotho_captions_<split>.csv`` (file_name, caption_1..caption_5)
and the audio folders ``<root>/<split>/<file_name>``, for the splits development, validation, evaluation.

Written: ``train.jsonl`` with one line per caption (``key`` = clip + ``_<n>``, ``target`` = that
caption), ``valid.jsonl`` and ``test.jsonl`` with one line per clip (``target`` = the list of all its
captions: the ``aac`` task learns the first in validation and scores against all of them).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from slam_recipes._prep import (
    PrepError,
    add_output_dir,
    base_parser,
    find_audio,
    read_table,
    require_dir,
    require_file,
    run,
    warn,
    write_manifest,
)

AUDIOCAPS_SPLITS = {"train": "train", "val": "valid", "test": "test"}  # csv name -> manifest name
AUDIOCAPS_HINT = "get train.csv, val.csv and test.csv from https://github.com/cdjkim/audiocaps (dataset/)"
CLOTHO_SPLITS = {"development": "train", "validation": "valid", "evaluation": "test"}
CLOTHO_CAPTIONS = tuple(f"caption_{n}" for n in range(1, 6))
CLOTHO_HINT = "download Clotho v2.1 from https://zenodo.org/records/4783391 and extract the 7z archives under --root"


def caption_records(clips: Iterable[tuple[str, Path, list[str]]], *, one_per_caption: bool) -> list[dict]:
    """Manifest lines of ``(clip id, audio, captions)``: one per caption (training) or one per clip (scoring)."""
    records = []
    for clip, audio, captions in clips:
        if one_per_caption:
            records += [
                {"key": f"{clip}_{n}", "source": audio, "target": caption} for n, caption in enumerate(captions, 1)
            ]
        else:
            records.append({"key": clip, "source": audio, "target": captions})
    return records


def write_splits(out: Path, splits: dict[str, list[tuple[str, Path, list[str]]]]) -> dict[str, int]:
    """Write ``train.jsonl`` one line per caption, the other splits one line per clip."""
    return {
        str(out / f"{name}.jsonl"): write_manifest(
            out / f"{name}.jsonl", caption_records(clips, one_per_caption=name == "train")
        )
        for name, clips in splits.items()
    }


def audiocaps_clips(csv_file: Path, audio_dir: Path, split: str, out: Path) -> list[tuple[str, Path, list[str]]]:
    """The clips of one AudioCaps csv that have audio: ``(youtube_id_start, audio, captions)``."""
    rows = read_table(csv_file, ("audiocap_id", "youtube_id", "start_time", "caption"))
    captions: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        captions.setdefault((row["youtube_id"], row["start_time"]), []).append(row["caption"].strip())
    folders = [audio_dir / split, audio_dir]
    clips, missing = [], []
    for (youtube_id, start), texts in captions.items():
        audio = find_audio(folders, (f"{youtube_id}_{start}", youtube_id, f"Y{youtube_id}"))
        if audio is None:
            missing.append(youtube_id)
        else:
            clips.append((f"{youtube_id}_{start}", audio, texts))
    if not clips:
        raise PrepError(
            f"AudioCaps {split}: none of the {len(captions)} clips of {csv_file} has an audio file in "
            f"{audio_dir / split} or {audio_dir} (tried <youtube_id>_<start_time>, <youtube_id>, Y<youtube_id> "
            "with .wav/.flac/.ogg/.mp3); point --audio-dir at the downloaded clips"
        )
    if missing:
        (out / f"missing-{split}.txt").write_text("".join(f"{youtube_id}\n" for youtube_id in missing))
        warn(
            f"AudioCaps {split}: {len(missing)} of {len(captions)} clips have no audio file, skipped "
            f"(listed in {out / f'missing-{split}.txt'})"
        )
    return sorted(clips)


def prepare_audiocaps(args) -> dict[str, int]:
    require_dir(args.csv_dir, "AudioCaps csv folder", AUDIOCAPS_HINT)
    require_dir(args.audio_dir, "AudioCaps audio folder", "download the YouTube clips of the csv files first")
    tables = {
        csv_name: require_file(args.csv_dir / f"{csv_name}.csv", f"AudioCaps {csv_name} captions", AUDIOCAPS_HINT)
        for csv_name in AUDIOCAPS_SPLITS
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    splits = {
        name: audiocaps_clips(tables[csv_name], args.audio_dir, csv_name, args.output_dir)
        for csv_name, name in AUDIOCAPS_SPLITS.items()
    }
    return write_splits(args.output_dir, splits)


def clotho_clips(root: Path, split: str) -> list[tuple[str, Path, list[str]]]:
    """The clips of one Clotho split: ``(file stem, audio, its five captions)``."""
    csv_file = require_file(root / f"clotho_captions_{split}.csv", f"Clotho {split} captions", CLOTHO_HINT)
    folder = require_dir(root / split, f"Clotho {split} audio folder", CLOTHO_HINT)
    clips = []
    for row in read_table(csv_file, ("file_name", *CLOTHO_CAPTIONS)):
        audio = folder / row["file_name"]
        if not audio.is_file():
            raise PrepError(f"{csv_file}: the audio of {row['file_name']!r} is missing from {folder}; {CLOTHO_HINT}")
        clips.append((Path(row["file_name"]).stem, audio, [row[name].strip() for name in CLOTHO_CAPTIONS]))
    return sorted(clips)


def prepare_clotho(args) -> dict[str, int]:
    require_dir(args.root, "Clotho root", CLOTHO_HINT)
    return write_splits(
        args.output_dir, {name: clotho_clips(args.root, split) for split, name in CLOTHO_SPLITS.items()}
    )


def build_parser():
    parser = base_parser(__file__, __doc__)
    datasets = parser.add_subparsers(dest="dataset", required=True, metavar="{audiocaps,clotho}")
    audiocaps = datasets.add_parser("audiocaps", help="AudioCaps csv files + downloaded clips")
    audiocaps.add_argument("--csv-dir", type=Path, required=True, help="folder with train.csv, val.csv, test.csv")
    audiocaps.add_argument(
        "--audio-dir", type=Path, required=True, help="downloaded clips (optionally in split folders)"
    )
    add_output_dir(audiocaps, __file__, "data/aac-audiocaps")
    audiocaps.set_defaults(prepare=prepare_audiocaps)
    clotho = datasets.add_parser("clotho", help="Clotho v2.1 captions + audio folders")
    clotho.add_argument("--root", type=Path, required=True, help="folder with clotho_captions_*.csv and the audio")
    add_output_dir(clotho, __file__, "data/aac-clotho")
    clotho.set_defaults(prepare=prepare_clotho)
    return parser


def prepare(args) -> dict[str, int]:
    return args.prepare(args)


def main(argv=None) -> int:
    return run(build_parser(), prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
