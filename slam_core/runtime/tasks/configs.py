"""The configs of the built-in task heads (the spec's ``task`` section). Imports no torch.

Every config has ``prompt`` (one template or a list, see :mod:`slam_core.runtime.tasks.prompts`) and
``metrics`` (``null``: the task's default metrics). The task heads themselves live in the
modules named by the factories in :mod:`slam_core.builtin`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from slam_core.configs import InputPath
from slam_core.runtime.tasks.labels import LabelSet
from slam_core.runtime.tasks.prompts import prompt_field


def _check_metric_names(names: list[str] | None) -> list[str] | None:
    if names is None:
        return None
    from slam_core.runtime.metrics.registry import metric_names

    if not names:
        raise ValueError("metrics is empty; leave it out (null) for the task's default metrics")
    known = metric_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(map(repr, unknown))}; known metrics: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics {names} names a metric twice")
    return names


MetricNames = Annotated[
    list[str] | None,
    AfterValidator(_check_metric_names),
    Field(description="metrics to report (names from slam_core.runtime.metrics); null: the task's defaults"),
]

PlainPrompt = prompt_field()
HotwordsPrompt = prompt_field(
    slots=("hotwords",), required=("hotwords",), description="the instruction when there are hotwords"
)
LabelsPrompt = prompt_field(slots=("labels",))
TranslationPrompt = prompt_field(slots=("source_lang", "target_lang", "source_text"))


class TaskConfig(BaseModel):
    """Fields shared by the built-in task configs; each subclass fixes ``type`` and the prompt's default."""

    model_config = ConfigDict(extra="forbid")
    type: str
    prompt: PlainPrompt
    metrics: MetricNames = None


class ASRTaskConfig(TaskConfig):
    """Transcribe speech: instruction in, transcript (``target``) out; metric ``wer``."""

    type: Literal["asr"] = "asr"
    prompt: PlainPrompt = "Transcribe speech to text."
    lowercase_target: bool = Field(False, description="lower-case the transcript used as target")


class VSRTaskConfig(ASRTaskConfig):
    """Lip reading: the transcript of a (silent) speaker video; metric ``wer``."""

    type: Literal["vsr"] = "vsr"
    prompt: PlainPrompt = (
        "Transcribe the silent speech in this video to text by lip-reading the speaker's clear and visible "
        "lip movements."
    )


class BiasingFilterConfig(BaseModel):
    """How decoding picks hotwords from an utterance's biasing list given the first-pass hypothesis."""

    model_config = ConfigDict(extra="forbid")
    drop_common_words: bool = Field(True, description="ignore hypothesis words in the common-words list")
    common_words: InputPath | None = Field(
        None, description="common-words file, one word per line; null: the built-in list (SCOWL size 10)"
    )
    ngram: int = Field(2, ge=1, le=8, description="character n-gram size of the candidate index")
    threshold: float = Field(
        0.7, ge=0.0, le=1.0, description="keep a biasing entry whose similarity to a hypothesis span reaches this"
    )
    min_hotwords: int = Field(0, ge=0, description="top up to this many with the best candidates below threshold")
    max_hotwords: int | None = Field(None, ge=1, description="keep at most this many (the most similar)")


class ContextualASRTaskConfig(ASRTaskConfig):
    """ASR with a biasing list per utterance (``biasing_words``) whose matches go into the prompt."""

    type: Literal["contextual-asr"] = "contextual-asr"
    prompt: HotwordsPrompt = 'Transcribe speech to text. Some hotwords might help. The hotwords are "{hotwords}".'
    plain_prompt: PlainPrompt = "Transcribe speech to text."
    hotword_separator: str = Field(", ", description="between hotwords in the {hotwords} slot")
    hotword_case: Literal["keep", "lower", "upper"] = Field(
        "keep", description="case of the hotwords in the prompt (match the targets' case)"
    )
    keep_probability: float = Field(
        0.5, ge=0.0, le=1.0, description="training: chance that a target gives a pseudo-hotword n-gram"
    )
    max_ngram: int = Field(4, ge=1, description="training: pseudo-hotwords are 1..max_ngram-word n-grams")
    list_distractors: int = Field(
        0, ge=0, description="training: words drawn from the sample's own biasing_words list, if it has one"
    )
    inference_hotwords: Literal["filter", "list", "oracle", "none"] = Field(
        "filter",
        description="decoding: filter (first pass, then the list's matches), list (the whole biasing list), "
        "oracle (the list's words in the reference), none (plain prompt)",
    )
    filter: BiasingFilterConfig = Field(default_factory=BiasingFilterConfig)


class AACTaskConfig(TaskConfig):
    """Audio captioning: ``target`` is one caption or a list of reference captions."""

    type: Literal["aac"] = "aac"
    prompt: PlainPrompt = "Describe the audio you hear."


class MCTaskConfig(TaskConfig):
    """Music classification into a closed label set; decoding always returns one of the labels."""

    type: Literal["mc"] = "mc"
    labels: list[str] = Field(description="the class labels (unique, case and white space ignored)")
    prompt: LabelsPrompt = "What is the genre of this music? Answer with one of: {labels}."
    label_separator: str = Field(", ", description="between labels in the {labels} slot")

    @field_validator("labels")
    @classmethod
    def _labels_unique(cls, labels: list[str]) -> list[str]:
        LabelSet(labels)
        return labels


class STTaskConfig(TaskConfig):
    """Speech translation: ``target`` is the translation; ``source_text`` the transcript, when given."""

    type: Literal["st"] = "st"
    prompt: TranslationPrompt = "Translate the {source_lang} speech into {target_lang}."
    source_lang: str = Field("English", min_length=1, description="a sample's own source_lang field overrides it")
    target_lang: str = Field(min_length=1, description="a sample's own target_lang field overrides it")
    transcript_first: bool = Field(
        False, description="target = source_text, separator, translation; decoding keeps what follows the separator"
    )
    separator: str = Field("\n", min_length=1, description="between transcript and translation (transcript_first)")
