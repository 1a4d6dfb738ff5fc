"""Decoding options (the fields of ``slam_core.spec.InferSpec``) → a transformers ``GenerationConfig``.

The spec alone decides how to decode: sampling settings a checkpoint's
``generation_config.json`` may carry (temperature, top-p, top-k) are overridden, and top-k is
off when sampling, so that temperature and top-p are the only sampling filters.

The prompt reaches ``generate`` as embeddings, so ``repetition_penalty`` and
``no_repeat_ngram_size`` act on the generated tokens only. They are passed as explicit logits
processors: transformers 5.24 builds its repetition penalty with ``prompt_ignore_length`` set
to each row's left padding, which, with embeddings only, skips that many *generated* tokens.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from slam_core.spec import InferSpec

#: The options ``generate`` accepts: every InferSpec field but ``batch_size`` (the data loader's).
GENERATION_OPTIONS = tuple(name for name in InferSpec.model_fields if name != "batch_size")


def decoding(options: dict[str, Any], *, pad_token_id: int, eos_token_ids: Iterable[int]) -> tuple[Any, Any]:
    """``(GenerationConfig, LogitsProcessorList)`` for InferSpec-style ``options`` (unset: InferSpec's defaults)."""
    from transformers import GenerationConfig

    infer = infer_options(options)
    if infer.do_sample:
        sampling = {"temperature": infer.temperature, "top_p": infer.top_p, "top_k": 0}
    else:
        sampling = {"temperature": 1.0, "top_p": 1.0, "top_k": 50}  # unused by greedy and beam search
    config = GenerationConfig(
        max_new_tokens=infer.max_new_tokens,
        min_new_tokens=infer.min_new_tokens or None,
        num_beams=infer.num_beams,
        do_sample=infer.do_sample,
        repetition_penalty=1.0,  # see penalty_processors
        no_repeat_ngram_size=0,
        num_return_sequences=1,
        pad_token_id=pad_token_id,
        eos_token_id=sorted(set(eos_token_ids)),
        **sampling,
    )
    return config, penalty_processors(infer)


def penalty_processors(infer: InferSpec) -> Any:
    """The repetition penalty and the n-gram ban, over the generated tokens."""
    from transformers import LogitsProcessorList, NoRepeatNGramLogitsProcessor, RepetitionPenaltyLogitsProcessor

    processors = LogitsProcessorList()
    if infer.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(float(infer.repetition_penalty)))
    if infer.no_repeat_ngram_size > 0:
        processors.append(NoRepeatNGramLogitsProcessor(infer.no_repeat_ngram_size))
    return processors


def infer_options(options: dict[str, Any]) -> InferSpec:
    """Validate generation ``options`` against InferSpec; an unknown name or a bad value is refused."""
    unknown = sorted(set(options) - set(GENERATION_OPTIONS))
    if unknown:
        note = " (batch_size is the data loader's, not a generation option)" if "batch_size" in unknown else ""
        raise TypeError(
            f"unknown generation option(s) {unknown}{note}; the options are: {', '.join(GENERATION_OPTIONS)}"
        )
    try:
        return InferSpec.model_validate(options)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False))
        raise ValueError(f"bad generation option: {problems}") from None
