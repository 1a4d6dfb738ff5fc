"""Synthetic, in-memory batches for the tests, and a command that trains on them.

``InMemoryBatches`` implements :class:`~slam_core.runtime.data.batch.ResumableBatches` over a fixed
list of global batches; rank ``r`` of ``w`` gets samples ``r::w`` of each, so that a
``w``-rank run sees exactly the global batches of a one-process run. Run
``python -m support.synthetic SPEC.json RUN_DIR`` with ``tests/`` on ``PYTHONPATH`` (see
``support.subprocess_env``; under ``torchrun`` for the multi-process engines) to train any audio
pipeline on random audio (``--spec-data``: on the data its spec names, through the data pipeline).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils.rnn import pad_sequence

from slam_core.audio import RawAudio
from slam_core.runtime.data.batch import Batch

#: The smallest useful pipeline (toy encoder, linear projector, toy LLM, LoRA): seconds to train on a CPU.
TOY_SPEC: dict[str, Any] = {
    "encoder": {
        "type": "toy-encoder",
        "shape": {"num_mel_bins": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
    },
    "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 32},
    "llm": {
        "type": "toy-llm",
        "shape": {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 64, "vocab_size": 320},
    },
    "peft": {"type": "lora", "r": 4, "alpha": 8, "dropout": 0.0},
    "task": {"type": "asr"},
    "train": {"lr": 3e-3, "warmup_steps": 2, "dtype": "fp32"},
    "infer": {"max_new_tokens": 8},
}


def toy_spec(**sections: dict[str, Any]) -> dict[str, Any]:
    """A copy of :data:`TOY_SPEC` with the given sections' entries updated (``train={"epochs": 2}``)."""
    spec = copy.deepcopy(TOY_SPEC)
    for name, entries in sections.items():
        spec.setdefault(name, {}).update(entries)
    return spec


WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")


