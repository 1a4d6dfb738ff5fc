"""The paper recipes: recipes/contextual-asr, recipes/aac (AudioCaps, Clotho), recipes/mc-gtzan, recipes/st.

- Every spec validates and builds on the meta device with the parameter counts SLAM-LLM publishes.
- Every ``prepare_data.py`` turns a tiny synthetic dataset in the public layout into manifests that
  the data pipeline reads, and refuses a wrong layout with a message naming the path.
- End to end: each spec, its components shrunk to tiny shapes of the same types (the LLM replaced
  by ``toy-llm``), trains two steps on the prepared manifests, decodes the test split and is scored
  with its task's metrics.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile
import yaml

from slam_core.overrides import apply_overrides
from slam_core.runtime.data import read_manifest
from slam_core.spec import load_spec, validate_spec

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
SPECS = {
    "contextual-asr": RECIPES / "contextual-asr" / "spec.yaml",
    "aac-audiocaps": RECIPES / "aac" / "audiocaps.yaml",
    "aac-clotho": RECIPES / "aac" / "clotho.yaml",
    "mc-gtzan": RECIPES / "mc-gtzan" / "spec.yaml",
    "st": RECIPES / "st" / "spec.yaml",
}
GENRES = ("blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock")
VICUNA_7B = 6_738_415_616


def load_prepare(recipe: str):
    """A recipe's prepare_data.py as a module."""
    spec = importlib.util.spec_from_file_location(
        f"prepare_{recipe.replace('-', '_')}", RECIPES / recipe / "prepare_data.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("recipe", ["contextual-asr", "aac", "mc-gtzan", "st"])
def test_prepare_data_has_help(recipe, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_prepare(recipe).main(["--help"])
    assert exit_info.value.code == 0 and f"usage: {recipe}/prepare_data.py" in capsys.readouterr().out


def prepare(recipe: str, *argv) -> int:
    """Run ``recipes/<recipe>/prepare_data.py argv`` in this process; returns its exit status."""
    return load_prepare(recipe).main([str(arg) for arg in argv])


def write_audio(path: Path, seconds: float, rate: int, seed: int, **options) -> Path:
    """A short tone plus noise, mono, written with soundfile."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed % 600) * t) + 0.02 * rng.standard_normal(t.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, audio.astype("float32"), rate, **options)
    return path


def manifest_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- fake datasets in their public layouts ---------------------------------------------------------

LIBRI_WORDS = ("THE", "OLD", "SHIP", "SAILED", "NORTH", "AND", "A", "QUIXOTIC", "ZEPHYR", "BLEW", "OVER", "FJORD")
RARE = {"quixotic", "zephyr", "fjord"}
DISTRACTORS = ("abbey", "brine", "cobalt", "drumlin", "eyrie", "flotsam")


def fake_librispeech(root: Path) -> dict[str, dict[str, str]]:
    """``root/<split>/<spk>/<chapter>/<spk>-<chapter>.trans.txt`` + ``.flac``; returns split -> key -> text."""
    rng = np.random.default_rng(0)
    layout = {"train-clean-100": [(19, 198), (26, 495)], "dev-other": [(116, 288)], "test-clean": [(1089, 134686)]}
    splits: dict[str, dict[str, str]] = {}
    for split, chapters in layout.items():
        splits[split] = {}
        for speaker, chapter in chapters:
            folder = root / split / str(speaker) / str(chapter)
            lines = []
            for index in range(3):
                key = f"{speaker}-{chapter}-{index:04d}"
                text = " ".join(rng.choice(LIBRI_WORDS, size=int(rng.integers(3, 7))))
                write_audio(folder / f"{key}.flac", 0.4 + 0.1 * index, 16000, seed=index + speaker)
                lines.append(f"{key} {text}\n")
                splits[split][key] = text
            (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return splits


def fake_is21(root: Path, test: dict[str, str], sizes=(100, 1000)) -> Path:
    """fbai-speech's ``is21_deep_bias/{ref,words}`` for the test utterances (N distractors scaled down)."""
    (root / "ref").mkdir(parents=True)
    for size in sizes:
        rows = []
        for key, text in test.items():
            rare = sorted({w for w in text.lower().split() if w in RARE})
            biasing = sorted(set(rare) | set(DISTRACTORS[: 3 if size == 100 else 6]))
            rows.append(f"{key}\t{text.lower()}\t{json.dumps(rare)}\t{json.dumps(biasing)}\n")
        (root / "ref" / f"test-clean.biasing_{size}.tsv").write_text("".join(rows))
    (root / "words").mkdir()
    (root / "words" / "common_words_5k.txt").write_text("the\nand\na\nover\n")
    return root


def fake_audiocaps(root: Path) -> Path:
    """AudioCaps csv files and downloaded clips under three naming schemes; one train clip is missing."""
    header = ["audiocap_id", "youtube_id", "start_time", "caption"]
    clips = {"train": ["trA", "trB", "trC", "trD", "trGone"], "val": ["vaA", "vaB"], "test": ["teA", "teB"]}
    audio = root / "audio"
    root.mkdir(parents=True, exist_ok=True)
    for split, ids in clips.items():
        with open(root / f"{split}.csv", "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(header)
            for n, youtube_id in enumerate(ids):
                for c in range(1 if split == "train" else 5):
                    writer.writerow([f"{split}{n}{c}", youtube_id, "30", f"a dog barks, then rain ({youtube_id} {c})"])
                if youtube_id.endswith("Gone"):
                    continue
                name = {
                    "train": f"train/{youtube_id}_30.wav",
                    "val": f"Y{youtube_id}.wav",
                    "test": f"{youtube_id}.flac",
                }
                write_audio(audio / name[split], 0.5, 16000, seed=n)
    return root


def fake_clotho(root: Path) -> Path:
    """Clotho v2.1: ``clotho_captions_<split>.csv`` (file_name, caption_1..5) and ``<split>/<file_name>``."""
    root.mkdir(parents=True, exist_ok=True)
    for split, count in (("development", 3), ("validation", 2), ("evaluation", 2)):
        with open(root / f"clotho_captions_{split}.csv", "w", newline="") as stream:
            writer = csv.writer(stream)
            writer.writerow(["file_name", *(f"caption_{n}" for n in range(1, 6))])
            for index in range(count):
                name = f"{split} clip, no. {index}.wav"
                write_audio(root / split / name, 0.5, 44100, seed=index)
                writer.writerow([name, *(f"birds sing near stream {index}, take {n}" for n in range(1, 6))])
    return root


def fake_gtzan(root: Path, per_genre: int = 10) -> Path:
    """``root/genres/<genre>/<genre>.000NN.wav`` at 22,050 Hz, plus one unreadable clip."""
    for g, genre in enumerate(GENRES):
        for index in range(per_genre):
            write_audio(root / "genres" / genre / f"{genre}.{index:05d}.wav", 0.3, 22050, seed=g * 10 + index)
    (root / "genres" / "jazz" / "jazz.00054.wav").write_bytes(b"RIFF\x00\x00not a wav file")
    return root


def write_covost_table(path: Path, rows: list[list[str]]) -> None:
    """A table as get_covost_splits.py writes it: tab-separated, unquoted, backslash-escaped."""
    with open(path, "w", newline="", encoding="utf-8") as stream:
        writer = csv.writer(stream, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["path", "sentence", "translation", "client_id"])
        writer.writerows(rows)


def fake_covost(root: Path) -> tuple[Path, Path]:
    """``covost_v2.en_de.{train,dev,test}.tsv`` and Common Voice mp3 clips at 48 kHz."""
    clips = root / "cv" / "clips"
    for split, count in (("train", 4), ("dev", 2), ("test", 2)):
        rows = []
        for index in range(count):
            name = f"common_voice_en_{split}{index}.mp3"
            write_audio(clips / name, 0.6, 48000, seed=index, format="MP3")
            rows.append([name, f'She said "hello {index}".', f'Sie sagte "hallo {index}".', f"client{index}"])
        write_covost_table(root / f"covost_v2.en_de.{split}.tsv", rows)
    return root, clips


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Every recipe's fake dataset prepared into ``<root>/data/<recipe>/`` (the specs' own paths)."""
    root = tmp_path_factory.mktemp("recipes")
    raw = root / "raw"
    libri = fake_librispeech(raw / "LibriSpeech")
    fake_is21(raw / "is21_deep_bias", libri["test-clean"])
    fake_audiocaps(raw / "audiocaps")
    fake_clotho(raw / "clotho")
    fake_gtzan(raw / "gtzan")
    fake_covost(raw / "covost")
    data = root / "data"  # not the default (the recipe's own folder, where its spec points)
    runs = [
        ("contextual-asr", "--librispeech", raw / "LibriSpeech", "--biasing-dir", raw / "is21_deep_bias",
         "--train-splits", "train-clean-100", "--test-splits", "test-clean", "--biasing-sizes", "100", "1000",
         "--output-dir", data / "contextual-asr"),
        ("aac", "audiocaps", "--csv-dir", raw / "audiocaps", "--audio-dir", raw / "audiocaps" / "audio",
         "--output-dir", data / "aac-audiocaps"),
        ("aac", "clotho", "--root", raw / "clotho", "--output-dir", data / "aac-clotho"),
        ("mc-gtzan", "--root", raw / "gtzan", "--output-dir", data / "mc-gtzan"),
        ("st", "--covost-dir", raw / "covost", "--clips-dir", raw / "covost" / "cv" / "clips",
         "--output-dir", data / "st-covost2"),
    ]  # fmt: skip
    cwd = Path.cwd()
    os.chdir(root)
    try:
        for recipe, *argv in runs:
            assert prepare(recipe, *argv) == 0, (recipe, argv)
    finally:
        os.chdir(cwd)
    return {"root": root, "librispeech": libri}


#: The arguments each prepare_data.py requires (values unused: only the parser runs).
REQUIRED_ARGS = {
    "contextual-asr": ("contextual-asr", "--librispeech", "l", "--biasing-dir", "b"),
    "aac-audiocaps": ("aac", "audiocaps", "--csv-dir", "c", "--audio-dir", "a"),
    "aac-clotho": ("aac", "clotho", "--root", "r"),
    "mc-gtzan": ("mc-gtzan", "--root", "r"),
    "st": ("st", "--covost-dir", "c", "--clips-dir", "c"),
}


@pytest.mark.parametrize("name", SPECS)
def test_prepare_data_writes_by_default_where_the_spec_points(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from any folder: the spec's paths start from its own folder
    recipe, *argv = REQUIRED_ARGS[name]
    default = load_prepare(recipe).build_parser().parse_args(argv).output_dir
    manifests = load_spec(SPECS[name]).data
    for split in ("train", "valid", "test"):
        assert Path(getattr(manifests, f"{split}_manifest")).parent == default


# --- specs --------------------------------------------------------------------------------------------

#: Trainable parameter counts SLAM-LLM publishes for the same projector (encoder width -> 2048 -> 4096)
#: and LoRA: examples/asr_librispeech/README.md "Linear (~21.50M)" (1280-wide encoder) and "(~18.88M)"
#: (1024-wide), examples/aac_audiocaps/README.md "Linear (~16.26M)" (768-wide) and "LoRA (~4.19M)".
PUBLISHED = {
    "contextual-asr": {"projector": 21_501_952},
    "aac-audiocaps": {"projector": 16_259_072, "peft": 4_194_304},
    "aac-clotho": {"projector": 16_259_072, "peft": 4_194_304},
    "mc-gtzan": {"projector": 18_880_512, "encoder": 25},  # + MERT-330M's 25-way layer mix
    "st": {"projector": 21_501_952},
}


@pytest.mark.parametrize("name", SPECS)
def test_recipe_spec_validates_and_inspects_with_the_published_trainable_counts(name, capsys):
    from slam_core.runtime.cli import main
    from slam_core.runtime.inspect import inspect_spec

    assert main(["spec", "validate", "--no-check-paths", str(SPECS[name])]) == 0  # no data here
    assert "valid" in capsys.readouterr().out
    spec = load_spec(SPECS[name])
    assert spec.train.freeze_encoder and spec.train.freeze_llm
    assert (spec.llm.type, spec.llm.architecture().hidden_size, spec.projector.type) == (
        "vicuna",
        4096,
        "linear-projector",
    )
    counts = {count.component: count for count in inspect_spec(spec).counts}
    trainable = {component: count.trainable for component, count in counts.items() if count.trainable}
    expected = dict(PUBLISHED[name])
    if spec.peft:  # the adapters are counted in the llm row too
        expected["llm"] = expected["peft"]
    assert trainable == expected
    lora = counts["peft"].total if spec.peft else 0
    assert counts["llm"].total - lora == VICUNA_7B


def test_the_manifests_named_by_the_specs_are_what_prepare_data_writes_by_default(prepared):
    for name, path in SPECS.items():
        spec = load_spec(path)
        for split in ("train", "valid", "test"):
            # the spec's manifest path, resolved against its folder, as prepare_data wrote it under root
            named = Path(getattr(spec.data, f"{split}_manifest")).relative_to(path.parent)
            manifest = prepared["root"] / named
            assert manifest.is_file(), (name, split, manifest)


# --- contextual ASR: LibriSpeech + is21_deep_bias ------------------------------------------------------


def test_librispeech_manifests_carry_the_transcripts_and_the_biasing_lists(prepared):
    data = prepared["root"] / "data" / "contextual-asr"
    libri = prepared["librispeech"]
    train = read_manifest(data / "train.jsonl")
    assert [entry.key for entry in train] == sorted(libri["train-clean-100"])
    for entry in train:
        assert entry.fields["target"] == libri["train-clean-100"][entry.key]
        assert Path(entry.path).is_file() and Path(entry.path).name == f"{entry.key}.flac"
    assert not Path(manifest_lines(data / "train.jsonl")[0]["source"]).is_absolute()
    assert [e.key for e in read_manifest(data / "dev-other.jsonl")] == sorted(libri["dev-other"])
    for size, distractors in ((100, 3), (1000, 6)):
        for line in manifest_lines(data / f"test-clean.biasing_{size}.jsonl"):
            words = libri["test-clean"][line["key"]].lower().split()
            assert line["rare_words"] == sorted(RARE & set(words))
            assert line["biasing_words"] == sorted(set(line["rare_words"]) | set(DISTRACTORS[:distractors]))
    assert "biasing_words" not in manifest_lines(data / "test-clean.jsonl")[0]
    assert (data / "common_words_5k.txt").read_text() == "the\nand\na\nover\n"


def test_librispeech_prep_names_a_missing_split_and_a_missing_biasing_list(tmp_path, capsys):
    libri = fake_librispeech(tmp_path / "LibriSpeech")
    assert prepare("contextual-asr", "--librispeech", tmp_path / "LibriSpeech", "--output-dir", tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "LibriSpeech split 'train-clean-360' not found" in error and "openslr.org/12" in error
    test = dict(libri["test-clean"])
    test.pop(sorted(test)[0])  # the list file lacks one test utterance
    fake_is21(tmp_path / "is21", test, sizes=(1000,))
    argv = ["--librispeech", tmp_path / "LibriSpeech", "--train-splits", "train-clean-100", "--test-splits"]
    argv += ["test-clean", "--biasing-dir", tmp_path / "is21", "--output-dir", tmp_path / "out"]
    assert prepare("contextual-asr", *argv, "--biasing-sizes", "1000") == 2
    assert "test-clean.biasing_1000.tsv" in capsys.readouterr().err
    assert prepare("contextual-asr", *argv, "--biasing-sizes", "500") == 2
    assert "biasing lists N=500 of test-clean not found" in capsys.readouterr().err


# --- audio captioning: AudioCaps, Clotho ------------------------------------------------------------


def test_audiocaps_manifests_one_line_per_caption_for_training_and_all_captions_for_scoring(prepared):
    data = prepared["root"] / "data" / "aac-audiocaps"
    train = read_manifest(data / "train.jsonl")
    assert [entry.key for entry in train] == ["trA_30_1", "trB_30_1", "trC_30_1", "trD_30_1"]
    assert (data / "missing-train.txt").read_text() == "trGone\n"
    for split, names in (("valid", ("YvaA.wav", "YvaB.wav")), ("test", ("teA.flac", "teB.flac"))):
        entries = read_manifest(data / f"{split}.jsonl")
        assert tuple(Path(entry.path).name for entry in entries) == names
        for entry in entries:
            clip = entry.key.split("_")[0]
            assert entry.fields["target"] == [f"a dog barks, then rain ({clip} {c})" for c in range(5)]


def test_clotho_manifests_keep_file_names_with_spaces_and_commas(prepared):
    data = prepared["root"] / "data" / "aac-clotho"
    train = read_manifest(data / "train.jsonl")
    assert len(train) == 3 * 5 and train[0].key == "development clip, no. 0_1"
    assert train[0].fields["target"] == "birds sing near stream 0, take 1"
    test = read_manifest(data / "test.jsonl")
    assert [Path(entry.path).name for entry in test] == ["evaluation clip, no. 0.wav", "evaluation clip, no. 1.wav"]
    assert all(Path(entry.path).is_file() and len(entry.fields["target"]) == 5 for entry in test)


def test_aac_prep_refuses_a_layout_without_any_audio(tmp_path, capsys):
    fake_audiocaps(tmp_path / "caps")
    (tmp_path / "empty").mkdir()
    argv = ["audiocaps", "--csv-dir", tmp_path / "caps", "--audio-dir", tmp_path / "empty", "--output-dir", tmp_path]
    assert prepare("aac", *argv) == 2
    assert "none of the 5 clips" in capsys.readouterr().err
    assert prepare("aac", "clotho", "--root", tmp_path / "caps", "--output-dir", tmp_path) == 2
    assert "Clotho development captions not found" in capsys.readouterr().err


# --- music classification: GTZAN ----------------------------------------------------------------------


def test_gtzan_stratified_split_is_seeded_and_balanced_and_skips_unreadable_clips(prepared, capsys):
    data = prepared["root"] / "data" / "mc-gtzan"
    splits = {name: manifest_lines(data / f"{name}.jsonl") for name in ("train", "valid", "test")}
    keys = [line["key"] for lines in splits.values() for line in lines]
    assert len(keys) == len(set(keys)) == 100 and "jazz.00054" not in keys
    for genre in GENRES:  # 10 readable clips per genre (the unreadable one is left out first) -> 8 / 1 / 1
        sizes = [sum(line["target"] == genre for line in lines) for lines in splits.values()]
        assert sizes == [8, 1, 1], genre
    out = prepared["root"] / "again"
    assert prepare("mc-gtzan", "--root", prepared["root"] / "raw" / "gtzan" / "genres", "--output-dir", out) == 0
    assert "skipped 1 unreadable clip(s): jazz/jazz.00054.wav" in capsys.readouterr().err
    again = {name: [line["key"] for line in manifest_lines(out / f"{name}.jsonl")] for name in splits}
    assert again == {name: [line["key"] for line in lines] for name, lines in splits.items()}  # same seed, same split
    assert prepare("mc-gtzan", "--root", prepared["root"] / "raw" / "gtzan", "--seed", 1, "--output-dir", out) == 0
    assert [line["key"] for line in manifest_lines(out / "test.jsonl")] != again["test"]


def test_gtzan_published_split_lists_are_used_as_given(tmp_path, capsys):
    fake_gtzan(tmp_path / "gtzan", per_genre=3)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "train_filtered.txt").write_text("blues/blues.00000.wav\nrock/rock.00002.wav\n")
    (lists / "valid_filtered.txt").write_text("pop/pop.00001.wav\n")
    (lists / "test_filtered.txt").write_text("jazz/jazz.00000.wav\n")
    argv = ["--root", tmp_path / "gtzan", "--split-lists", lists, "--output-dir", tmp_path / "out"]
    assert prepare("mc-gtzan", *argv) == 0
    assert [line["key"] for line in manifest_lines(tmp_path / "out" / "train.jsonl")] == ["blues.00000", "rock.00002"]
    assert manifest_lines(tmp_path / "out" / "test.jsonl")[0]["target"] == "jazz"
    (lists / "test_filtered.txt").write_text("jazz/jazz.00099.wav\n")
    assert prepare("mc-gtzan", *argv) == 2
    assert "the test split lists 'jazz/jazz.00099.wav', which is not a clip" in capsys.readouterr().err


# --- speech translation: CoVoST 2 ---------------------------------------------------------------------


def test_covost_manifests_keep_quoted_text_and_name_the_languages(prepared):
    data = prepared["root"] / "data" / "st-covost2"
    test = read_manifest(data / "test.jsonl")
    assert [entry.key for entry in test] == ["common_voice_en_test0", "common_voice_en_test1"]
    fields = test[1].fields
    assert (fields["source_text"], fields["target"]) == ('She said "hello 1".', 'Sie sagte "hallo 1".')
    assert (fields["source_lang"], fields["target_lang"]) == ("English", "German")
    assert soundfile.info(test[1].path).samplerate == 48000


def test_covost_prep_refuses_missing_clips_unless_told_to_skip_them(tmp_path, capsys):
    covost, clips = fake_covost(tmp_path)
    (clips / "common_voice_en_train1.mp3").unlink()
    argv = ["--covost-dir", covost, "--clips-dir", clips, "--output-dir", tmp_path / "out"]
    assert prepare("st", *argv) == 2
    assert "1 of 4 clips are missing" in capsys.readouterr().err
    assert prepare("st", *argv, "--skip-missing") == 0
    assert len(manifest_lines(tmp_path / "out" / "train.jsonl")) == 3
    assert prepare("st", *argv, "--target-lang", "ja") == 2
    assert "covost_v2.en_ja.train.tsv" in capsys.readouterr().err


# --- end to end: train, decode, score with each recipe's own spec shrunk to tiny shapes -----------------

TINY_WHISPER = [
    "encoder.shape={hidden_size: 32, num_layers: 1, num_heads: 2, intermediate_size: 64}",
    "encoder.mode=variable",
]
TINY = {
    "contextual-asr": TINY_WHISPER,
    "st": TINY_WHISPER,
    "aac-audiocaps": [
        "encoder.shape={patch_embed_dim: 16, num_layers: 1, hidden_size: 32, intermediate_size: 48, num_heads: 4, "
        "conv_pos_kernel: 7, conv_pos_groups: 4, num_buckets: 16, max_distance: 32}",
        "peft.r=2",
    ],
    "mc-gtzan": [
        "encoder.shape={hidden_size: 32, num_layers: 2, num_heads: 4, intermediate_size: 64, "
        "conv_dim: [16, 16, 16, 16, 16, 16, 16], conv_pos_kernel: 16, conv_pos_groups: 4}",
    ],
}
TINY["aac-clotho"] = TINY["aac-audiocaps"]
#: The LLM, the sizes and the schedule of every tiny run.
TINY_RUN = [
    "llm={type: toy-llm, shape: {hidden_size: 32, num_layers: 1, num_heads: 4, intermediate_size: 64}}",
    "projector.hidden_dim=32",
    "data.batch_size=2",
    "data.num_workers=0",
    "train.engine=single",
    "train.dtype=fp32",
    "train.max_steps=2",
    "train.warmup_steps=1",
    "train.log_every_steps=1",
    "train.eval_every_steps=2",
    "train.save_every_steps=2",
    "infer.batch_size=2",
    "infer.num_beams=1",
    "infer.max_new_tokens=4",
]
#: What each recipe trains besides the projector (names in the checkpoint's trainable tensors).
EXTRA_TRAINABLE = {"aac-audiocaps": "lora_", "aac-clotho": "lora_", "mc-gtzan": "encoder."}


def tiny_spec(name: str, run_dir: Path):
    """The recipe's spec with tiny components of the same types and a two-step schedule."""
    document = yaml.safe_load(SPECS[name].read_text())
    return validate_spec(apply_overrides(document, [*TINY[name], *TINY_RUN, f"train.output_dir={run_dir}"]))


def check_hypotheses(name: str, records: list[dict], test: list[dict], task) -> None:
    """Every test sample decoded once, with its manifest fields, and the task's answer shape."""
    assert sorted(r["key"] for r in records) == sorted(t["key"] for t in test)
    by_key = {t["key"]: t for t in test}
    for record in records:
        assert record["target"] == by_key[record["key"]]["target"] and isinstance(record["hypothesis"], str)
        if name == "contextual-asr":
            assert record["biasing_words"] == by_key[record["key"]]["biasing_words"]
        if name == "mc-gtzan":
            assert record["hypothesis"] in GENRES  # closed-set decoding always answers a label
        if name == "st":
            assert task.config.separator not in record["hypothesis"]  # the transcript part is cut off


@pytest.mark.parametrize("name", SPECS)
def test_recipe_trains_decodes_and_scores_end_to_end(name, prepared, monkeypatch):
    from safetensors.torch import load_file

    from slam_core.model import build_component
    from slam_core.runtime.infer.decode import decode
    from slam_core.runtime.infer.evaluate import evaluate
    from slam_core.runtime.train import train

    root = prepared["root"]
    monkeypatch.chdir(root)  # the specs name their manifests relative to the working folder
    spec = tiny_spec(name, root / "runs" / name)
    result = train(spec)
    assert result.step == 2 and all(math.isfinite(loss) for loss in result.losses.values())
    names = list(load_file(result.last_checkpoint / "trainable.safetensors"))
    assert any(n.startswith("projector.") for n in names)
    if name in EXTRA_TRAINABLE:
        assert any(EXTRA_TRAINABLE[name] in n for n in names), names
    hypotheses = decode(spec, root / "runs" / f"{name}.jsonl", checkpoint=result.run_dir, device="cpu")
    task = build_component("task", spec.task)
    records = [json.loads(line) for line in hypotheses.read_text().splitlines()]
    check_hypotheses(name, records, manifest_lines(Path(spec.data.test_manifest)), task)
    report = evaluate(hypotheses, task.metrics)
    assert report["count"] == len(records) and list(report["metrics"]) == list(task.metrics)
    assert all(value >= 0 for value in report["metrics"].values()), report
    if name == "mc-gtzan":
        hits = [r["hypothesis"] == r["target"] for r in records]
        assert report["metrics"]["accuracy"] == pytest.approx(sum(hits) / len(hits))
    # the references as hypotheses: the scoring reads the manifest's fields (caption lists, biasing lists)
    oracle = root / "runs" / f"{name}-oracle.jsonl"
    first = [r["target"] if isinstance(r["target"], str) else r["target"][0] for r in records]
    oracle.write_text("".join(json.dumps({**r, "hypothesis": h}) + "\n" for r, h in zip(records, first, strict=True)))
    perfect = evaluate(oracle, task.metrics)["metrics"]
    expected = {"wer": 0.0, "b_wer": 0.0, "u_wer": 0.0, "accuracy": 1.0, "macro_f1": 1.0, "bleu": 100.0}
    assert all(perfect[metric] == pytest.approx(expected[metric]) for metric in perfect if metric in expected), perfect
    assert all(perfect[metric] > report["metrics"][metric] for metric in perfect if metric.startswith("cider")), perfect
