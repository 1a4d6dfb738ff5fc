"""The metric registry and the one entry point, :func:`score`."""

from __future__ import annotations

import importlib.util
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slam_core import plugins
from slam_core.runtime.metrics.errors import MetricUnavailable

#: Scoring options and their defaults; ``score`` rejects any other keyword.
DEFAULT_OPTIONS: dict[str, Any] = {
    "normalize": "whisper",  # wer, cer, b_wer, u_wer: whisper | basic | none
    "biasing_key": "biasing_words",  # b_wer, u_wer: the sample field holding the biasing word list
    "bleu_tokenize": "13a",  # bleu: sacrebleu's tokenizer
    "labels": None,  # macro_f1: the class labels to average over (default: those in the references)
    "caption_tokenizer": "auto",  # cider_d, spice, spider: auto | ptb | python
    "java": None,  # Java executable for the PTB tokenizer and SPICE (default: java on PATH)
    "spice_jar": None,  # SPICE jar (default: $SLAM_SPICE_JAR, else pycocoevalcap's copy)
}


class Inputs:
    """One scoring call's inputs and options, with the normalised forms metrics share computed once."""

    def __init__(self, hypotheses: Sequence[str], references: Sequence[Any], samples: Sequence[dict] | None, options):
        self.hypotheses = list(hypotheses)
        self.references = [[r] if isinstance(r, str) else list(r) for r in references]
        self.samples = samples
        self.options = options
        self._memo: dict[str, Any] = {}

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per scoring call (metric values, tokenised captions, biasing counts)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def value(self, name: str) -> float:
        """The value of metric ``name``, computed once even when another metric (spider) needs it."""
        return self.memo(f"metric:{name}", lambda: float(get_metric(name).compute(self)))

    def single_references(self, metric: str) -> list[str]:
        """The one reference of each hypothesis; a metric that needs one raises on several."""
        if any(len(refs) != 1 for refs in self.references):
            raise ValueError(f"{metric} needs exactly one reference per hypothesis")
        return [refs[0] for refs in self.references]

    def captions(self) -> tuple[list[str], list[list[str]]]:
        """Tokenised hypotheses and references (one tokenizer run shared by CIDEr-D and SPICE)."""
        return self.memo("captions", self._tokenize_captions)

    def _tokenize_captions(self) -> tuple[list[str], list[list[str]]]:
        from slam_core.runtime.metrics.captions import tokenize_captions

        flat = self.hypotheses + [r for refs in self.references for r in refs]
        tokens = tokenize_captions(flat, tokenizer=self.options["caption_tokenizer"], java=self.options["java"])
        rest = iter(tokens[len(self.hypotheses) :])
        return tokens[: len(self.hypotheses)], [[next(rest) for _ in group] for group in self.references]


@dataclass(frozen=True)
class Metric:
    """A named metric: what it computes, the Python packages it needs, and any other precondition."""

    name: str
    summary: str
    compute: Callable[[Inputs], float]
    packages: tuple[str, ...] = ()
    precondition: Callable[[dict[str, Any]], str | None] = field(default=lambda options: None)

    def unavailable(self, options: dict[str, Any]) -> str | None:
        """Why this metric cannot be computed here, or None."""
        missing = [p for p in self.packages if importlib.util.find_spec(p) is None]
        if missing:
            install = " ".join(_DIST.get(p, p) for p in missing)
            return f"missing Python package(s) {', '.join(missing)}: pip install {install}"
        return self.precondition(options)


_DIST = {"sklearn": "scikit-learn", "whisper_normalizer": "whisper-normalizer"}


def _error_rate(unit: str) -> Callable[[Inputs], float]:
    def compute(inputs: Inputs) -> float:
        from slam_core.runtime.metrics.wer import error_rate

        refs = inputs.single_references("wer" if unit == "word" else "cer")
        return error_rate(inputs.hypotheses, refs, unit=unit, normalize=inputs.options["normalize"])

    return compute


def _biasing(which: int) -> Callable[[Inputs], float]:
    def compute(inputs: Inputs) -> float:
        from slam_core.runtime.metrics.biasing import biased_unbiased_counts, biasing_lists

        def counts():
            refs = inputs.single_references("b_wer/u_wer")
            lists = biasing_lists(inputs.samples, inputs.options["biasing_key"], len(refs))
            return biased_unbiased_counts(inputs.hypotheses, refs, lists, normalize=inputs.options["normalize"])

        return inputs.memo("biasing", counts)[which].error_rate

    return compute


def _bleu(inputs: Inputs) -> float:
    from slam_core.runtime.metrics.bleu import corpus_bleu

    return corpus_bleu(inputs.hypotheses, inputs.references, tokenize=inputs.options["bleu_tokenize"])


def _accuracy(inputs: Inputs) -> float:
    from slam_core.runtime.metrics.classification import accuracy

    return accuracy(inputs.hypotheses, inputs.single_references("accuracy"))


def _macro_f1(inputs: Inputs) -> float:
    from slam_core.runtime.metrics.classification import macro_f1

    return macro_f1(inputs.hypotheses, inputs.single_references("macro_f1"), labels=inputs.options["labels"])


