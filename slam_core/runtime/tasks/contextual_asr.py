"""The ``contextual-asr`` task head: ASR with the likely words of a per-utterance biasing list in the prompt.

Samples are ASR samples plus ``biasing_words`` (a list of words or phrases; see
:mod:`slam_core.runtime.tasks.biasing_lists`). The hotwords of a sample go under ``hotwords``; a sample
without hotwords gets ``plain_prompt``.

- Training (:meth:`prepare`): pseudo-hotwords from the batch's targets
  (:mod:`slam_core.runtime.tasks.hotwords`), plus ``list_distractors`` words of the sample's own list.
- Decoding with ``inference_hotwords: filter``: a first pass with the plain prompt, then
  :meth:`after_first_pass` keeps the entries of the list that the first-pass hypothesis seems
  to contain (:class:`~slam_core.runtime.tasks.biasing_filter.BiasingFilter`) and decoding runs again.
  ``list`` puts the whole list in the prompt, ``oracle`` the list's entries found in the
  reference, ``none`` nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slam_core.runtime.tasks import hotwords
from slam_core.runtime.tasks.asr import TranscriptionTask
from slam_core.runtime.tasks.biasing_filter import BiasingFilter, load_common_words, match_words
from slam_core.runtime.tasks.biasing_lists import BIASING_FIELD
from slam_core.runtime.tasks.configs import ContextualASRTaskConfig

#: The sample field holding the hotwords that go into the prompt.
HOTWORDS_FIELD = "hotwords"

_CASE = {"keep": lambda text: text, "lower": str.lower, "upper": str.upper}


class ContextualASRTask(TranscriptionTask):
    """Contextual ASR; metrics WER, B-WER and U-WER (which read ``biasing_words``)."""

    default_metrics = ("wer", "b_wer", "u_wer")
    prompt_fields = ("prompt", "plain_prompt")
    config: ContextualASRTaskConfig

    def __init__(self, config: ContextualASRTaskConfig):
        super().__init__(config)
        self.first_pass = config.inference_hotwords == "filter"
        self._filter: BiasingFilter | None = None

    @property
    def filter(self) -> BiasingFilter:
        """The biasing-list filter, built (and its common-words file read) when first used, so that a
        spec naming a list that is not downloaded yet still builds for ``slam inspect``."""
        if self._filter is None:
            settings = self.config.filter
            common = load_common_words(settings.common_words) if settings.drop_common_words else frozenset()
            self._filter = BiasingFilter(
                common,
                ngram=settings.ngram,
                threshold=settings.threshold,
                min_hotwords=settings.min_hotwords,
                max_hotwords=settings.max_hotwords,
            )
        return self._filter

    def biasing_words(self, sample: dict[str, Any]) -> list[str]:
        """The sample's biasing list; ``[]`` when it has none."""
        words = sample.get(BIASING_FIELD)
        if words is None:
            return []
        if not isinstance(words, (list, tuple)) or not all(isinstance(w, str) for w in words):
            raise TypeError(
                f"contextual-asr sample {sample.get('key', '<no key>')!r}: {BIASING_FIELD!r} must be a list of "
                f"strings, got {words!r}"
            )
        return list(words)

    def sample_problem(self, sample: dict[str, Any], *, needs_target: bool) -> str | None:
        """Also a ``biasing_words`` field that is not a list of strings (read when batches are prepared)."""
        try:
            self.biasing_words(sample)
        except TypeError as exc:
            return str(exc)
        return super().sample_problem(sample, needs_target=needs_target)

    def instruction(self, sample: dict[str, Any]) -> str:
        words = sample.get(HOTWORDS_FIELD) or []
        if not words:
            return self.render(sample, "plain_prompt")
        case = _CASE[self.config.hotword_case]
        return self.render(sample, hotwords=self.config.hotword_separator.join(case(w) for w in words))

    def prepare_batch(self, samples: list[dict[str, Any]], *, training: bool) -> list[dict[str, Any]]:
        if training:
            grams = hotwords.batch_ngrams(
                [self.target(s) for s in samples],
                keep_probability=self.config.keep_probability,
                max_ngram=self.config.max_ngram,
            )
            pool = hotwords.unique([g for g in grams if g is not None])
            for sample in samples:
                own = self.biasing_words(sample)
                sample[HOTWORDS_FIELD] = hotwords.sample_hotwords(pool, own, self.config.list_distractors)
            return samples
        mode = self.config.inference_hotwords
        for sample in samples:
            if mode == "list":
                sample[HOTWORDS_FIELD] = hotwords.unique(self.biasing_words(sample))
            elif mode == "oracle":
                sample[HOTWORDS_FIELD] = self.words_in_reference(sample)
            else:  # "none", and "filter" before its first pass
                sample[HOTWORDS_FIELD] = []
        return samples

    def words_in_reference(self, sample: dict[str, Any]) -> list[str]:
        """The entries of the sample's biasing list that occur in its transcript (as whole words)."""
        reference = f" {' '.join(match_words(self.target(sample)))} "
        found = []
        for entry in hotwords.unique(self.biasing_words(sample)):
            words = match_words(entry)
            if words and f" {' '.join(words)} " in reference:
                found.append(entry)
        return found

    def after_first_pass(self, samples: Sequence[dict[str, Any]], hypotheses: Sequence[str]) -> list[dict[str, Any]]:
        """The samples with ``hotwords``: the entries of their list that match their first-pass hypothesis."""
        if len(samples) != len(hypotheses):
            raise ValueError(f"{len(samples)} samples but {len(hypotheses)} first-pass hypotheses")
        return [
            {**sample, HOTWORDS_FIELD: self.filter(self.biasing_words(sample), hypothesis)}
            for sample, hypothesis in zip(samples, hypotheses, strict=True)
        ]
