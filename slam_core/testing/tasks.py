"""The rules of task heads, on one example ``sample``."""

from __future__ import annotations

import copy
import random
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from slam_core import plugins
from slam_core.components import TaskHead
from slam_core.testing.base import ComponentConformance
from slam_core.testing.rules import checks, require


class TaskHeadConformance(ComponentConformance):
    """TaskHead contract on one example ``sample``."""

    kind = "task"
    contract = TaskHead
    sample: ClassVar[dict[str, Any]] = {"key": "utt-1", "source": "a.wav", "target": "Hello world"}

    @checks("instruction-and-target-are-text")
    def test_instruction_and_target_are_text(self):
        task = self.build()
        instruction, target = task.instruction(dict(self.sample)), task.target(dict(self.sample))
        rule = "instruction-and-target-are-text"
        require(isinstance(instruction, str), rule, f"instruction() returned {instruction!r}")
        require(isinstance(target, str) and target, rule, f"target() returned {target!r} for {self.sample}")

    @checks("references-are-text")
    def test_references_are_text(self):
        references = self.build().references(dict(self.sample))
        texts = [references] if isinstance(references, str) else references
        require(
            isinstance(texts, list) and texts and all(isinstance(r, str) and r for r in texts),
            "references-are-text",
            f"references() returned {references!r} for {self.sample}",
        )

    @checks("postprocess-returns-text")
    def test_postprocess_returns_text(self):
        text = self.build().postprocess("  some   decoded text ")
        require(isinstance(text, str), "postprocess-returns-text", f"postprocess() returned {text!r}")

    @checks("metrics-are-declared")
    def test_metrics_are_declared(self):
        metrics = self.build().metrics
        rule = "metrics-are-declared"
        require(
            not isinstance(metrics, str) and metrics and all(isinstance(m, str) and m for m in metrics),
            rule,
            f"metrics is {metrics!r}, expected a non-empty sequence of metric names",
        )
        registry = plugins.registry()
        unknown = [name for name in metrics if name not in registry.metrics]
        require(not unknown, rule, lambda: _unknown_metrics(registry, unknown))

    @pytest.mark.parametrize("training", [True, False])
    @checks("prepare-returns-new-samples")
    def test_prepare_returns_new_samples(self, training):
        task = self.build()
        batch = [copy.deepcopy(self.sample) for _ in range(3)]
        before = copy.deepcopy(batch)
        prepared = task.prepare(batch, training=training)
        rule = "prepare-returns-new-samples"
        require(batch == before, rule, f"prepare(training={training}) changed the samples it was given: {batch}")
        require(len(prepared) == len(batch), rule, f"prepare() returned {len(prepared)} samples for {len(batch)}")
        for sample in prepared:
            require(isinstance(task.instruction(sample), str), rule, f"no instruction for the prepared {sample}")
            require(isinstance(task.target(sample), str), rule, f"no target for the prepared {sample}")

    @checks("prepare-draws-from-random")
    def test_prepare_draws_from_random(self):
        task = self.build()
        batches = []
        for torch_seed in (0, 1):
            random.seed(1234)
            torch.manual_seed(torch_seed)  # other generators differ between the two runs
            np.random.seed(torch_seed)
            prepared = task.prepare([copy.deepcopy(self.sample) for _ in range(4)], training=True)
            batches.append([(task.instruction(s), task.target(s)) for s in prepared])
        require(
            batches[0] == batches[1],
            "prepare-draws-from-random",
            f"after the same random.seed(1234), prepare() gave {batches[0]} and then {batches[1]}",
        )

    @checks("choices-hold-the-target")
    def test_choices_hold_the_target(self):
        task = self.build()
        prepared = task.prepare([copy.deepcopy(self.sample)], training=False)[0]
        choices = task.choices(prepared)
        if choices is None:
            pytest.skip("this task generates free text")
        rule = "choices-hold-the-target"
        require(
            choices and all(isinstance(c, str) and c for c in choices) and len(set(choices)) == len(choices),
            rule,
            f"choices() returned {choices!r}: expected distinct non-empty strings",
        )
        target = task.postprocess(task.target(prepared))
        require(target in choices, rule, f"the target {target!r} is not one of the choices {list(choices)}")


def _unknown_metrics(registry: plugins.Registry, unknown: list[str]) -> str:
    known = ", ".join(registry.metrics) or "none"
    return f"metrics {unknown} are declared by no plugin (slam_metrics); declared: {known}"
