#!/usr/bin/env python3
"""Generate the open-vocabulary corpus: everyday English sentences spoken by espeak-ng in many voices.

It is the embedded demo's corpus (``recipes/demo/data/``, committed: about 32 MB of Opus, 3.1 h,
regenerated in about 5 minutes on 2 cores).

The sentences are ``sentences.txt`` (WordNet's usage examples, written once by ``make_sentences.py``),
those whose every word is among the :data:`VOCABULARY` most widespread ones. The splits are fixed
by rules chosen before any training choice, from the seed alone:

- **test**: sentences that each hold exactly one *held-out word*, a rare word (in at most
  :data:`RARE_MAX` sentences, at least 4 letters) that no train or valid sentence contains;
  half are spoken by training voices, half by :data:`UNSEEN_VARIANTS`, voice variants never
  used in train or valid.
- **valid**: new sentences without a held-out word, training voices.
- **train**: the remaining sentences, none holding a held-out word.

A voice is an espeak-ng accent with a variant, at a random rate and pitch. Every utterance is
synthesised at espeak-ng's 22.05 kHz, resampled to 16 kHz, trimmed of silence (with a random
margin), given a random gain, peak-normalised or not, mixed with a faint noise floor or not, and
written as Opus in OGG (``--format flac`` for lossless FLAC, several times larger). Manifests
``train.jsonl``, ``valid.jsonl`` and ``test.jsonl`` (SLAM jsonl: key, source relative to the
manifest, target, plus voice, rate, pitch, ``seen_voice`` and ``phonemes``: the phonemes
espeak-ng spoke, space-separated, ``|`` between words) go next to the ``audio/`` folder.

Where espeak-ng joins a short word to the next ("for the" as ``f 3 D @2``), ``phonemes`` has one
word fewer than ``target``, as it was spoken.

``lexicon.txt`` (``word<TAB>phonemes`` per line) gives the pronunciations of every word of
``words.txt`` (WordNet's words that are one SmolLM2 token, written by ``make_sentences.py``) in
each accent, spoken alone, plus each pronunciation a training sentence gave a word in context
(weak forms: "a" as ``a#``, "to" as ``t @``). The test's held-out words are in it as the other
17k words are: a pronunciation dictionary, not training data.

The output is deterministic for a seed and an espeak-ng version (the audio, not the bytes: each Ogg
stream gets a random serial number); once committed, the demo needs no
espeak-ng. Usage::

    apt-get install espeak-ng              # or brew install espeak-ng
    python recipes/demo/make_open_corpus.py    # rewrites recipes/demo/data/ (about 5 minutes)
"""

from __future__ import annotations

import argparse
import io
import json
import random
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

HERE = Path(__file__).resolve().parent
SAMPLE_RATE = 16000
SEED = 1234
#: Utterances of the held-out splits; train is every other sentence (at least MIN_TRAIN). Test is half
#: seen voices, half unseen ones.
SPLITS = {"valid": 100, "test": 240}
MIN_TRAIN = 5000
#: Test candidates drawn, per test sentence kept (a candidate with another unheard word is dropped).
CANDIDATES = 1.25
#: Sentences are drawn from those whose every word is among this many most widespread words of the list.
VOCABULARY = 3000
#: A held-out word occurs in at most this many sentences (so that few sentences are lost to the rule).
RARE_MAX = 3

