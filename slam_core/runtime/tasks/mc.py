"""The ``mc`` task head: music classification over the config's closed label set.

The prompt may list the labels (``{labels}``); :meth:`MCTask.choices` returns them, so decoding
scores each label and always answers one; :meth:`MCTask.postprocess` maps case, white-space and
trailing-punctuation variants of a label to the label as the config spells it.
"""

from __future__ import annotations

from typing import Any

from slam_core.runtime.tasks.base import PromptedTask
from slam_core.runtime.tasks.configs import MCTaskConfig
from slam_core.runtime.tasks.labels import LabelSet


class MCTask(PromptedTask):
    """Classification: ``target`` is one of ``labels`` (any case); metrics accuracy and macro-F1."""

    default_metrics = ("accuracy", "macro_f1")
    config: MCTaskConfig

    def __init__(self, config: MCTaskConfig):
        super().__init__(config)
        self.labels = LabelSet(config.labels)

    def instruction(self, sample: dict[str, Any]) -> str:
        return self.render(sample, labels=self.config.label_separator.join(self.labels.labels))

    def target(self, sample: dict[str, Any]) -> str:
        value = self.field(sample, "target", "the class label")
        label = self.labels.canonical(value) if isinstance(value, str) else None
        if label is None:
            raise ValueError(
                f"mc sample {sample.get('key', '<no key>')!r}: target {value!r} is not one of the labels "
                f"{self.labels.labels}; fix the manifest or add the label to the task's labels"
            )
        return label

    def choices(self, sample: dict[str, Any]) -> list[str]:
        return list(self.labels.labels)

    def postprocess(self, text: str) -> str:
        """The canonical label ``text`` is a variant of; other text comes back with white space collapsed."""
        cleaned = super().postprocess(text)
        return self.labels.canonical(cleaned) or cleaned
