"""PromptedTask: the base of the built-in task heads (prompt choice and rendering, fields, metrics)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from slam_core.components import TaskHead
from slam_core.runtime.tasks import prompts
from slam_core.runtime.tasks.configs import TaskConfig


class PromptedTask(TaskHead):
    """A task head whose prompt fields (``prompt_fields``) hold one template or a list.

    :meth:`prepare` records, per sample, which template of each prompt field to use: a random
    one in training, the first otherwise (also when a sample was never prepared). Subclasses
    fill the slots through :meth:`render` and add their own preparation in :meth:`prepare_batch`.
    """

    #: The config fields that hold prompts.
    prompt_fields: ClassVar[tuple[str, ...]] = ("prompt",)
    #: The metrics reported when the config's ``metrics`` is null.
    default_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: TaskConfig):
        self.config = config
        self.metrics = tuple(config.metrics) if config.metrics is not None else self.resolve_default_metrics()

    @property
    def name(self) -> str:
        return self.config.type

    def resolve_default_metrics(self) -> tuple[str, ...]:
        """The metrics used when the config names none (default: ``default_metrics``)."""
        return self.default_metrics

    # -- prepare -----------------------------------------------------------------------------
    def prepare(self, samples: Sequence[dict[str, Any]], *, training: bool) -> list[dict[str, Any]]:
        """New dicts with each prompt field's template choice recorded, then :meth:`prepare_batch`."""
        prepared = []
        for sample in samples:
            choice = {field: self.choose(field, training=training) for field in self.prompt_fields}
            prepared.append({**sample, prompts.CHOICE_KEY: choice})
        return self.prepare_batch(prepared, training=training)

    def choose(self, field: str, *, training: bool) -> int:
        """The index of the template of prompt ``field`` for one sample (random in training, else 0)."""
        return prompts.choose(getattr(self.config, field), training=training)

    def prepare_batch(self, samples: list[dict[str, Any]], *, training: bool) -> list[dict[str, Any]]:
        """Task-specific preparation of a batch of (already copied) samples; default: none."""
        return samples

    # -- text --------------------------------------------------------------------------------
    def template(self, sample: dict[str, Any], field: str = "prompt") -> str:
        """The template of prompt ``field`` chosen for ``sample`` (the first when none was chosen)."""
        options = prompts.templates(getattr(self.config, field))
        index = (sample.get(prompts.CHOICE_KEY) or {}).get(field, 0)
        return options[index] if 0 <= index < len(options) else options[0]

    def render(self, sample: dict[str, Any], field: str = "prompt", **values: str) -> str:
        """The chosen template of ``field`` with its slots filled from ``values``."""
        return prompts.render(self.template(sample, field), values)

    def instruction(self, sample: dict[str, Any]) -> str:
        return self.render(sample)

    def field(self, sample: dict[str, Any], name: str, what: str) -> Any:
        """``sample[name]``; a missing field is a ``KeyError`` naming the task, the sample and the field."""
        try:
            return sample[name]
        except KeyError:
            raise KeyError(
                f"{self.name} sample {sample.get('key', '<no key>')!r} has no {name!r} field ({what})"
            ) from None

    def text_field(self, sample: dict[str, Any], name: str, what: str) -> str:
        """``sample[name]``, which must be a string."""
        value = self.field(sample, name, what)
        if not isinstance(value, str):
            raise TypeError(
                f"{self.name} sample {sample.get('key', '<no key>')!r}: {name!r} must be a string ({what}), "
                f"got {type(value).__name__} {value!r}"
            )
        return value

    def postprocess(self, text: str) -> str:
        """White space collapsed to single spaces."""
        return " ".join(text.split())
