"""The ``st`` task head: speech translation, the translation (``target``) as target, metric BLEU.

The prompt's slots ``{source_lang}`` and ``{target_lang}`` come from the sample's own fields of
those names when it has them, else from the config; ``{source_text}`` is the sample's transcript.
With ``transcript_first`` the model writes the transcript, the separator, then the translation
(SLAM-LLM's CoVoST-2 recipe); :meth:`STTask.postprocess` keeps what follows the last separator.
"""

from __future__ import annotations

from typing import Any

from slam_core.runtime.tasks import prompts
from slam_core.runtime.tasks.base import PromptedTask
from slam_core.runtime.tasks.configs import STTaskConfig


class STTask(PromptedTask):
    """Speech translation."""

    default_metrics = ("bleu",)
    config: STTaskConfig

    def language(self, sample: dict[str, Any], name: str) -> str:
        """The sample's ``source_lang``/``target_lang`` field, else the config's."""
        value = sample.get(name, getattr(self.config, name))
        if not isinstance(value, str) or not value:
            key = sample.get("key", "<no key>")
            raise ValueError(f"st sample {key!r}: {name!r} must be a language name, got {value!r}")
        return value

    def instruction(self, sample: dict[str, Any]) -> str:
        template = self.template(sample)
        values = {name: self.language(sample, name) for name in ("source_lang", "target_lang")}
        if "source_text" in prompts.slots(template):
            values["source_text"] = self.source_text(sample)
        return prompts.render(template, values)

    def source_text(self, sample: dict[str, Any]) -> str:
        return self.text_field(sample, "source_text", "the transcript in the source language")

    def translation(self, sample: dict[str, Any]) -> str:
        """The reference translation."""
        return self.text_field(sample, "target", "the translation")

    def target(self, sample: dict[str, Any]) -> str:
        translation = self.translation(sample)
        if self.config.transcript_first:
            return f"{self.source_text(sample)}{self.config.separator}{translation}"
        return translation

    def references(self, sample: dict[str, Any]) -> list[str]:
        return [self.translation(sample)]

    def postprocess(self, text: str) -> str:
        if self.config.transcript_first:
            text = text.rpartition(self.config.separator)[2]
        return super().postprocess(text)
