"""Text normalisation before WER/CER: OpenAI Whisper's English or basic normaliser, or none.

``whisper`` is OpenAI Whisper's ``EnglishTextNormalizer`` (whisper/normalizers/english.py) as
packaged by ``whisper_normalizer``: brackets and fillers removed, contractions and titles expanded
("Mr." -> "mister"), spelled numbers to digits ("twenty one" -> "21"), British -> American spelling,
lower case, symbols removed. whisper_normalizer 0.1.15 adds four rules OpenAI's code does not have
(``kinda``, ``sorta``, ``dunno``, ``cause`` -> ``because``); they are removed here, so the result is
OpenAI's. ``basic`` is Whisper's ``BasicTextNormalizer`` (lower case, brackets and symbols removed);
``none`` only splits on white space.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

Normalization = Literal["whisper", "basic", "none"]
NORMALIZATIONS: tuple[str, ...] = ("whisper", "basic", "none")

#: Replacement rules whisper_normalizer adds to OpenAI Whisper's EnglishTextNormalizer.
_NOT_IN_OPENAI_WHISPER = (r"\bkinda\b", r"\bsorta\b", r"\bdunno\b", r"\bcause\b")


@functools.cache
def _whisper_english() -> Callable[[str], str]:
    from whisper_normalizer.english import EnglishTextNormalizer

    normalizer = EnglishTextNormalizer()
    for pattern in _NOT_IN_OPENAI_WHISPER:
        normalizer.replacers.pop(pattern, None)
    return normalizer


@functools.cache
def _whisper_basic() -> Callable[[str], str]:
    from whisper_normalizer.basic import BasicTextNormalizer

    return BasicTextNormalizer()


def _split_only(text: str) -> str:
    return " ".join(text.split())


def get_normalizer(mode: str) -> Callable[[str], str]:
    """The function ``text -> normalised text`` (words separated by single spaces) for ``mode``."""
    if mode == "whisper":
        english = _whisper_english()
        return lambda text: _split_only(english(text))
    if mode == "basic":
        basic = _whisper_basic()
        return lambda text: _split_only(basic(text))
    if mode == "none":
        return _split_only
    raise ValueError(f"unknown normalize={mode!r}; choose one of {', '.join(NORMALIZATIONS)}")


def normalize_label(label: str) -> str:
    """A class label as compared by accuracy and macro-F1: stripped and lower-cased."""
    return label.strip().lower()