#: espeak-ng's English accents (its ``gmw`` voices).
ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
#: espeak-ng voice variants used in train and valid (and half of test).
SEEN_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "f1",
    "f2",
    "f3",
    "f4",
    "klatt",
    "klatt2",
    "klatt3",
    "adam",
    "Alex",
    "Andy",
    "annie",
    "aunty",
    "boris",
    "caleb",
    "david",
    "ed",
    "edward",
    "Gene",
    "grandma",
    "grandpa",
    "iven",
    "iven2",
    "jacky",
    "john",
    "linda",
    "max",
    "Michael",
    "norbert",
    "paul",
    "quincy",
    "rob",
    "robert",
    "shelby",
    "steph",
    "travis",
    "victor",
    "zac",
    "benjamin",
    "belinda",
    "Lee",
)
#: Variants never heard in train or valid: the unseen-voice half of test.
UNSEEN_VARIANTS = ("m8", "f5", "klatt4", "Alicia", "Andrea", "anika", "Denis", "Hugo", "kaukovalta", "steph2")
RATES = (130, 220)  # words per minute, uniform (espeak-ng's default is 175)
PITCHES = (25, 75)  # 0-99, uniform (espeak-ng's default is 50)
GAIN_DB = (-20.0, 0.0)  # before the optional peak normalisation
NORMALISE_SHARE = 0.5  # of utterances peak-normalised to -1 dBFS after the gain
NOISE_SHARE = 0.5  # of utterances given a white noise floor this far below the speech's RMS:
NOISE_SNR_DB = (30.0, 50.0)
SILENCE_DB = -40.0  # trimming: frames this far below the loudest are silence
MARGIN_SECONDS = (0.03, 0.25)  # silence kept before and after the speech
MAX_SECONDS = 8.0  # the test suite checks every clip against this
OPUS_LEVEL = 0.95  # soundfile's compression level for Opus (0: 256 kb/s ... 1: 10 kb/s; 0.95: about 20)


@dataclass(frozen=True)
class Utterance:
    key: str
    target: str
    accent: str
    variant: str
    rate: int
    pitch: int
    seen_voice: bool
    seed: int

    @property
    def voice(self) -> str:
        return f"{self.accent}+{self.variant}"


def read_lines(path: Path) -> list[str]:
    """The non-blank lines of a text file, stripped."""
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_sentences(path: Path = HERE / "sentences.txt") -> list[str]:
    return read_lines(path)


def everyday_pool(sentences: list[str]) -> list[str]:
    """The distinct sentences whose every word is among the :data:`VOCABULARY` most widespread words."""
    spread = Counter(word for sentence in set(sentences) for word in set(sentence.split()))
    common = set(sorted(spread, key=lambda word: (-spread[word], word))[:VOCABULARY])  # ties: alphabetical
    return sorted({s for s in sentences if common.issuperset(s.split())})


def split_sentences(sentences: list[str], rng: random.Random) -> dict[str, list[str]]:
    """Test sentences each with one held-out word no train or valid sentence has; valid, then train, from the rest.

    Candidates hold exactly one rare word each, a different one; every sentence holding a
    candidate's word is kept out of train and valid. A candidate whose other words do not all
    occur in train or valid is dropped, so each test sentence has exactly one unheard word.
    """
    order = everyday_pool(sentences)
    rng.shuffle(order)
    spread = Counter(word for sentence in order for word in set(sentence.split()))
    held_out: set[str] = set()
    candidates: list[str] = []
    for sentence in order:
        rare = {w for w in sentence.split() if spread[w] <= RARE_MAX and len(w) >= 4 and "'" not in w}
        if len(rare) == 1 and not rare & held_out and len(candidates) < CANDIDATES * SPLITS["test"]:
            candidates.append(sentence)
            held_out |= rare
    chosen = set(candidates)
    rest = [s for s in order if s not in chosen and not held_out.intersection(s.split())]
    heard = {word for sentence in rest for word in sentence.split()}
    test = [s for s in candidates if len(set(s.split()) - heard) == 1][: SPLITS["test"]]
    if len(test) < SPLITS["test"] or len(rest) < SPLITS["valid"] + MIN_TRAIN:
        raise RuntimeError(f"too few sentences: test {len(test)}, rest {len(rest)} ({len(sentences)} read)")
    return {"train": rest[SPLITS["valid"] :], "valid": rest[: SPLITS["valid"]], "test": test}


def plan(splits: dict[str, list[str]], rng: random.Random) -> list[Utterance]:
    """Every utterance's voice, rate, pitch and recording seed."""
    utterances = []
    for split, sentences in splits.items():
        for index, text in enumerate(sentences):
            seen = split != "test" or index % 2 == 0
            utterances.append(
                Utterance(
                    key=f"{split}-{index:04d}",
                    target=text,
                    accent=rng.choice(ACCENTS),
                    variant=rng.choice(SEEN_VARIANTS if seen else UNSEEN_VARIANTS),
                    rate=rng.randint(*RATES),
                    pitch=rng.randint(*PITCHES),
                    seen_voice=seen,
                    seed=rng.randrange(2**32),
                )
            )
    return utterances


