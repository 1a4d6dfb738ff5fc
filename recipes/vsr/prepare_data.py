"""LRS3, as av_hubert's preparation scripts leave it -> SLAM jsonl manifests for lip reading.

Reads ``<lrs3>/433h_data/{train,valid,test}.{tsv,wrd}`` (written by av_hubert's ``lrs3_manifest.py``;
``--subset 30h`` reads ``30h_data``): a ``.tsv`` has a root line, then one line per clip with its id,
video (``.mp4`` mouth crops, 96x96 at 25 fps, from ``align_mouth.py``), audio (``.wav``, 16 kHz),
video frames and audio samples; line ``i`` of the ``.wrd`` file is clip ``i``'s transcript. The paths
in a ``.tsv`` are absolute; when the dataset has moved since, ``<lrs3>/video/<id>.mp4`` and
``<lrs3>/audio/<id>.wav`` are used instead.

Writes ``train.jsonl``, ``valid.jsonl`` and ``test.jsonl``; each line:
``{"key": <id>, "source": <video>, "audio": <wav>, "target": <transcript>}`` with the paths relative
to the manifest (``audio`` lets an audio-visual encoder use the same manifests). A clip whose video is
missing is an error (``--skip-missing`` skips and counts them instead).
"""

from __future__ import annotations

import sys
from pathlib import Path

from slam_recipes._prep import (
    PrepError,
    base_parser,
    relative_source,
    require_dir,
    require_file,
    run,
    warn,
    write_manifest,
)

SPLITS = ("train", "valid", "test")
HINT = (
    "prepare LRS3 with facebookresearch/av_hubert's avhubert/preparation scripts (lrs3_prepare.py, "
    "detect_landmark.py, align_mouth.py, count_frames.py, lrs3_manifest.py) and pass its root as --lrs3"
)


def read_split(tsv: Path, wrd: Path) -> list[tuple[str, str, str, str]]:
    """``(id, video, audio, transcript)`` of every clip of one split."""
    rows = tsv.read_text(encoding="utf-8").splitlines()[1:]
    labels = wrd.read_text(encoding="utf-8").splitlines()
    if len(rows) != len(labels):
        raise PrepError(f"{tsv} has {len(rows)} clips but {wrd} has {len(labels)} transcripts; re-run lrs3_manifest.py")
    clips = []
    for number, (row, label) in enumerate(zip(rows, labels, strict=True), start=2):
        fields = row.split("\t")
        if len(fields) != 5:
            raise PrepError(
                f"{tsv}:{number}: expected 5 tab-separated fields (id, video, audio, video frames, audio samples), "
                f"got {len(fields)}"
            )
        clips.append((fields[0], fields[1], fields[2], label.strip()))
    return clips


def locate(listed: str, root: Path, fallback: str) -> Path | None:
    """The file a ``.tsv`` names, or its place under ``root`` if the dataset moved; None if neither exists."""
    for candidate in (Path(listed), root / fallback):
        if candidate.is_file():
            return candidate
    return None


def split_records(lrs3: Path, data: Path, split: str, manifest: Path, skip_missing: bool) -> list[dict]:
    clips = read_split(
        require_file(data / f"{split}.tsv", f"LRS3 {split} table", HINT),
        require_file(data / f"{split}.wrd", f"LRS3 {split} transcripts", HINT),
    )
    records, missing = [], []
    for key, video, audio, text in clips:
        video_path = locate(video, lrs3, f"video/{key}.mp4")
        audio_path = locate(audio, lrs3, f"audio/{key}.wav")
        if video_path is None:
            missing.append(key)
            continue
        record = {"key": key, "source": video_path, "target": text}
        if audio_path is not None:
            record["audio"] = relative_source(audio_path, manifest)
        records.append(record)
    if missing and not skip_missing:
        raise PrepError(
            f"{data / f'{split}.tsv'}: the videos of {len(missing)} of {len(clips)} clips are missing (e.g. "
            f"{missing[0]}.mp4 under {lrs3 / 'video'}); run align_mouth.py for them, or pass --skip-missing"
        )
    if missing:
        warn(f"{split}: skipped {len(missing)} of {len(clips)} clips without a video")
    return records


def prepare(args) -> dict[str, int]:
    lrs3 = require_dir(args.lrs3, "LRS3 root", HINT)
    data = require_dir(lrs3 / f"{args.subset}_data", f"LRS3 {args.subset} manifest folder", HINT)
    written = {}
    for split in SPLITS:
        manifest = args.output_dir / f"{split}.jsonl"
        written[str(manifest)] = write_manifest(manifest, split_records(lrs3, data, split, manifest, args.skip_missing))
    return written


def build_parser():
    parser = base_parser(__file__, __doc__, default_output="data/lrs3")
    parser.add_argument("--lrs3", type=Path, required=True, help="LRS3 root after av_hubert's preparation")
    parser.add_argument(
        "--subset", choices=("433h", "30h"), default="433h", help="training set: pretrain + trainval, or trainval"
    )
    parser.add_argument("--skip-missing", action="store_true", help="skip clips whose video is missing")
    return parser


def main(argv=None) -> int:
    return run(build_parser(), prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
