"""The rules the conformance kit checks, one test per rule, and how a broken rule is reported.

Every ``test_*`` method of the kit's classes checks exactly one rule of :data:`RULES` and is
named after it (``frames-match-output-lengths`` → ``test_frames_match_output_lengths``). A
failure always reads ``rule <id>: <what was computed, with the numbers>``, also when the
component raised an exception of its own on the way (the exception is named and chained), so
that a plugin author sees which promise the component broke rather than a traceback from
inside a library.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

#: The groups of classes a rule applies to.
ALL, MODULES, SEQUENCES = "every kind", "encoders, projectors, LLMs", "encoders, projectors"


@dataclass(frozen=True)
class Rule:
    id: str
    applies_to: str
    text: str


_RULES = [
    # -- every kind ---------------------------------------------------------------------------
    Rule("discoverable", ALL, "found through its entry point with status ok and a real distribution name"),
    Rule(
        "entry-point-imports-no-torch",
        ALL,
        "importing the entry-point module (in a fresh interpreter) does not import torch",
    ),
    Rule("factory-returns-contract", ALL, "the factory, called with the validated config, returns the contract class"),
    Rule("config-round-trip", ALL, "the config survives a dict and a JSON round trip unchanged"),
    Rule("config-forbids-unknown-fields", ALL, "the config refuses an unknown field"),
    Rule("config-type-is-the-name", ALL, "the config's `type` literal (and its default) is the component's name"),
    Rule("config-defaults-validate", ALL, "every default of the config passes the config's own validation"),
    Rule("config-schema", ALL, "the config exports a JSON schema with `type` as a constant"),
    Rule("api-compatible", ALL, "the record's `api` is compatible with the host's API_VERSION"),
    # -- nn.Module kinds ----------------------------------------------------------------------
    Rule("eval-deterministic", MODULES, "in eval mode the same input gives the same output"),
    Rule("state-dict-round-trip", MODULES, "a module loaded with another's state dict computes the same output"),
    Rule("dtype-move", MODULES, "`.to(float64)` moves every floating parameter and gives the same output in float64"),
    Rule("device-move", MODULES, "`.to('cuda')` moves everything the forward uses and gives the same output"),
    Rule(
        "gradients-match-trainable",
        MODULES,
        "every trainable parameter gets a finite, non-zero gradient; no frozen parameter gets one",
    ),
    Rule("frozen-builds-no-graph", MODULES, "with `requires_grad_(False)` the output requires no gradient"),
    # -- sequence kinds -----------------------------------------------------------------------
    Rule(
        "lengths-exact",
        SEQUENCES,
        "on a padded batch forward returns output_lengths(lengths), a time axis of their max and output_dim",
    ),
    Rule(
        "frames-match-output-lengths",
        SEQUENCES,
        "unpadded inputs of many lengths, the shortest legal one included, give exactly output_lengths() frames",
    ),
    Rule("padding-does-not-leak", SEQUENCES, "each sample alone gives the valid frames it gives in a padded batch"),
    # -- encoders -----------------------------------------------------------------------------
    Rule("declares-rates", "encoders", "a known modality and positive sample_rate, output_dim and frame_rate"),
    Rule(
        "preprocessor-takes-pipeline-input",
        "encoders",
        "the preprocessor takes what the data pipeline gives (RawAudio for audio) and returns features [T, ...]",
    ),
    Rule(
        "short-input-refused-clearly",
        "encoders",
        "an input too short for the encoder is refused with a SlamError (e.g. AudioError), never another exception",
    ),
    Rule("preprocessor-pickles", "encoders", "the preprocessor pickles small (no weights) and computes the same"),
    Rule("forward-equals-head-of-backbone", "encoders", "forward equals head(*backbone(features, lengths))"),
    Rule("head-trains-with-frozen-backbone", "encoders", "head_modules() get gradients while the backbone is frozen"),
    # -- projectors ---------------------------------------------------------------------------
    Rule("declares-dims", "projectors", "input_dim and output_dim are the ones the factory was given"),
    # -- LLMs ---------------------------------------------------------------------------------
    Rule("embed-shape", "LLMs", "embed(ids [B, L]) is [B, L, hidden_size]"),
    Rule("loss-is-shifted-cross-entropy", "LLMs", "the loss is the shifted cross-entropy of the logits, -100 ignored"),
    Rule("tokenizer-round-trip", "LLMs", "integer pad/eos ids; tokenize gives ints that decode back to the text"),
    Rule("prompt-keeps-instruction", "LLMs", "prompt_parts(instruction) returns PromptParts holding the instruction"),
    Rule(
        "generate-returns-new-tokens",
        "LLMs",
        "greedy generate() on a left-padded batch returns only the new tokens, those greedy decoding computes",
    ),
    # -- PEFT methods -------------------------------------------------------------------------
    Rule("adapters-only-trainable", "PEFT methods", "after apply() only parameters the base lacked are trainable"),
    Rule("identity-at-init", "PEFT methods", "the adapted model computes the base model's logits before training"),
    Rule(
        "gradients-reach-adapters-only",
        "PEFT methods",
        "every trainable parameter gets a finite gradient; no frozen one gets any",
    ),
    Rule("adapter-save-load-round-trip", "PEFT methods", "save() then load() into a fresh base gives the same logits"),
    Rule(
        "merge-keeps-logits",
        "PEFT methods",
        "merge() (unless it raises NotImplementedError) returns the base's parameters with the adapted logits",
    ),
    # -- task heads ---------------------------------------------------------------------------
    Rule("instruction-and-target-are-text", "task heads", "instruction() is a string and target() a non-empty one"),
    Rule("references-are-text", "task heads", "references() is a non-empty string or a non-empty list of them"),
    Rule("postprocess-returns-text", "task heads", "postprocess() returns a string"),
    Rule(
        "metrics-are-declared",
        "task heads",
        "`metrics` is a non-empty sequence of names some plugin declares (slam_metrics)",
    ),
    Rule(
        "prepare-returns-new-samples",
        "task heads",
        "prepare() returns as many new samples and leaves the given ones unchanged",
    ),
    Rule("prepare-draws-from-random", "task heads", "prepare() is reproducible from random.seed alone"),
    Rule("choices-hold-the-target", "task heads", "choices(), when given, are distinct strings holding the target"),
]

#: Every rule by id, in the order CONTRIBUTING.md lists them.
RULES: dict[str, Rule] = {r.id: r for r in _RULES}


class ConformanceFailure(AssertionError):
    """A component broke a rule of the kit; the message starts with ``rule <id>:``."""

    def __init__(self, rule_id: str, detail: str):
        self.rule = RULES[rule_id]
        super().__init__(f"rule {rule_id}: {detail}\n  (the rule: {self.rule.text})")


def fail(rule_id: str, detail: str) -> NoReturn:
    """Report that the component broke ``rule_id``; ``detail`` says what it computed, with the numbers."""
    raise ConformanceFailure(rule_id, detail)


def require(condition: Any, rule_id: str, detail: str | Callable[[], str]) -> None:
    """:func:`fail` unless ``condition``; ``detail`` may be a callable, formatted only on failure."""
    if not condition:
        fail(rule_id, detail() if callable(detail) else detail)


def method_name(rule_id: str) -> str:
    """The name of the kit's test method that checks ``rule_id``."""
    return "test_" + rule_id.replace("-", "_")


Method = TypeVar("Method", bound=Callable[..., Any])


def checks(rule_id: str) -> Callable[[Method], Method]:
    """Mark a test method as the check of ``rule_id``: every failure inside it is reported as that rule's.

    An ``AssertionError`` (e.g. from ``torch.testing.assert_close``) keeps its text after the rule;
    any other exception is the component's and is named as such. pytest's skips pass through.
    """
    if rule_id not in RULES:
        raise KeyError(f"unknown rule {rule_id!r}")

    def decorate(method: Method) -> Method:
        if method.__name__ != method_name(rule_id):
            raise NameError(f"the check of rule {rule_id!r} must be named {method_name(rule_id)}")

        @functools.wraps(method)
        def check(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except ConformanceFailure:
                raise
            except AssertionError as exc:
                raise ConformanceFailure(rule_id, str(exc)) from exc
            except Exception as exc:
                raise ConformanceFailure(rule_id, f"the component raised {type(exc).__name__}: {exc}") from exc

        check.rule = rule_id  # type: ignore[attr-defined]
        return check  # type: ignore[return-value]

    return decorate