def _cider_d(inputs: Inputs) -> float:
    from slam_core.runtime.metrics.cider import cider_d

    return cider_d(*inputs.captions())


def _spice(inputs: Inputs) -> float:
    from slam_core.runtime.metrics.spice import spice

    return spice(*inputs.captions(), spice_jar=inputs.options["spice_jar"], java=inputs.options["java"])


def _spider(inputs: Inputs) -> float:
    return (inputs.value("cider_d") + inputs.value("spice")) / 2


def _spice_precondition(options: dict[str, Any]) -> str | None:
    from slam_core.runtime.metrics.spice import spice_unavailable

    return spice_unavailable(options["spice_jar"], options["java"])


def _spider_precondition(options: dict[str, Any]) -> str | None:
    reason = _spice_precondition(options)
    return None if reason is None else f"SPIDEr = (CIDEr-D + SPICE) / 2 needs SPICE: {reason}"


_ASR = ("jiwer", "whisper_normalizer")
_CAPTION = ("pycocoevalcap",)
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "wer", "word error rate after normalisation (corpus: edits / reference words)", _error_rate("word"), _ASR
        ),
        Metric("cer", "character error rate after normalisation (spaces count)", _error_rate("char"), _ASR),
        Metric("b_wer", "WER on the words of each utterance's biasing list", _biasing(0), _ASR),
        Metric("u_wer", "WER on the words outside each utterance's biasing list", _biasing(1), _ASR),
        Metric("bleu", "sacrebleu corpus BLEU, 0-100", _bleu, ("sacrebleu",)),
        Metric("accuracy", "exact match of stripped, lower-cased labels", _accuracy, ("sklearn",)),
        Metric("macro_f1", "unweighted mean of per-class F1 of stripped, lower-cased labels", _macro_f1, ("sklearn",)),
        Metric("cider_d", "CIDEr-D (pycocoevalcap Cider) on PTB-tokenised captions", _cider_d, _CAPTION),
        Metric("spice", "SPICE F-score (SPICE 1.0 jar, needs Java)", _spice, _CAPTION, _spice_precondition),
        Metric("spider", "SPIDEr = (CIDEr-D + SPICE) / 2", _spider, _CAPTION, _spider_precondition),
    )
}


#: The built-in metrics as attributes (``BUILTIN.wer``): what slam-core's ``slam_metrics`` records name.
BUILTIN = types.SimpleNamespace(**METRICS)


def _resolve_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise TypeError(f"unknown scoring option(s) {', '.join(unknown)}; known: {', '.join(DEFAULT_OPTIONS)}")
    return {**DEFAULT_OPTIONS, **options}


def get_metric(name: str) -> Metric:
    """The metric ``name`` as a plugin (slam-core for the built-ins) declares it through ``slam_metrics``;
    :class:`UnknownMetricError` lists the declared names otherwise."""
    registered = plugins.registry().metric(name)
    try:
        return registered.spec.load()
    except (ImportError, AttributeError) as exc:
        raise plugins.PluginError(
            f"metric {name!r} from {registered.plugin.label}: cannot import its implementation "
            f"{registered.spec.implementation!r}: {exc}"
        ) from exc


def metric_names() -> list[str]:
    """The names of every declared metric (built-in and from plugins)."""
    return list(plugins.registry().metrics)


def metric_availability(**options: Any) -> dict[str, str | None]:
    """Each declared metric's name -> None if it can be computed here, else the reason it cannot."""
    resolved = _resolve_options(options)
    return {name: get_metric(name).unavailable(resolved) for name in metric_names()}


def available_metrics(**options: Any) -> list[str]:
    """The names of the metrics that can be computed here (with these options)."""
    return [name for name, reason in metric_availability(**options).items() if reason is None]


def score(
    names: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str] | Sequence[Sequence[str]],
    samples: Sequence[dict] | None = None,
    **options: Any,
) -> dict[str, float]:
    """Score ``hypotheses`` against ``references`` (one string, or a list of strings, per hypothesis).

    Returns ``{name: value}`` in the order of ``names``. Every metric is checked before any is
    computed: an unknown name raises :class:`UnknownMetricError`, one that cannot run here
    :class:`MetricUnavailable` (saying what to install). ``samples`` carry per-utterance data
    (the biasing lists for b_wer/u_wer). See ``DEFAULT_OPTIONS`` for the keyword options.
    """
    if isinstance(names, str):
        names = [names]
    metrics = {name: get_metric(name) for name in dict.fromkeys(names)}
    resolved = _resolve_options(options)
    for name, metric in metrics.items():
        reason = metric.unavailable(resolved)
        if reason is not None:
            raise MetricUnavailable(name, reason)
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("nothing to score: no hypotheses")
    inputs = Inputs(hypotheses, references, samples, resolved)
    if any(not refs for refs in inputs.references):
        raise ValueError("every hypothesis needs at least one reference")
    return {name: inputs.value(name) for name in metrics}
