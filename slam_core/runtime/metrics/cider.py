"""CIDEr-D with pycocoevalcap's ``Cider`` (which, despite its name, computes CIDEr-D).

What ``pycocoevalcap.cider.Cider`` (v1.2) computes, read from its ``cider_scorer.py``: for
n = 1..4, TF-IDF vectors of the n-grams of the (already tokenised) hypothesis and of each
reference, with document frequencies counted over the references of the corpus being scored
(idf = log(#items) - log(max(1, df))); per reference, the cosine similarity with the hypothesis
weights clipped to the reference's (``min(h, r) * r``), times a Gaussian length penalty
exp(-(l_h - l_r)^2 / (2 * 6^2)) (lengths counted in bigrams, so word counts except for an empty
caption); the mean over n, averaged over the references, times 10; the corpus score is the mean
over items. This is CIDEr-D (Vedantam et al. 2015, sigma = 6, clipping, x10) with corpus document
frequencies, as AAC papers report it. One consequence: a corpus of one item has idf 0 everywhere and scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence


def cider_d(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Corpus CIDEr-D of tokenised hypotheses against their tokenised references (>= 1 each)."""
    from pycocoevalcap.cider.cider import Cider

    gts = {i: list(refs) for i, refs in enumerate(references)}
    res = {i: [hyp] for i, hyp in enumerate(hypotheses)}
    score, _ = Cider().compute_score(gts, res)
    return float(score)
