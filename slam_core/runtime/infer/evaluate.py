"""``slam eval``: score a hypotheses jsonl with the task's metrics."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slam_core.errors import DataError, SlamError


class HypothesesError(DataError):
    """A hypotheses file that cannot be scored; the message names the file and line."""


class ScoringOptionError(SlamError, ValueError):
    """A ``--option KEY=VALUE`` of ``slam eval`` that is malformed or names no scoring option."""


def parse_scoring_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (values read as YAML scalars: ``labels=[a, b]`` is a list) checked against
    the metrics' options (``slam_core.runtime.metrics.registry.DEFAULT_OPTIONS``)."""
    import yaml

    from slam_core.runtime.metrics.registry import DEFAULT_OPTIONS

    options: dict[str, Any] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or key not in DEFAULT_OPTIONS:
            raise ScoringOptionError(
                f"--option {pair!r}: expected KEY=VALUE with KEY one of {', '.join(DEFAULT_OPTIONS)}"
            )
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise ScoringOptionError(f"--option {pair!r}: the value is not a YAML scalar or list: {exc}") from None
    return options


def read_hypotheses(path: str | Path) -> list[dict[str, Any]]:
    """The records of a hypotheses jsonl; each needs ``hypothesis`` and ``references`` (as ``slam infer``
    writes them: the task's references, e.g. several captions) or a reference ``target``. A record
    with an ``error`` (a sample ``slam infer`` skipped as bad) is kept as it is, to be counted apart."""
    path = Path(path)
    if not path.is_file():
        raise HypothesesError(f"{path}: no such hypotheses file (write one with `slam infer`)")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HypothesesError(f"{path}:{number}: not JSON: {exc.msg}") from None
        if isinstance(record, dict) and _skipped(record):
            records.append(record)
            continue
        missing = [field for field in ("hypothesis", "target") if field not in record]
        if "references" in record and missing == ["target"]:
            missing = []
        if missing:
            raise HypothesesError(f"{path}:{number}: missing {', '.join(missing)} (a reference is needed to score)")
        records.append(record)
    if not records:
        raise HypothesesError(f"{path}: no hypotheses to score")
    return records


def evaluate(hypotheses: str | Path, metrics: Sequence[str], output: str | Path | None = None, **options) -> dict:
    """Score ``hypotheses`` with ``metrics`` (see ``slam_core.runtime.metrics``); write ``output`` as JSON if given."""
    from slam_core.runtime.metrics import score

    everything = read_hypotheses(hypotheses)
    records = [record for record in everything if not _skipped(record)]
    if not records:
        raise HypothesesError(f"{hypotheses}: every sample was skipped as bad; nothing to score")
    results = score(
        list(metrics),
        [record["hypothesis"] for record in records],
        [record.get("references", record.get("target")) for record in records],
        samples=records,
        **options,
    )
    report = {
        "hypotheses": str(hypotheses),
        "count": len(records),
        "skipped": len(everything) - len(records),
        "metrics": results,
    }
    if output is not None:
        # JSON has no infinity: an error rate over no reference words is written as null
        clean = {name: (value if math.isfinite(value) else None) for name, value in results.items()}
        Path(output).write_text(json.dumps({**report, "metrics": clean}, indent=1) + "\n")
    return report


def _skipped(record: dict[str, Any]) -> bool:
    """Whether ``record`` is a sample ``slam infer`` skipped as bad: it has an ``error`` and no hypothesis."""
    return "error" in record and "hypothesis" not in record
