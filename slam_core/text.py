"""The text of a batch, tokenised: the prompt around the modality embeddings and the target.

Each sample's task instruction is wrapped in the LLM's prompt template
(``llm.prompt_parts``); the target gets the template's ``target_prefix`` and the EOS token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from slam_core.components import LLM, TaskHead


@dataclass
class TextInputs:
    """Token ids around the modality embeddings, one list per sample."""

    prefix_ids: list[list[int]]
    suffix_ids: list[list[int]]
    target_ids: list[list[int]] | None

    def prompt_only(self) -> TextInputs:
        """The same prompts without the targets (what generation starts from)."""
        return TextInputs(self.prefix_ids, self.suffix_ids, None)


def tokenize_batch(llm: LLM, task: TaskHead, samples: Sequence[dict[str, Any]], *, with_targets: bool) -> TextInputs:
    """Tokenise each (already prepared) sample's instruction and, ``with_targets``, its target."""
    prefixes, suffixes, targets = [], [], []
    for sample in samples:
        parts = llm.prompt_parts(task.instruction(sample))
        prefixes.append(llm.tokenize(parts.prefix, special=True) if parts.prefix else [])
        suffixes.append(llm.tokenize(parts.suffix, special=True) if parts.suffix else [])
        if with_targets:
            targets.append([*llm.tokenize(parts.target_prefix + task.target(sample)), llm.eos_token_id])
    return TextInputs(prefixes, suffixes, targets if with_targets else None)
