"""What a run reports (rank 0 only): a progress bar on a terminal, log lines, TensorBoard scalars,
``history.jsonl`` and ``curves.png``."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

from slam_core.runtime.checkpoints.io import write_atomic

logger = logging.getLogger(__name__)
HISTORY_FILE = "history.jsonl"
PLOT_FILE = "curves.png"


class Monitor:
    """Reports training and validation of one run; every method is a no-op off rank 0."""

    def __init__(self, run_dir: Path, *, enabled: bool, total_steps: int, start_step: int):
        self.enabled = enabled
        self.run_dir = Path(run_dir)
        self.history: list[dict[str, Any]] = []
        self._window: list[float] = []
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter
        from tqdm.auto import tqdm

        self.history = [r for r in read_history(self.run_dir) if r["step"] <= start_step]
        self._write_history()
        # events that a killed run logged after the step this run starts from are hidden
        self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=start_step + 1)
        self.bar = tqdm(
            total=total_steps, initial=start_step, unit="step", dynamic_ncols=True, disable=not sys.stderr.isatty()
        )

    def train_step(self, step: int, values: dict[str, float], log: bool) -> None:
        """One optimizer step's loss etc.; every ``log`` step the means since the last log are recorded."""
        if not self.enabled:
            return
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{values['loss']:.4f}", refresh=False)
        self._window.append(values["loss"])
        if log:
            record = {**values, "loss": sum(self._window) / len(self._window)}
            self._window = []
            self._record("train", step, record)
            logger.info("step %d: %s", step, _format(record))

    def validation(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        self._record("valid", step, metrics)
        logger.info("step %d: validation %s", step, _format(metrics))
        self.plot()

    def event(self, step: int, message: str) -> None:
        """A notable event (a skipped step) for the log and the history."""
        if not self.enabled:
            return
        logger.warning("step %d: %s", step, message)
        self._append({"split": "event", "step": step, "message": message})

    def _record(self, split: str, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.writer.add_scalar(f"{split}/{name}", value, step)
        self.writer.flush()
        self._append({"split": split, "step": step, **values})

    def _append(self, record: dict[str, Any]) -> None:
        self.history.append(record)
        with open(self.run_dir / HISTORY_FILE, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _write_history(self) -> None:
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        write_atomic(self.run_dir / HISTORY_FILE, text.encode())

    def plot(self) -> None:
        """Redraw ``curves.png``: losses on the left, the other validation metrics on the right."""
        if not self.enabled:
            return
        write_atomic(self.run_dir / PLOT_FILE, render_curves(self.history))

    def close(self) -> None:
        if self.enabled:
            self.bar.close()
            self.writer.close()


def _format(values: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.4g}" for name, value in values.items())


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / HISTORY_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # a line torn by a crash ends the readable history
    return records


def render_curves(history: list[dict[str, Any]]) -> bytes:
    """A PNG of train/valid loss and the validation metrics against the step (matplotlib, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), layout="constrained")
    FigureCanvasAgg(figure)
    losses, metrics = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    for split, style in (("train", "-"), ("valid", "o-")):
        points = [(r["step"], r["loss"]) for r in history if r["split"] == split and "loss" in r]
        if points:
            losses.plot(*zip(*points, strict=True), style, label=f"{split} loss", markersize=3)
    names = sorted({k for r in history if r["split"] == "valid" for k in r if k not in ("split", "step", "loss")})
    for name in names:
        points = [(r["step"], r[name]) for r in history if r["split"] == "valid" and name in r]
        metrics.plot(*zip(*points, strict=True), "o-", label=name, markersize=3)
    for axes, title in ((losses, "loss"), (metrics, "validation metrics")):
        axes.set_xlabel("step")
        axes.set_title(title)
        if axes.has_data():
            axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
