"""The checkpoint layout: file names, finding a run's checkpoints (latest, best), reading their parts.

A run folder holds ``checkpoints/``; each checkpoint is a folder ``step-<N>`` (``N``
zero-padded to 8 digits)::

    trainable.safetensors   every trainable parameter, full, by its name in SlamModel
    adapter/                the PEFT adapter, written by the PEFT method's save() (peft's folder for LoRA)
    optimizer.pt            torch engines: the optimizer state keyed by parameter name
    zero-rank<r>.pt         deepspeed: rank r's ZeRO optimizer partition
    trainer.pt              LR schedule and loss-scaler state
    rank-<r>.pt             rank r's RNG states and data position
    state.json              step, epoch, engine, world size, validation metrics, trainable shapes

``checkpoints/best.json`` records the run's ``best_metric`` and ``best_mode`` and the best
checkpoint then. The best checkpoint is always found one way, :func:`best`: the lowest (or
highest) finite value of the metric in the ``state.json`` of the validated checkpoints.
Folders whose name does not start with ``step-`` (``.tmp-step-<N>`` being written,
``.stale-...`` being replaced, ``.deleted-...`` being pruned) are never checkpoints; :func:`sweep`
clears them when a run starts, so a crash at any moment leaves only whole checkpoints under
``step-`` names.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from slam_core.errors import CheckpointError, SpecError
from slam_core.runtime.checkpoints.io import load_safetensors

#: The spec a training run writes into its run folder.
RUN_SPEC_FILE = "spec.json"
CHECKPOINTS_DIR = "checkpoints"
PREFIX = "step-"
TRAINABLE_FILE = "trainable.safetensors"
ADAPTER_DIR = "adapter"
OPTIMIZER_FILE = "optimizer.pt"
TRAINER_FILE = "trainer.pt"
STATE_FILE = "state.json"
BEST_FILE = "best.json"
#: Name prefixes of folders being written, replaced and deleted (see :func:`sweep`).
TEMPORARY_PREFIX, STALE_PREFIX, TOMBSTONE_PREFIX = ".tmp-", ".stale-", ".deleted-"
#: Keys every ``state.json`` has.
STATE_KEYS = frozenset({"step", "epoch", "epoch_done", "engine", "world_size"})


def rank_file(rank: int) -> str:
    """Rank ``rank``'s RNG and data-position file."""
    return f"rank-{rank:05d}.pt"


def zero_file(rank: int) -> str:
    """Rank ``rank``'s ZeRO optimizer partition (deepspeed)."""
    return f"zero-rank{rank:05d}.pt"


def zero_files(folder: Path) -> list[Path]:
    """Every rank's ZeRO optimizer partition in a checkpoint folder, by rank."""
    return sorted(folder.glob("zero-rank*.pt"))


def step_folder(directory: Path, step: int) -> Path:
    """The folder of the checkpoint at ``step`` in a ``checkpoints/`` directory."""
    return directory / f"{PREFIX}{step:08d}"


def step_of(folder: Path) -> int:
    """The step a checkpoint folder's name gives (-1 for a name that has none)."""
    try:
        return int(folder.name[len(PREFIX) :])
    except ValueError:
        return -1


def checkpoints(directory: Path) -> list[Path]:
    """The checkpoints in a ``checkpoints/`` directory, oldest first."""
    if not directory.is_dir():
        return []
    return sorted((p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX)), key=step_of)


def latest(directory: Path) -> Path | None:
    found = checkpoints(directory)
    return found[-1] if found else None


def best(directory: Path, metric: str | None, mode: str = "min") -> Path | None:
    """The checkpoint with the best finite ``metric`` (lowest for ``mode`` min) among those validated."""
    if metric is None:
        return None
    scored = []
    for path in checkpoints(directory):
        value = (read_state(path).get("metrics") or {}).get(metric)
        if value is not None and math.isfinite(value):
            scored.append((value if mode == "min" else -value, step_of(path), path))
    return min(scored)[2] if scored else None


def remove(folder: Path) -> None:
    """Delete a checkpoint folder so that no crash leaves part of it under its name: rename, then delete."""
    tombstone = folder.with_name(f"{TOMBSTONE_PREFIX}{folder.name}")
    shutil.rmtree(tombstone, ignore_errors=True)
    os.rename(folder, tombstone)
    shutil.rmtree(tombstone)


