#!/usr/bin/env python3
"""Generate the embedded demo corpus: short synthetic English commands spoken by espeak-ng.

Sentences come from a small-vocabulary grammar (verbs, colours, objects, digits, places), so
that held-out sentences are new word sequences over words the model has heard in training.
Each sentence is drawn once; the splits are disjoint *sentences* (test and valid never repeat a
train sentence) with the same vocabulary. Every utterance is rendered by espeak-ng in one of
several voices, speeds and pitches, resampled to 16 kHz mono, trimmed of leading and trailing
silence and written as 16-bit FLAC. Manifests ``train.jsonl``, ``valid.jsonl`` and
``test.jsonl`` (SLAM jsonl: key, source relative to the manifest, target, plus voice/speed/pitch)
go next to the ``audio/`` folder.

The output is deterministic for a given seed and espeak-ng version (it is committed, so the
demo needs no espeak-ng). Usage::

    apt-get install espeak-ng           # or brew install espeak-ng
    python recipes/demo/make_corpus.py  # writes recipes/demo/data/
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
SEED = 1234
#: Utterances per split; the train set is most of the ~10 MB budget.
SPLITS = {"train": 300, "valid": 16, "test": 48}

COLOURS = ["red", "green", "blue", "yellow", "black", "white"]
OBJECTS = ["door", "lamp", "box", "cup", "book", "chair", "window", "radio"]
VERBS = ["open", "close", "move", "find", "take", "clean"]
DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PLACES = ["on", "under", "near", "behind"]

#: (weight, sentence generator): every sentence of a template, in a fixed order.
TEMPLATES = {
    "verb": (0.35, lambda: (f"{v} the {c} {o}" for v, c, o in itertools.product(VERBS, COLOURS, OBJECTS))),
    "turn": (0.20, lambda: (f"turn {s} the {c} {o}" for s, c, o in itertools.product(["on", "off"], COLOURS, OBJECTS))),
    "dial": (0.25, lambda: (f"dial {a} {b} {c}" for a, b, c in itertools.product(DIGITS, repeat=3))),
    "put": (
        0.20,
        lambda: (f"put the {a} {p} the {b}" for a, p, b in itertools.product(OBJECTS, PLACES, OBJECTS) if a != b),
    ),
}

#: espeak-ng voices (language + variant): American, British, Scottish, RP and Caribbean English,
#: male and female variants.
VOICES = [
    "en-us",
    "en-gb",
    "en-us+f3",
    "en-gb+m3",
    "en-us+f2",
    "en-gb-scotland",
    "en-gb-x-rp+f4",
    "en-029+m5",
]
SPEEDS = [150, 165, 180, 195]  # words per minute (espeak-ng's default is 175)
PITCHES = [35, 50, 65]  # 0-99, espeak-ng's default is 50

MAX_SECONDS = 4.0  # the test suite checks every clip against this
SILENCE_DB = -40.0  # trimming: frames this far below the loudest are silence
PAD_SECONDS = 0.05  # silence kept before and after the speech


def vocabulary() -> set[str]:
    return {word for name in TEMPLATES for sentence in TEMPLATES[name][1]() for word in sentence.split()}


def draw_sentences(rng: random.Random, total: int) -> list[str]:
    """``total`` distinct sentences, each template in proportion to its weight."""
    names = sorted(TEMPLATES)
    weights = [TEMPLATES[n][0] for n in names]
    counts = {n: round(total * w / sum(weights)) for n, w in zip(names, weights, strict=True)}
    counts[max(names, key=counts.get)] += total - sum(counts.values())
    chosen: list[str] = []
    for name in names:
        pool = list(TEMPLATES[name][1]())
        if counts[name] > len(pool):
            raise ValueError(f"template {name!r} has {len(pool)} sentences, {counts[name]} asked for")
        rng.shuffle(pool)
        chosen += pool[: counts[name]]
    rng.shuffle(chosen)
    return chosen


def split_sentences(rng: random.Random) -> dict[str, list[str]]:
    """Disjoint train/valid/test sentences; every held-out word also occurs in train."""
    for _ in range(100):
        sentences = draw_sentences(rng, sum(SPLITS.values()))
        splits, start = {}, 0
        for split, count in SPLITS.items():
            splits[split] = sentences[start : start + count]
            start += count
        train_words = {w for s in splits["train"] for w in s.split()}
        if all(w in train_words for split in ("valid", "test") for s in splits[split] for w in s.split()):
            return splits
    raise RuntimeError("could not draw held-out sentences whose words all occur in train")


def synthesise(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng → float32 waveform at 16 kHz, leading and trailing silence trimmed."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    common = gcd(SAMPLE_RATE, rate)
    audio = resample_poly(audio, SAMPLE_RATE // common, rate // common).astype(np.float32)
    return trim(audio)


def trim(audio: np.ndarray) -> np.ndarray:
    hop = SAMPLE_RATE // 100
    frames = len(audio) // hop
    energy = np.array([np.mean(audio[i * hop : (i + 1) * hop] ** 2) for i in range(frames)]) + 1e-12
    level = 10 * np.log10(energy / energy.max())
    voiced = np.flatnonzero(level > SILENCE_DB)
    pad = int(PAD_SECONDS * SAMPLE_RATE)
    start = max(0, voiced[0] * hop - pad)
    end = min(len(audio), (voiced[-1] + 1) * hop + pad)
    return audio[start:end]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "data")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")

    rng = random.Random(args.seed)
    splits = split_sentences(rng)
    audio_dir = args.out / "audio"
    if audio_dir.exists():
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    total_seconds, voices = 0.0, Counter()
    for split, sentences in splits.items():
        # voices cycle through a shuffled order, so every split hears every voice evenly
        order = VOICES[:]
        rng.shuffle(order)
        lines = []
        for index, text in enumerate(sentences):
            voice = order[index % len(order)]
            speed, pitch = rng.choice(SPEEDS), rng.choice(PITCHES)
            key = f"{split}-{index:04d}"
            audio = synthesise(text, voice, speed, pitch)
            seconds = len(audio) / SAMPLE_RATE
            if seconds > MAX_SECONDS:
                raise RuntimeError(f"{key} {text!r} lasts {seconds:.2f} s, over {MAX_SECONDS} s")
            sf.write(audio_dir / f"{key}.flac", audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
            total_seconds += seconds
            voices[voice] += 1
            record = {"key": key, "source": f"audio/{key}.flac", "target": text}
            lines.append(json.dumps(record | {"voice": voice, "speed": speed, "pitch": pitch}) + "\n")
        (args.out / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    counts = ", ".join(f"{s} {len(v)}" for s, v in splits.items())
    print(
        f"{counts} utterances, {total_seconds / 60:.1f} min of audio, {len(vocabulary())} words, "
        f"{size / 1e6:.2f} MB in {args.out}"
    )


if __name__ == "__main__":
    main()