#: espeak-ng's phoneme output (``-x``), one space between phonemes and two between words.
PHONEME_FLAGS = ("-x", "--sep= ")


def phoneme_string(espeak_output: str) -> str:
    """espeak-ng's ``-x`` output as a manifest's ``phonemes``: stress marks, pauses (``_``) and the
    palatal mark ``;`` dropped, linking ``r-`` written ``r``, `` | `` between words."""

    def plain(phoneme: str) -> str | None:
        phoneme = phoneme.replace("'", "").replace(",", "")
        if not phoneme or phoneme.startswith("_") or phoneme == ";":
            return None
        return "r" if phoneme == "r-" else phoneme

    words = []
    for word in espeak_output.replace("\n", "  ").split("  "):
        phonemes = [p for p in map(plain, word.split()) if p]
        if phonemes:
            words.append(" ".join(phonemes))
    return " | ".join(words)


def synthesise(utterance: Utterance) -> tuple[np.ndarray, int, str]:
    """espeak-ng's waveform of the utterance (float32), its sample rate and the phonemes it spoke."""
    command = ["espeak-ng", "-v", utterance.voice, "-s", str(utterance.rate), "-p", str(utterance.pitch)]
    spoken = subprocess.run(
        [*command, *PHONEME_FLAGS, "--phonout=/dev/stderr", "--stdout"],
        input=utterance.target.encode(),
        check=True,
        capture_output=True,
    )
    audio, rate = sf.read(io.BytesIO(spoken.stdout), dtype="float32")
    return (audio.mean(axis=1) if audio.ndim > 1 else audio), rate, phoneme_string(spoken.stderr.decode())