class InMemoryBatches:
    """A rank's share of fixed global batches, reshuffled per epoch from ``seed`` (own generator)."""

    def __init__(
        self, batches: Sequence[Batch], *, rank: int = 0, world_size: int = 1, shuffle: bool = False, seed: int = 0
    ):
        self.batches = [shard(batch, rank, world_size) for batch in batches]
        self.shuffle, self.seed = shuffle, seed
        self.epoch = self.position = self._resume_at = 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.position, self._resume_at = epoch, 0, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Batch]:
        order = list(range(len(self.batches)))
        if self.shuffle:
            order = torch.randperm(len(order), generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        start, self._resume_at = self._resume_at, 0
        self.position = start
        for index in order[start:]:
            self.position += 1
            yield self.batches[index]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self.position = self._resume_at = int(state["position"])


def shard(batch: Batch, rank: int, world_size: int) -> Batch:
    """Samples ``rank::world_size`` of ``batch``, trimmed to their longest."""
    if len(batch) < world_size:
        raise ValueError(f"a batch of {len(batch)} samples cannot be split over {world_size} ranks")
    rows = list(range(rank, len(batch), world_size))
    lengths = batch.feature_lengths[rows]
    return Batch(
        [batch.keys[i] for i in rows],
        batch.features[rows, : int(lengths.max())],
        lengths,
        [batch.samples[i] for i in rows],
    )


def synthetic_batches(
    preprocessor: Callable[[Any], torch.Tensor],
    sample_rate: int,
    *,
    batches: int,
    batch_size: int,
    seed: int = 0,
    seconds: tuple[float, float] = (0.15, 0.4),
    key_prefix: str = "utt",
) -> list[Batch]:
    """Batches of random audio run through ``preprocessor``, each sample with a 1–3 word target."""
    rng = random.Random(seed)
    result = []
    for b in range(batches):
        samples, features = [], []
        for i in range(batch_size):
            index = b * batch_size + i
            generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
            length = int(rng.uniform(*seconds) * sample_rate)
            waveform = 0.1 * torch.randn(length, generator=generator)
            target = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            key = f"{key_prefix}{index:05d}"
            samples.append({"key": key, "source": f"synthetic://{seed}/{key}", "target": target})
            features.append(torch.as_tensor(preprocessor(RawAudio(waveform, sample_rate))))
        lengths = torch.tensor([f.shape[0] for f in features])
        result.append(Batch([s["key"] for s in samples], pad_sequence(features, batch_first=True), lengths, samples))
    return result


def synthetic_factory(
    encoder, *, batches: int, batch_size: int, valid_batches: int = 0, seed: int = 0, shuffle: bool = True
) -> Callable[[str, int, int], InMemoryBatches | None]:
    """A ``batches_factory`` for :func:`slam_core.runtime.train.train` over synthetic train and valid splits."""
    preprocessor, rate = encoder.preprocessor(), encoder.sample_rate
    splits = {
        "train": (synthetic_batches(preprocessor, rate, batches=batches, batch_size=batch_size, seed=seed), shuffle),
        "valid": (
            synthetic_batches(
                preprocessor, rate, batches=valid_batches, batch_size=batch_size, seed=seed + 1, key_prefix="valid"
            )
            if valid_batches
            else None,
            False,
        ),
    }

    def factory(split: str, rank: int, world_size: int) -> InMemoryBatches | None:
        data, shuffled = splits.get(split, (None, False))
        return (
            None
            if data is None
            else InMemoryBatches(data, rank=rank, world_size=world_size, shuffle=shuffled, seed=seed)
        )

    return factory


def train_synthetic(
    spec: dict[str, Any],
    run_dir: str | Path,
    *,
    batches: int,
    batch_size: int,
    valid_batches: int = 0,
    seed: int = 0,
    shuffle: bool = True,
    **options: Any,
):
    """Validate ``spec`` and :func:`~slam_core.runtime.train.train` it on synthetic batches.

    ``options`` go to ``train``."""
    from slam_core.model import build_component
    from slam_core.runtime.train import train
    from slam_core.spec import validate_spec

    validated = validate_spec(spec)
    encoder = build_component("encoder", validated.encoder)  # for its preprocessor and sample rate
    factory = synthetic_factory(
        encoder, batches=batches, batch_size=batch_size, valid_batches=valid_batches, seed=seed, shuffle=shuffle
    )
    return train(validated, run_dir=run_dir, batches_factory=factory, **options)


def exact_match(hypotheses: list[str], references: list[str], samples: list[dict[str, Any]]) -> dict[str, float]:
    """A scorer for smoke runs: the fraction of hypotheses equal to their reference."""
    return {"exact_match": sum(h == r for h, r in zip(hypotheses, references, strict=True)) / max(len(references), 1)}


def _hang() -> None:
    print("hanging", flush=True)
    time.sleep(600)


def _hang_in_save(step: int) -> None:
    """Hang with the checkpoint of ``step`` fully written under its temporary name, before it is published."""
    from slam_core.runtime.train import checkpoint

    publish = checkpoint.publish_dir

    def hanging(temporary, final):
        if final.name == f"step-{step:08d}":
            _hang()
        publish(temporary, final)

    checkpoint.publish_dir = hanging


def _hang_in_prune(step: int) -> None:
    """Hang halfway through deleting a pruned checkpoint, once the checkpoint of ``step`` is published."""
    import shutil

    from slam_core.runtime.checkpoints import layout

    def hanging(folder):
        tombstone = folder.with_name(f"{layout.TOMBSTONE_PREFIX}{folder.name}")
        os.rename(folder, tombstone)
        (tombstone / layout.STATE_FILE).unlink()  # half deleted
        if (folder.parent / f"step-{step:08d}").is_dir():
            _hang()
        shutil.rmtree(tombstone)

    layout.remove = hanging


#: ``--hang-in`` windows: where a test kills the process to prove that a crash there loses nothing.
HANG_WINDOWS = {"save": _hang_in_save, "prune": _hang_in_prune}


def main(argv: Sequence[str] | None = None) -> None:
    """Train a spec (JSON) on synthetic batches; rank 0 writes ``result.json`` into the run folder."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("spec", type=Path)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--batches", type=int, default=8, help="global train batches per epoch")
    parser.add_argument("--batch-size", type=int, default=4, help="samples per global batch")
    parser.add_argument("--valid-batches", type=int, default=0)
    parser.add_argument("--score", action="store_true", help="decode the valid split and score exact matches")
    parser.add_argument("--seed", type=int, default=0, help="data seed")
    parser.add_argument("--step-delay", type=float, default=0.0, help="seconds to sleep after each step")
    parser.add_argument(
        "--hang-in", choices=sorted(HANG_WINDOWS), help="print 'hanging' and sleep inside this window of a save"
    )
    parser.add_argument("--hang-at-step", type=int, default=0, help="the step whose save hangs (--hang-in)")
    parser.add_argument(
        "--spec-data", action="store_true", help="train on the spec's data section (the data pipeline), not synthetic"
    )
    args = parser.parse_args(argv)
    if args.hang_in:
        HANG_WINDOWS[args.hang_in](args.hang_at_step)

    spec = json.loads(args.spec.read_text())
    options: dict[str, Any] = {
        "scorer": exact_match if args.score else None,
        "on_step": (lambda info: time.sleep(args.step_delay)) if args.step_delay else None,
    }
    if args.spec_data:
        from slam_core.runtime.train import train
        from slam_core.spec import validate_spec

        result = train(validate_spec(spec), run_dir=args.run_dir, **options)
    else:
        result = train_synthetic(
            spec,
            args.run_dir,
            batches=args.batches,
            batch_size=args.batch_size,
            valid_batches=args.valid_batches,
            seed=args.seed,
            **options,
        )
    if int(os.environ.get("RANK", "0")) == 0:
        data = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(result).items() if k != "model"}
        (args.run_dir / "result.json").write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
