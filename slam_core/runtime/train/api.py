"""``train(spec, run_dir=...)``: build the model, the data, the engine, resume, and run."""

from __future__ import annotations

import contextlib
import importlib
import math
from collections.abc import Callable, Sequence
from pathlib import Path

from slam_core.errors import CheckpointError, RunFolderError, SpecError
from slam_core.runtime.checkpoints.io import write_atomic, write_failure
from slam_core.runtime.checkpoints.layout import read_state
from slam_core.runtime.data.batch import ResumableBatches
from slam_core.runtime.infer.service import Scorer, metrics_scorer
from slam_core.runtime.train import distributed
from slam_core.runtime.train.checkpoint import Checkpointer
from slam_core.runtime.train.encoder_cache import EncoderCaches
from slam_core.runtime.train.engines import create_engine
from slam_core.runtime.train.lock import RunFolderLock
from slam_core.runtime.train.loop import StepInfo, Trainer, TrainResult
from slam_core.runtime.train.monitor import Monitor
from slam_core.spec import PipelineSpec

#: ``batches_factory(split, rank, world_size) -> ResumableBatches | None`` (``None``: no such split).
BatchesFactory = Callable[[str, int, int], "ResumableBatches | None"]
DEFAULT_LOADER = "slam_core.runtime.data.loader:build_batches"


def train(
    spec: PipelineSpec,
    *,
    run_dir: str | Path | None = None,
    resume: bool | str | Path = True,
    batches_factory: BatchesFactory | None = None,
    scorer: Scorer | None = None,
    score: bool = False,
    on_step: Callable[[StepInfo], None] | None = None,
    registry=None,
) -> TrainResult:
    """Train the pipeline ``spec`` describes; every rank of a torchrun launch calls this.

    - ``run_dir`` (default ``train.output_dir``) receives checkpoints, TensorBoard events,
      ``history.jsonl``, ``curves.png`` and ``spec.json``.
    - ``resume``: ``True`` continues from the latest checkpoint in ``run_dir`` if any;
      ``False`` starts afresh (refused if ``run_dir`` has checkpoints); a path resumes from
      that checkpoint folder.
    - ``batches_factory(split, rank, world_size)`` gives each split's batches (``None`` for
      a split that does not exist); by default the data pipeline builds them from the manifests.
    - Each validation decodes the valid split (with the ``infer`` settings) and adds the task
      head's metrics when ``score`` is true (``slam train --score``) or ``train.best_metric`` is
      one of them; ``scorer(hypotheses, references, samples) -> metrics`` replaces those metrics.
    """
    context = distributed.setup(spec.train.engine)
    run_dir = Path(run_dir if run_dir is not None else spec.train.output_dir)
    # the main rank holds the run folder for the whole run: a second run on it fails at once
    lock = RunFolderLock(run_dir) if context.is_main else contextlib.nullcontext()
    try:
        with lock:
            return _train_locked(spec, run_dir, context, resume, batches_factory, scorer, score, on_step, registry)
    except OSError as exc:
        error = _storage_error(exc, run_dir)
        if error is None:
            raise
        raise error from exc
    finally:
        distributed.teardown(context)


def _train_locked(spec, run_dir, context, resume, batches_factory, scorer, score, on_step, registry) -> TrainResult:
    """Build, resume and run (the rest of :func:`train`, while the run folder is held)."""
    import transformers

    from slam_core.model import build_model

    checkpointer = Checkpointer(run_dir, spec.train, context)
    start_from = _checkpoint_to_resume(checkpointer, resume)
    transformers.set_seed(spec.train.seed)  # the same initial weights on every rank
    model = build_model(spec, registry)
    factory = batches_factory or default_batches_factory(spec, model)
    train_batches = factory("train", context.rank, context.world_size)
    if train_batches is None:
        raise ValueError("the batches factory gave no train split")
    valid_batches = factory("valid", context.rank, context.world_size)
    scorer, reported = _validation_scorer(spec, model.task.metrics, valid_batches is not None, scorer, score)
    check_best_metric(spec, reported, task_metrics=model.task.metrics)
    return _run(
        spec, model, context, checkpointer, start_from, train_batches, valid_batches, scorer=scorer, on_step=on_step
    )


def _run(spec, model, context, checkpointer, start_from, train_batches, valid_batches, *, scorer, on_step):
    """Prepare the encoder cache and the engine, resume, and run the trainer (the rest of :func:`train`)."""
    import transformers

    run_dir = checkpointer.directory.parent
    cache = None
    if spec.train.encoder_cache_dir is not None:
        cache = EncoderCaches.for_model(spec.train.encoder_cache_dir, model, spec, spec.train.dtype)
    total = total_steps(spec, train_batches)
    engine = create_engine(model, spec, context)
    engine.prepare(total)
    if context.is_main:
        _write_if_changed(run_dir / "spec.json", spec.model_dump_json(indent=1))
    start = checkpointer.load(start_from, engine) if start_from is not None else None
    if start is None:
        transformers.set_seed(spec.train.seed + context.rank)  # ranks draw different dropout masks
    elif _finished(start, total, valid_batches):
        return TrainResult(
            run_dir=run_dir, step=start.step, epoch=start.epoch, resumed_from=start.path, model=model,
            last_checkpoint=checkpointer.latest(), best_checkpoint=checkpointer.best(),
        )  # fmt: skip
    monitor = Monitor(run_dir, enabled=context.is_main, total_steps=total, start_step=start.step if start else 0)
    trainer = Trainer(
        spec=spec,
        model=model,
        engine=engine,
        context=context,
        train_batches=train_batches,
        valid_batches=valid_batches,
        checkpointer=checkpointer,
        monitor=monitor,
        total_steps=total,
        scorer=scorer,
        cache=cache,
        on_step=on_step,
    )
    try:
        return trainer.run(start)
    finally:
        monitor.close()


