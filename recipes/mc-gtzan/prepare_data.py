"""GTZAN -> SLAM jsonl manifests for music genre classification.

Reads ``<root>/<genre>/<genre>.000NN.wav`` (``--root`` may also be the folder above, holding
``genres/`` or Kaggle's ``genres_original/``). The split:

- with ``--split-lists DIR``: the fault-filtered split of Kereliuk, Sturm & Larsen (2015),
  ``train_filtered.txt`` (443), ``valid_filtered.txt`` (197), ``test_filtered.txt`` (290), as published
  in github.com/coreyker/dnn-mgr (``gtzan/``); each line is ``<genre>/<genre>.000NN.wav``.
- without it: a seeded stratified random split of all 1000 clips (``--seed``, 80/10/10 per genre).
  This is *not* the standard split: numbers on it are not comparable with published ones.

A clip that soundfile cannot read (the Kaggle copy's ``jazz.00054.wav`` is corrupt) is skipped
with a warning. Each line: ``{"key": "blues.00012", "source": ..., "target": "blues"}``.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import soundfile
from slam_recipes._prep import PrepError, base_parser, require_dir, require_file, run, warn, write_manifest

GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
SPLIT_FILES = {"train": "train_filtered.txt", "valid": "valid_filtered.txt", "test": "test_filtered.txt"}
STRATIFIED = {"train": 0.8, "valid": 0.1}  # the rest is test
GTZAN_HINT = "extract GTZAN (genres.tar.gz) so that --root holds blues/, classical/, ... with the .wav clips"
LISTS_HINT = (
    "download train_filtered.txt, valid_filtered.txt and test_filtered.txt from "
    "https://github.com/coreyker/dnn-mgr/tree/master/gtzan, or leave out --split-lists for a stratified split"
)


def genres_root(root: Path) -> Path:
    """The folder holding one sub-folder per genre: ``root``, ``root/genres`` or ``root/genres_original``."""
    require_dir(root, "GTZAN root", GTZAN_HINT)
    for candidate in (root, root / "genres", root / "genres_original"):
        if all((candidate / genre).is_dir() for genre in GENRES):
            return candidate
    raise PrepError(f"GTZAN genre folders ({', '.join(GENRES)}) not found in {root}; {GTZAN_HINT}")


def all_clips(genres: Path) -> list[str]:
    """Every clip as ``<genre>/<file>``, the form the split lists use."""
    clips = sorted(f"{genre}/{path.name}" for genre in GENRES for path in (genres / genre).glob("*.wav"))
    if not clips:
        raise PrepError(f"no .wav clips under {genres}/<genre>/; {GTZAN_HINT}")
    return clips


def listed_split(lists: Path) -> dict[str, list[str]]:
    """The published fault-filtered split: split name -> ``<genre>/<file>`` entries."""
    require_dir(lists, "GTZAN split-list folder", LISTS_HINT)
    split = {}
    for name, filename in SPLIT_FILES.items():
        text = require_file(lists / filename, f"GTZAN {name} list", LISTS_HINT).read_text(encoding="utf-8")
        split[name] = [line.strip() for line in text.splitlines() if line.strip()]
    return split


def stratified_split(clips: list[str], seed: int) -> dict[str, list[str]]:
    """A seeded random split with the same train/valid/test proportions in every genre."""
    rng = random.Random(seed)
    split = {"train": [], "valid": [], "test": []}
    for genre in GENRES:
        members = sorted(clip for clip in clips if clip.split("/")[0] == genre)
        rng.shuffle(members)
        train_end = round(len(members) * STRATIFIED["train"])
        valid_end = train_end + round(len(members) * STRATIFIED["valid"])
        split["train"] += members[:train_end]
        split["valid"] += members[train_end:valid_end]
        split["test"] += members[valid_end:]
    return {name: sorted(entries) for name, entries in split.items()}


def readable(path: Path) -> bool:
    """Whether soundfile can read the header of ``path``."""
    try:
        soundfile.info(path)
    except (soundfile.SoundFileError, RuntimeError):
        return False
    return True


def split_records(genres: Path, entries: list[str], name: str, clips: set[str], unreadable: set[str]) -> list[dict]:
    """Manifest lines of ``<genre>/<file>`` entries: a non-clip is an error, an unreadable clip is left out."""
    records = []
    for entry in entries:
        if entry not in clips:
            raise PrepError(f"the {name} split lists {entry!r}, which is not a clip under {genres}; {GTZAN_HINT}")
        if entry not in unreadable:
            records.append({"key": Path(entry).stem, "source": genres / entry, "target": entry.split("/")[0]})
    return records


def prepare(args) -> dict[str, int]:
    genres = genres_root(args.root)
    clips = all_clips(genres)
    unreadable = {clip for clip in clips if not readable(genres / clip)}
    if unreadable:
        warn(f"GTZAN: skipped {len(unreadable)} unreadable clip(s): {', '.join(sorted(unreadable))}")
    if args.split_lists is not None:
        split = listed_split(args.split_lists)
    else:
        warn(f"no --split-lists: using a stratified random split (seed {args.seed}), not the fault-filtered one")
        split = stratified_split([clip for clip in clips if clip not in unreadable], args.seed)
    out = args.output_dir
    return {
        str(out / f"{name}.jsonl"): write_manifest(
            out / f"{name}.jsonl", split_records(genres, entries, name, set(clips), unreadable)
        )
        for name, entries in split.items()
    }


def build_parser():
    parser = base_parser(__file__, __doc__, "data/mc-gtzan")
    parser.add_argument("--root", type=Path, required=True, help="GTZAN's genres folder (or the folder above it)")
    parser.add_argument("--split-lists", type=Path, help="folder with the fault-filtered *_filtered.txt lists")
    parser.add_argument("--seed", type=int, default=0, help="seed of the stratified split (default: %(default)s)")
    return parser


def main(argv=None) -> int:
    return run(build_parser(), prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
