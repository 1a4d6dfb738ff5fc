"""Corpus BLEU with sacrebleu (0-100 scale, sacrebleu's defaults: 4-grams, exp smoothing)."""

from __future__ import annotations

from collections.abc import Sequence

import sacrebleu


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[Sequence[str]], *, tokenize: str = "13a") -> float:
    """sacrebleu's ``corpus_bleu``; ``references[i]`` are hypothesis i's references (any number >= 1).

    sacrebleu wants one stream per reference position; hypotheses with fewer references get
    ``None`` in the later streams, which sacrebleu skips. ``tokenize`` is sacrebleu's tokenizer
    name (``13a``, ``intl``, ``zh``, ``char``, ``none``, ...).
    """
    depth = max(len(refs) for refs in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(depth)]
    return float(sacrebleu.corpus_bleu(list(hypotheses), streams, tokenize=tokenize).score)