def record(audio: np.ndarray, rate: int, rng: np.random.Generator) -> np.ndarray:
    """The recording chain: resampling, trimming (of the clean waveform), gain, optional peak normalisation,
    optional noise floor."""
    common = gcd(SAMPLE_RATE, rate)
    audio = trim(resample_poly(audio, SAMPLE_RATE // common, rate // common), rng)
    audio = audio * 10 ** (rng.uniform(*GAIN_DB) / 20)
    if rng.random() < NORMALISE_SHARE:
        audio = audio * (10 ** (-1 / 20) / max(np.abs(audio).max(), 1e-9))
    if rng.random() < NOISE_SHARE:
        rms = np.sqrt(np.mean(audio**2)) + 1e-12
        audio = audio + rng.standard_normal(len(audio)) * rms * 10 ** (-rng.uniform(*NOISE_SNR_DB) / 20)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


def trim(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    hop = SAMPLE_RATE // 100
    frames = len(audio) // hop
    energy = (audio[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1) + 1e-12
    voiced = np.flatnonzero(10 * np.log10(energy / energy.max()) > SILENCE_DB)
    start = max(0, voiced[0] * hop - int(rng.uniform(*MARGIN_SECONDS) * SAMPLE_RATE))
    end = min(len(audio), (voiced[-1] + 1) * hop + int(rng.uniform(*MARGIN_SECONDS) * SAMPLE_RATE))
    return audio[start:end]


def render(job: tuple[Utterance, Path, str]) -> tuple[float, str]:
    """Synthesise, record and write one utterance; returns its duration in seconds and its phonemes."""
    utterance, path, audio_format = job
    waveform, rate, phonemes = synthesise(utterance)
    audio = record(waveform, rate, np.random.default_rng(utterance.seed))
    seconds = len(audio) / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise RuntimeError(f"{utterance.key} {utterance.target!r} lasts {seconds:.2f} s, over {MAX_SECONDS} s")
    if audio_format == "opus":
        sf.write(path, audio, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=OPUS_LEVEL)
    else:
        sf.write(path, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return seconds, phonemes


def manifest_record(utterance: Utterance, source: str, phonemes: str) -> dict:
    fields = asdict(utterance)
    fields.pop("seed")
    return {
        "key": fields.pop("key"),
        "source": source,
        "target": fields.pop("target"),
        "voice": utterance.voice,
        **fields,
        "phonemes": phonemes,
    }


def read_words(path: Path = HERE / "words.txt") -> list[str]:
    return read_lines(path)


def isolated_pronunciations(words: list[str], accent: str) -> list[str]:
    """Each word's phonemes spoken alone in ``accent`` (one espeak-ng call for the whole list)."""
    spoken = subprocess.run(
        ["espeak-ng", "-v", accent, "-q", *PHONEME_FLAGS],
        input="".join(f"{word}.\n" for word in words).encode(),  # a full stop per word: a line each
        check=True,
        capture_output=True,
    ).stdout.decode()
    lines = spoken.splitlines()
    if len(lines) != len(words):
        raise RuntimeError(f"espeak-ng gave {len(lines)} lines for {len(words)} words in {accent}")
    return [phoneme_string(line) for line in lines]


def isolated_lexicon(words: list[str], workers: int) -> set[tuple[str, str]]:
    """``(word, phonemes)`` of ``words`` spoken alone in every accent."""
    with ThreadPoolExecutor(workers) as pool:
        per_accent = list(pool.map(lambda accent: isolated_pronunciations(words, accent), ACCENTS))
    return {(word, phonemes[i]) for phonemes in per_accent for i, word in enumerate(words) if phonemes[i]}


def spoken_lexicon(records: list[dict]) -> set[tuple[str, str]]:
    """``(word, phonemes)`` of the training sentences as spoken, from those whose phonemes split into
    as many words as their text (espeak-ng joins some short words to the next: "for the" as one)."""
    spoken = set()
    for record in records:
        words, chunks = record["target"].split(), record["phonemes"].split(" | ")
        if record["key"].startswith("train-") and len(words) == len(chunks):
            spoken.update(zip(words, chunks, strict=True))
    return spoken


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "data")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--format", choices=("opus", "flac"), default="opus")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="speak only the first N utterances of each split")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is not installed (apt-get install espeak-ng)")

    rng = random.Random(args.seed)
    splits = split_sentences(read_sentences(), rng)
    utterances = plan(splits, rng)
    if args.limit is not None:
        splits = {name: sentences[: args.limit] for name, sentences in splits.items()}
        utterances = [u for u in utterances if int(u.key.rsplit("-", 1)[1]) < args.limit]
    audio_dir = args.out / "audio"
    if audio_dir.exists():
        shutil.rmtree(audio_dir)
    audio_dir.mkdir(parents=True)
    suffix = "ogg" if args.format == "opus" else "flac"
    sources = [f"audio/{u.key}.{suffix}" for u in utterances]
    jobs = [(u, args.out / source, args.format) for u, source in zip(utterances, sources, strict=True)]
    with ProcessPoolExecutor(args.workers) as pool:
        seconds, phonemes = zip(*pool.map(render, jobs, chunksize=16), strict=True)
    records = [manifest_record(*row) for row in zip(utterances, sources, phonemes, strict=True)]
    # --limit: the lexicon of the spoken sentences' words only (the whole list takes a minute)
    words = read_words() if args.limit is None else sorted({w for s in splits.values() for t in s for w in t.split()})
    entries = isolated_lexicon(words, args.workers) | spoken_lexicon(records)
    for split in splits:
        lines = [json.dumps(r) + "\n" for r in records if r["key"].startswith(f"{split}-")]
        (args.out / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
    (args.out / "lexicon.txt").write_text("".join(f"{w}\t{p}\n" for w, p in sorted(entries)), encoding="utf-8")
    size = sum(f.stat().st_size for f in args.out.rglob("*") if f.is_file())
    counts = ", ".join(f"{s} {len(v)}" for s, v in splits.items())
    training_words = {w for s in splits["train"] for w in s.split()}
    print(
        f"{counts} utterances, {sum(seconds) / 3600:.2f} h of audio, {len(training_words)} training words, "
        f"{len(entries)} pronunciations of {len(words)} words, {size / 1e6:.1f} MB in {args.out}"
    )


if __name__ == "__main__":
    main()