def sweep(directory: Path) -> None:
    """Finish what a crash interrupted in a ``checkpoints/`` directory: delete pruned and half-written
    folders; put back a checkpoint caught between its two renames while being replaced."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if path.name.startswith(STALE_PREFIX):
            final = path.with_name(path.name[len(STALE_PREFIX) :])
            if not final.exists():
                os.rename(path, final)
                continue
        if path.name.startswith((TEMPORARY_PREFIX, STALE_PREFIX, TOMBSTONE_PREFIX)):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def read_state(folder: Path) -> dict[str, Any]:
    """The ``state.json`` of a checkpoint folder."""
    file = folder / STATE_FILE
    try:
        state = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file}: missing; {folder} is not a complete checkpoint") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{file}: unreadable: {exc}") from None
    missing = STATE_KEYS - set(state)
    if missing:
        raise CheckpointError(f"{file}: lacks {sorted(missing)}")
    return state


def best_record(directory: Path) -> dict[str, Any]:
    """``best.json`` of a ``checkpoints/`` directory (empty when there is none or it is unreadable)."""
    try:
        record = json.loads((directory / BEST_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def resolve(path: Path) -> Path:
    """``path`` itself when it is a checkpoint folder, else the best (or, without one, latest) checkpoint
    of the run folder ``path``, by the ``best_metric`` and ``best_mode`` its ``best.json`` records."""
    path = Path(path)
    if (path / TRAINABLE_FILE).is_file():
        return path
    directory = path / CHECKPOINTS_DIR
    if not directory.is_dir():
        raise CheckpointError(
            f"{path}: neither a checkpoint folder ({TRAINABLE_FILE}) nor a run folder ({CHECKPOINTS_DIR}/)"
        )
    record = best_record(directory)
    found = best(directory, record.get("metric"), record.get("mode") or "min") or latest(directory)
    if found is None:
        raise CheckpointError(f"{directory}: no checkpoint")
    return found


def read_trainable(folder: Path) -> dict[str, torch.Tensor]:
    """The trainable weights of a checkpoint folder, on the CPU."""
    return load_safetensors(folder / TRAINABLE_FILE, "trainable weights")


def check_tensors(
    file: Path, saved: dict[str, torch.Tensor], shapes: dict[str, tuple[int, ...]], *, complete: bool
) -> None:
    """Refuse ``saved`` tensors that ``shapes`` (the model's) lacks or shapes differently, and, when
    ``complete``, a name of ``shapes`` that ``saved`` lacks; the message names ``file``."""
    problems = []
    missing, unexpected = sorted(set(shapes) - set(saved)), sorted(set(saved) - set(shapes))
    if complete and missing:
        problems.append(f"missing {len(missing)} trainable tensors of this model, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"has {len(unexpected)} tensors this model does not have or train, e.g. {unexpected[:3]}")
    wrong = [n for n in sorted(set(saved) & set(shapes)) if tuple(saved[n].shape) != tuple(shapes[n])]
    if wrong:
        shown = "; ".join(
            f"{n} has shape {tuple(saved[n].shape)}, the model's is {tuple(shapes[n])}" for n in wrong[:3]
        )
        problems.append(f"{len(wrong)} tensors have another shape, e.g. {shown}")
    if problems:
        raise CheckpointError(
            f"{file}: does not match the model built from this spec (was the spec changed? use the spec the "
            "checkpoint was trained with): " + "; ".join(problems)
        )


def check_finite(file: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Refuse tensors holding NaN or infinity, naming them."""
    bad = sorted(name for name, tensor in tensors.items() if not bool(torch.isfinite(tensor).all()))
    if bad:
        raise CheckpointError(
            f"{file}: {len(bad)} tensors hold NaN or infinite values, e.g. {bad[:3]}; the run diverged before "
            "this checkpoint: use an earlier one"
        )


def run_spec(path: Path) -> Path:
    """The ``spec.json`` of the run that ``path`` (a run folder or one of its checkpoint folders) belongs to."""
    for folder in (path, *path.parents[:2]):
        if (folder / RUN_SPEC_FILE).is_file():
            return folder / RUN_SPEC_FILE
    raise CheckpointError(
        f"{path}: no {RUN_SPEC_FILE} in it or in its run folder; name the spec it was trained with (--spec)"
    )


def load_spec_of_run(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> Any:
    """The validated spec a run was trained with, with ``overrides`` (``section.field=value``) applied."""
    from slam_core.overrides import apply_overrides
    from slam_core.spec import validate_spec

    file = run_spec(Path(path))
    try:
        document = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise SpecError([f"{file}: cannot read the run's spec: {exc}"]) from None
    return validate_spec(apply_overrides(document, list(overrides)), source=str(file))
