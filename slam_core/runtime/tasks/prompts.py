"""Prompt templates shared by the task heads: slots, validation, and the choice per sample.

A task config's prompt is one template or a list of templates (``str.format`` syntax, named
slots such as ``{labels}``; ``{{`` and ``}}`` are literal braces). With a list, training
samples a template per sample (:func:`choose`, Python's ``random``); evaluation and decoding
always use the first one. Imports no torch.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field

#: The sample field where :meth:`PromptedTask.prepare` records the template chosen for each prompt field.
CHOICE_KEY = "prompt_choice"


def templates(prompt: str | Sequence[str]) -> list[str]:
    """The templates of a prompt config value (one string or a list)."""
    return [prompt] if isinstance(prompt, str) else list(prompt)


def slots(template: str) -> list[str]:
    """The slot names a template uses, in order of appearance (``ValueError`` on malformed braces)."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def _braces(names: Iterable[str]) -> str:
    return ", ".join("{" + name + "}" for name in sorted(names))


def check_template(template: str, allowed: frozenset[str], required: frozenset[str] = frozenset()) -> str:
    """``template`` if it only uses ``allowed`` slots and has every ``required`` one; ``ValueError`` otherwise."""
    if not isinstance(template, str):
        raise ValueError(f"a prompt must be a string, got {template!r}")
    try:
        used = slots(template)
    except ValueError as exc:
        raise ValueError(f"prompt {template!r} is malformed ({exc}); write {{{{ and }}}} for braces") from None
    can_use = f"slots it can use: {_braces(allowed)}" if allowed else "it takes no slots"
    for name in used:
        if name not in allowed:
            shown = "{}" if name == "" else "{" + name + "}"
            raise ValueError(
                f"prompt {template!r} has an unknown slot {shown}; {can_use} (write {{{{ and }}}} for literal braces)"
            )
    missing = required - set(used)
    if missing:
        raise ValueError(f"prompt {template!r} lacks the slot {_braces(missing)}; it must contain it")
    return template


def prompt_field(
    *, slots: Iterable[str] = (), required: Iterable[str] = (), description: str = "the instruction"
) -> Any:
    """An annotated config type for a prompt: one template or a non-empty list, slots checked."""
    allowed, needed = frozenset(slots), frozenset(required)

    def check(value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("the list of prompts is empty; give at least one prompt")
        for template in templates(value):
            check_template(template, allowed, needed)
        return value

    detail = f" (slots: {_braces(allowed)})" if allowed else ""
    return Annotated[
        str | list[str],
        AfterValidator(check),
        Field(
            description=f"{description}{detail}; a list is sampled per sample in training, the first is used "
            "in evaluation and decoding",
            validate_default=True,
        ),
    ]


def choose(prompt: str | Sequence[str], *, training: bool) -> int:
    """The index of the template to use: random in training (``random.randrange``), else 0."""
    count = len(templates(prompt))
    return random.randrange(count) if training and count > 1 else 0


def render(template: str, values: dict[str, str]) -> str:
    """Fill a validated template's slots from ``values``."""
    return template.format_map(values)
