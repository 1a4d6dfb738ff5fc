"""The ``aac`` task head: audio captioning with one or several reference captions per sample.

``target`` is a caption or a list of captions (Clotho has five per clip). Training learns one of
them, drawn per sample in :meth:`prepare` with ``random.randrange``; evaluation's target is the
first; :meth:`references` gives them all to the caption metrics.
"""

from __future__ import annotations

import random
from typing import Any

from slam_core.runtime.tasks.base import PromptedTask
from slam_core.runtime.tasks.configs import AACTaskConfig

#: The sample field where :meth:`AACTask.prepare` records which caption a training sample learns.
CAPTION_CHOICE_KEY = "target_index"

#: Caption metrics in order of preference; the default is those of them that can run here.
CAPTION_METRICS = ("cider_d", "spice", "spider")


class AACTask(PromptedTask):
    """Audio captioning; metrics default to CIDEr-D plus SPICE and SPIDEr when Java and the SPICE jar are present."""

    config: AACTaskConfig

    def resolve_default_metrics(self) -> tuple[str, ...]:
        from slam_core.runtime.metrics import metric_availability

        availability = metric_availability()
        usable = tuple(name for name in CAPTION_METRICS if availability[name] is None)
        # cider_d is reported even where it cannot run, so that scoring says what to install.
        return usable or CAPTION_METRICS[:1]

    def captions(self, sample: dict[str, Any]) -> list[str]:
        """The sample's reference captions (``target``: a string or a non-empty list of strings)."""
        value = self.field(sample, "target", "a caption or a list of captions")
        captions = [value] if isinstance(value, str) else value
        if not isinstance(captions, list) or not captions or not all(isinstance(c, str) and c for c in captions):
            raise ValueError(
                f"aac sample {sample.get('key', '<no key>')!r}: 'target' must be a caption or a non-empty list of "
                f"non-empty captions, got {value!r}"
            )
        return captions

    def prepare_batch(self, samples: list[dict[str, Any]], *, training: bool) -> list[dict[str, Any]]:
        for sample in samples:
            if training:
                count = len(self.captions(sample))
                sample[CAPTION_CHOICE_KEY] = random.randrange(count) if count > 1 else 0
            else:  # evaluation learns and decodes against the first caption; decoding may have no target
                sample.pop(CAPTION_CHOICE_KEY, None)
        return samples

    def target(self, sample: dict[str, Any]) -> str:
        captions = self.captions(sample)
        index = sample.get(CAPTION_CHOICE_KEY, 0)
        return captions[index] if isinstance(index, int) and 0 <= index < len(captions) else captions[0]

    def references(self, sample: dict[str, Any]) -> list[str]:
        return self.captions(sample)