def _storage_error(exc: OSError, run_dir: Path) -> RunFolderError | None:
    """A failed write in the run folder as a one-line :class:`RunFolderError` naming the file and the fix."""
    target = Path(exc.filename) if exc.filename else None
    inside = target is not None and (target == run_dir or run_dir in target.parents)
    reason = write_failure(target or run_dir, exc) if inside else None
    if reason is None:
        return None
    return RunFolderError(f"{target}: cannot write in the run folder {run_dir}: {reason}")


def _finished(start, total: int, valid_batches) -> bool:
    """Whether the run resumed from ``start`` has nothing left to do (so it changes nothing on disk)."""
    return start.step >= total and (valid_batches is None or read_state(start.path).get("metrics") is not None)


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        write_atomic(path, text.encode())


#: What every validation reports; a scorer adds the task's metrics.
VALIDATION_METRICS = ("loss", "token_accuracy")


def task_scorer(spec: PipelineSpec, metrics: Sequence[str], *, always: bool) -> Scorer | None:
    """A scorer of the task head's ``metrics`` when ``always`` (``--score``) or when ``train.best_metric``
    is one of them; else ``None`` (validation then reports only loss and token accuracy)."""
    if always or spec.train.best_metric in metrics:
        return metrics_scorer(metrics)
    return None


def _validation_scorer(
    spec: PipelineSpec, metrics: Sequence[str], has_valid: bool, scorer: Scorer | None, score: bool
) -> tuple[Scorer | None, list[str] | None]:
    """The scorer validation uses and the metric names it reports (``None``: a caller's scorer's, unknown)."""
    if not has_valid:
        return None, []
    if scorer is not None:
        return scorer, None
    scorer = task_scorer(spec, metrics, always=score)
    return scorer, [*VALIDATION_METRICS, *(metrics if scorer is not None else ())]


def check_best_metric(spec: PipelineSpec, reported: Sequence[str] | None, *, task_metrics: Sequence[str]) -> None:
    """Refuse, before training, a ``train.best_metric`` that no validation will report.

    ``reported``: the metric names each validation gives (``None``: unknown until it has run, as
    with a caller's own scorer; an empty list: there is no valid split).
    """
    name = spec.train.best_metric
    if name is None or name in VALIDATION_METRICS or reported is None or name in reported:
        return
    scored = f"the task's metrics ({', '.join(task_metrics) or 'none'}) are scored"
    if not reported:
        problem = (
            f"train.best_metric: {name!r} is not reported by validation: there is no valid split; set "
            f"data.valid_manifest ({scored} when best_metric names one, or with slam train --score) "
            "or choose loss or token_accuracy"
        )
    else:
        problem = (
            f"train.best_metric: {name!r} is not reported by validation, which gives {', '.join(reported)} "
            f"({scored} when best_metric names one, or with slam train --score); choose one of those"
        )
    raise SpecError([problem])


def _checkpoint_to_resume(checkpointer: Checkpointer, resume: bool | str | Path) -> Path | None:
    if resume is True:
        return checkpointer.latest()
    if resume is False:
        if checkpointer.all():
            raise CheckpointError(
                f"{checkpointer.directory}: holds checkpoints of an earlier run; resume it (drop --fresh; "
                "resume=True in Python) or choose another run folder"
            )
        return None
    return Path(resume)


def total_steps(spec: PipelineSpec, train_batches: ResumableBatches) -> int:
    """Optimizer steps of the run: ``train.max_steps``, or the epochs' batches / ``grad_accum``."""
    train = spec.train
    per_epoch = None
    if hasattr(train_batches, "__len__"):
        per_epoch = math.ceil(len(train_batches) / train.grad_accum)
    if per_epoch is None and train.max_steps is None:
        raise ValueError("set train.max_steps: the train batches do not say how many there are per epoch")
    if train.max_steps is not None:
        return train.max_steps if per_epoch is None else min(train.max_steps, per_epoch * train.epochs)
    return per_epoch * train.epochs


def default_batches_factory(spec: PipelineSpec, model) -> BatchesFactory:
    """Batches from the data pipeline (``slam_core.runtime.data.loader:build_batches``), imported when needed."""
    module_name, _, attribute = DEFAULT_LOADER.partition(":")
    try:
        build = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(
            f"train() needs batches: pass batches_factory=, or install the data pipeline ({DEFAULT_LOADER} is "
            f"not available: {exc})"
        ) from exc

    def factory(split: str, rank: int, world_size: int):
        if split != "train" and getattr(spec.data, f"{split}_manifest", None) is None:
            return None
        preprocessor = model.preprocessor(training=split == "train")
        return build(
            spec,
            split,
            preprocessor,
            rank=rank,
            world_size=world_size,
            seed=spec.train.seed,
            modality=model.modality,
            task=model.task,
        )

    return factory
