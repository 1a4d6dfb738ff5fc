"""Numbers that validate as a type but cannot work, anywhere in a validated spec.

pydantic's lax mode reads ``true`` as ``1`` for an integer or a float, ``2.0`` as ``2`` for an
integer, and takes ``.inf``/``.nan`` (or the strings ``"inf"``/``"nan"``) for a float. The core
sections refuse these field by field (:mod:`slam_core.spec`); plugin configs and free-form
mappings (``train.deepspeed_config``) are checked here, by walking the document as written beside
the validated spec, so every plugin gets the check without declaring strict types.

This module imports no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

Location = tuple[str | int, ...]


def number_problems(document: Any, spec: BaseModel) -> list[str]:
    """One line per number of ``spec`` that ``document`` (what was validated) gave in a form that cannot work:
    a boolean for a number, a float for an integer, an infinite or NaN float."""
    return [f"{'.'.join(str(part) for part in location)}: {problem}" for location, problem in _walk(document, spec, ())]


def _walk(given: Any, value: Any, location: Location) -> Iterator[tuple[Location, str]]:
    """The problems of ``value`` (validated), read from ``given`` (as written), at ``location``."""
    if isinstance(value, BaseModel):
        if isinstance(given, Mapping):
            for name, field in type(value).model_fields.items():
                key = field.alias or name
                if key in given:
                    yield from _walk(given[key], getattr(value, name), (*location, key))
    elif isinstance(value, Mapping):
        if isinstance(given, Mapping):
            for key, item in value.items():
                if key in given:
                    yield from _walk(given[key], item, (*location, key))
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if isinstance(given, Sequence) and not isinstance(given, str) and len(given) == len(value):
            for index, (written, item) in enumerate(zip(given, value, strict=True)):
                yield from _walk(written, item, (*location, index))
    else:
        problem = _number_problem(given, value)
        if problem is not None:
            yield location, problem


def _number_problem(given: Any, value: Any) -> str | None:
    if isinstance(value, bool):
        return None  # a true boolean field; what lax mode reads as one is not a number's problem
    if isinstance(value, float) and not math.isfinite(value):
        return f"Input should be a finite number (got {given!r})"
    if isinstance(given, bool) and isinstance(value, int | float):
        kind = "an integer" if isinstance(value, int) else "a number"
        return f"expected {kind}, got the boolean {str(given).lower()}"
    if isinstance(given, float) and isinstance(value, int):
        return f"Input should be a valid integer (got {given!r})"
    return None
