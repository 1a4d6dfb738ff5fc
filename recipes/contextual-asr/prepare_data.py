"""LibriSpeech + the is21_deep_bias biasing lists -> SLAM jsonl manifests for contextual ASR.

Reads the LibriSpeech layout (``<root>/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt``
beside the ``.flac`` files) and, for the test splits, the biasing-list files of
facebookresearch/fbai-speech ``is21_deep_bias/ref/test-{clean,other}.biasing_{N}.tsv``.

Writes, in ``--output-dir``:

- ``train.jsonl``: the training splits together (default: the 960 h of train-clean-100,
  train-clean-360 and train-other-500); ``dev-other.jsonl`` (validation);
- ``test-clean.jsonl``, ``test-other.jsonl``: no biasing list (plain ASR);
- ``test-clean.biasing_N.jsonl``, ``test-other.biasing_N.jsonl`` for each list size N, with
  ``biasing_words`` (the list: the utterance's rare words plus N distractors) and ``rare_words``
  (the rare words of the reference, which B-WER scores against);
- ``common_words_5k.txt``: is21_deep_bias's 5,000 most frequent training words, which the
  decoding filter ignores in the first-pass hypothesis.

Each line: ``{"key", "source" (relative to the manifest), "target" (the LibriSpeech transcript), ...}``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from slam_recipes._prep import PrepError, base_parser, require_dir, require_file, run, write_manifest

from slam_core.runtime.tasks.biasing_lists import BiasingListError, attach_biasing_lists, read_biasing_tsv

TRAIN_SPLITS = ("train-clean-100", "train-clean-360", "train-other-500")
VALID_SPLIT = "dev-other"
TEST_SPLITS = ("test-clean", "test-other")
BIASING_SIZES = (100, 500, 1000, 2000)
COMMON_WORDS = "common_words_5k.txt"
LIBRISPEECH_HINT = "download the split from https://www.openslr.org/12 and extract it (tar xzf) under --librispeech"
BIASING_HINT = (
    "clone https://github.com/facebookresearch/fbai-speech and pass its is21_deep_bias folder as --biasing-dir"
)


def librispeech_split(root: Path, split: str) -> list[dict]:
    """The utterances of one LibriSpeech split: ``key``, ``source`` (the .flac) and ``target``, sorted by key."""
    folder = require_dir(root / split, f"LibriSpeech split {split!r}", LIBRISPEECH_HINT)
    transcripts = sorted(folder.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise PrepError(
            f"LibriSpeech split {split!r}: no <speaker>/<chapter>/<speaker>-<chapter>.trans.txt under {folder}; "
            f"{LIBRISPEECH_HINT}"
        )
    records = []
    for transcript in transcripts:
        for number, line in enumerate(transcript.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            key, _, text = line.strip().partition(" ")
            if not text:
                raise PrepError(f"{transcript}:{number}: expected '<utterance-id> <TRANSCRIPT>', got {line!r}")
            audio = transcript.parent / f"{key}.flac"
            if not audio.is_file():
                raise PrepError(f"{transcript}:{number}: the audio {audio} is missing; the split looks incomplete")
            records.append({"key": key, "source": audio, "target": text})
    return sorted(records, key=lambda record: record["key"])


def with_biasing_lists(records: list[dict], lists_file: Path) -> list[dict]:
    """``records`` with ``biasing_words`` (column 4 of ``lists_file``) and ``rare_words`` (column 3).

    The file is read by the ``contextual-asr`` task's own reader; every utterance needs a list.
    """
    try:
        entries = read_biasing_tsv(lists_file)
        attached = attach_biasing_lists(records, entries, column="biasing_words")
    except BiasingListError as exc:
        raise PrepError(f"{lists_file}: {exc}") from None
    return [{**record, "rare_words": list(entries[record["key"]].rare_words)} for record in attached]


def biasing_files(biasing_dir: Path | None, splits: list[str], sizes: list[int]) -> dict[str, Path]:
    """``{"<split>.biasing_<N>": tsv}`` for every test split and size, checked before anything is written."""
    if biasing_dir is None:
        return {}
    require_dir(biasing_dir, "is21_deep_bias folder", BIASING_HINT)
    ref = require_dir(biasing_dir / "ref", "is21_deep_bias ref/ folder (the biasing lists)", BIASING_HINT)
    return {
        f"{split}.biasing_{size}": require_file(
            ref / f"{split}.biasing_{size}.tsv", f"biasing lists N={size} of {split}", BIASING_HINT
        )
        for split in splits
        for size in sizes
    }


def copy_common_words(biasing_dir: Path, out: Path) -> dict[str, int]:
    """Copy ``words/common_words_5k.txt`` (the decoding filter ignores these words) next to the manifests."""
    source = require_file(biasing_dir / "words" / COMMON_WORDS, "is21_deep_bias common-words list", BIASING_HINT)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / COMMON_WORDS)
    return {str(out / COMMON_WORDS): len(source.read_text(encoding="utf-8").split())}


def prepare(args) -> dict[str, int]:
    out = args.output_dir
    require_dir(args.librispeech, "LibriSpeech root", LIBRISPEECH_HINT)
    lists = biasing_files(args.biasing_dir, args.test_splits, args.biasing_sizes)
    written = {} if args.biasing_dir is None else copy_common_words(args.biasing_dir, out)
    train = [record for split in args.train_splits for record in librispeech_split(args.librispeech, split)]
    written[str(out / "train.jsonl")] = write_manifest(out / "train.jsonl", train)
    valid = out / f"{args.valid_split}.jsonl"
    written[str(valid)] = write_manifest(valid, librispeech_split(args.librispeech, args.valid_split))
    for split in args.test_splits:
        records = librispeech_split(args.librispeech, split)
        written[str(out / f"{split}.jsonl")] = write_manifest(out / f"{split}.jsonl", records)
        for name, lists_file in lists.items():
            if name.startswith(f"{split}.biasing_"):
                written[str(out / f"{name}.jsonl")] = write_manifest(
                    out / f"{name}.jsonl", with_biasing_lists(records, lists_file)
                )
    return written


def build_parser():
    parser = base_parser(__file__, __doc__, "data/contextual-asr")
    parser.add_argument(
        "--librispeech", type=Path, required=True, help="folder holding the split folders (e.g. LibriSpeech/)"
    )
    parser.add_argument(
        "--biasing-dir",
        type=Path,
        help="fbai-speech's is21_deep_bias folder (with ref/ and words/); without it no biasing manifests are written",
    )
    parser.add_argument("--train-splits", nargs="+", default=list(TRAIN_SPLITS), help="default: %(default)s")
    parser.add_argument("--valid-split", default=VALID_SPLIT, help="default: %(default)s")
    parser.add_argument("--test-splits", nargs="+", default=list(TEST_SPLITS), help="default: %(default)s")
    parser.add_argument(
        "--biasing-sizes", nargs="+", type=int, default=list(BIASING_SIZES), help="list sizes N (default: %(default)s)"
    )
    return parser


def main(argv=None) -> int:
    return run(build_parser(), prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
