"""CoVoST 2 (+ Common Voice clips) -> SLAM jsonl manifests for speech translation.

Reads the split tables that facebookresearch/covost's ``get_covost_splits.py --version 2`` writes,
``<covost-dir>/covost_v2.<src>_<tgt>.{train,dev,test}.tsv`` (columns path, sentence, translation,
client_id; unquoted, backslash-escaped), and the Common Voice (version 4) clips they name,
``<clips-dir>/<path>`` (mp3, read by soundfile >= 0.12 / libsndfile >= 1.1).

Writes ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl``; each line:
``{"key": <clip stem>, "source": ..., "target": <translation>, "source_text": <transcript>,
"source_lang": "English", "target_lang": "German"}`` (language names, as the ``st`` prompt uses them).
A clip named in a table but absent from ``--clips-dir`` is an error (``--skip-missing`` skips and counts them instead).
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from slam_recipes._prep import PrepError, base_parser, read_table, require_dir, require_file, run, warn, write_manifest

SPLITS = ("train", "dev", "test")
#: CoVoST 2's language codes and the names the ``st`` task's prompt uses.
LANGUAGES = {
    "en": "English", "ar": "Arabic", "ca": "Catalan", "cy": "Welsh", "de": "German", "es": "Spanish",
    "et": "Estonian", "fa": "Persian", "fr": "French", "id": "Indonesian", "it": "Italian", "ja": "Japanese",
    "lv": "Latvian", "mn": "Mongolian", "nl": "Dutch", "pt": "Portuguese", "ru": "Russian", "sl": "Slovenian",
    "sv-SE": "Swedish", "ta": "Tamil", "tr": "Turkish", "zh-CN": "Chinese",
}  # fmt: skip
COVOST_HINT = (
    "download covost_v2.<src>_<tgt>.tsv.tar.gz (https://github.com/facebookresearch/covost), extract it, and run "
    "get_covost_splits.py --version 2 --src-lang <src> --tgt-lang <tgt> --root <covost-dir> --cv-tsv validated.tsv"
)
CLIPS_HINT = "download Common Voice English version 4 (commonvoice.mozilla.org) and pass its clips/ folder"


def split_records(table: Path, clips: Path, source_lang: str, target_lang: str, skip_missing: bool) -> list[dict]:
    """The manifest lines of one CoVoST split table."""
    rows = read_table(table, ("path", "sentence", "translation"), delimiter="\t", quoting=csv.QUOTE_NONE)
    records, missing = [], []
    for row in rows:
        audio = clips / row["path"]
        if not audio.is_file():
            missing.append(row["path"])
            continue
        records.append(
            {
                "key": Path(row["path"]).stem,
                "source": audio,
                "target": row["translation"],
                "source_text": row["sentence"],
                "source_lang": LANGUAGES[source_lang],
                "target_lang": LANGUAGES[target_lang],
            }
        )
    if missing and not skip_missing:
        raise PrepError(
            f"{table}: {len(missing)} of {len(rows)} clips are missing from {clips} (e.g. {missing[0]}); "
            f"{CLIPS_HINT}, or pass --skip-missing"
        )
    if missing:
        warn(f"{table.name}: skipped {len(missing)} of {len(rows)} clips missing from {clips}")
    return records


def prepare(args) -> dict[str, int]:
    require_dir(args.covost_dir, "CoVoST 2 folder", COVOST_HINT)
    clips = require_dir(args.clips_dir, "Common Voice clips folder", CLIPS_HINT)
    written = {}
    for split in SPLITS:
        name = f"covost_v2.{args.source_lang}_{args.target_lang}.{split}.tsv"
        table = require_file(args.covost_dir / name, f"CoVoST 2 {split} table", COVOST_HINT)
        records = split_records(table, clips, args.source_lang, args.target_lang, args.skip_missing)
        written[str(args.output_dir / f"{split}.jsonl")] = write_manifest(args.output_dir / f"{split}.jsonl", records)
    return written


def build_parser():
    parser = base_parser(__file__, __doc__, "data/st-covost2")
    parser.add_argument("--covost-dir", type=Path, required=True, help="folder with the covost_v2.*.<split>.tsv files")
    parser.add_argument("--clips-dir", type=Path, required=True, help="Common Voice clips/ folder")
    codes = sorted(LANGUAGES)
    parser.add_argument("--source-lang", default="en", choices=codes, help="CoVoST code (default: %(default)s)")
    parser.add_argument("--target-lang", default="de", choices=codes, help="CoVoST code (default: %(default)s)")
    parser.add_argument("--skip-missing", action="store_true", help="skip clips absent from --clips-dir")
    return parser


def main(argv=None) -> int:
    return run(build_parser(), prepare, argv)


if __name__ == "__main__":
    sys.exit(main())
