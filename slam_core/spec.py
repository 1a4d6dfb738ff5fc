"""The pipeline spec: one validated document describing a whole composition.

``PipelineSpec`` has the core sections ``data``, ``train`` and ``infer``; the component
sections ``encoder``, ``projector``, ``llm``, ``peft`` (optional) and ``task`` are
discriminated unions on ``type``, built from the plugins installed (see
:func:`spec_model`). Errors are collected into a :class:`SpecError` whose lines name the
field path, the bad value and, for an unknown ``type``, the installed choices and the pip
package that provides it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import PydanticCustomError

from slam_core import plugins
from slam_core.configs import InputPath
from slam_core.errors import SpecError
from slam_core.spec_numbers import number_problems

#: Component sections of a spec and the component kind each holds.
COMPONENT_SECTIONS: dict[str, str] = {
    "encoder": "encoder",
    "projector": "projector",
    "llm": "llm",
    "peft": "peft",
    "task": "task",
}
OPTIONAL_SECTIONS = frozenset({"peft"})


#: An integer field: ``true``/``false`` (which Python counts as 1/0) and ``2.0`` are refused, not read as numbers.
Integer = Annotated[int, Strict()]


def _refuse_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


class _Section(BaseModel):
    """A core section: unknown keys, infinite or NaN floats and booleans given for integers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


#: What a ``data.*_manifest`` names (see docs/architecture.md#data-flow).
MANIFEST_HELP = "a manifest (SLAM-LLM or lhotse jsonl), or a folder: lhotse Shar, a Hugging Face dataset"


class DataSpec(_Section):
    """Where the data comes from and how it is batched.

    A batch holds at most ``batch_size`` samples and ``max_batch_seconds`` padded seconds
    (batch size × longest sample); either may be null, not both. ``batch_size`` left out
    beside ``max_batch_seconds`` means no count cap.
    """

    train_manifest: InputPath | None = Field(None, description=MANIFEST_HELP)
    valid_manifest: InputPath | None = Field(None, description=MANIFEST_HELP)
    test_manifest: InputPath | None = Field(None, description=MANIFEST_HELP)
    batch_size: Integer | None = Field(4, gt=0, description="samples per batch (a cap beside max_batch_seconds)")
    max_batch_seconds: float | None = Field(
        None, gt=0, description="padded audio seconds per batch: batch size × longest sample"
    )
    bucketing: bool = Field(True, description="batch samples of similar duration together")
    num_buckets: Integer = Field(10, ge=1, description="duration buckets, when bucketing")
    shuffle: bool = Field(True, description="reshuffle the train split each epoch (valid/test keep their order)")
    num_workers: Integer = Field(2, ge=0)
    max_duration_s: float = Field(30.0, gt=0, description="longest sample accepted, in seconds")
    bad_samples: Literal["error", "skip"] = Field(
        "error", description="a missing, corrupt, empty or over-long sample: stop with an error, or skip it"
    )

    @model_validator(mode="after")
    def _batch_limit(self) -> DataSpec:
        if self.max_batch_seconds is not None and "batch_size" not in self.model_fields_set:
            self.batch_size = None
        if self.batch_size is None and self.max_batch_seconds is None:
            raise ValueError("set data.batch_size, data.max_batch_seconds or both: a batch needs a limit")
        return self


class TrainSpec(_Section):
    """Optimisation, what is frozen, the engine, validation, checkpoints (see ``slam_core.runtime.train``)."""

    seed: Integer = 42
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: Integer = Field(1000, ge=0)
    max_steps: Integer | None = Field(None, gt=0, description="stop after this many optimizer steps (epochs still cap)")
    epochs: Integer = Field(1, gt=0)
    grad_accum: Integer = Field(1, gt=0)
    grad_clip: float | None = Field(1.0, gt=0)
    dtype: Literal["fp32", "bf16", "fp16"] = "bf16"
    freeze_encoder: bool = True
    freeze_llm: bool = True
    engine: Literal["single", "ddp", "fsdp2", "deepspeed"] = "single"
    output_dir: str = "runs/default"
    lr_schedule: Literal["linear", "cosine"] = Field("linear", description="decay after the linear warmup")
    deepspeed_stage: Annotated[Literal[1, 2, 3], BeforeValidator(_refuse_bool)] = Field(
        2, description="ZeRO stage, with engine: deepspeed"
    )
    deepspeed_config: dict[str, Any] = Field(
        default_factory=dict, description="entries merged over the DeepSpeed config built from this section"
    )
    nan_policy: Literal["error", "skip_batch"] = Field(
        "error", description="a non-finite loss: stop, or skip that optimizer step's batches"
    )
    max_consecutive_skips: Integer = Field(
        10, gt=0, description="with skip_batch: stop when more than this many steps in a row are skipped"
    )
    log_every_steps: Integer = Field(10, gt=0)
    eval_every_steps: Integer | None = Field(None, gt=0, description="validate every N steps; null: after each epoch")
    save_every_steps: Integer | None = Field(None, gt=0, description="checkpoint every N steps; null: after each epoch")
    keep_last: Integer | None = Field(2, gt=0, description="checkpoints kept besides the best; null keeps all")
    best_metric: str | None = Field("loss", description="validation metric choosing the best checkpoint")
    best_mode: Literal["min", "max"] = "min"
    pack_sequences: bool = Field(
        False, description="lay a batch's samples end to end in fewer LLM rows, none attending to another"
    )
    pack_tokens: Integer | None = Field(
        None, gt=0, description="with pack_sequences: positions per packed row (at least the batch's longest sample)"
    )
    compile: bool = Field(
        False, description="torch.compile each repeated block (decoder and encoder layers) before training"
    )
    encoder_cache_dir: str | None = Field(
        None, description="cache a frozen encoder's outputs here, so that later epochs skip the encoder"
    )

    @model_validator(mode="after")
    def _compile_needs_a_torch_engine(self) -> TrainSpec:
        if self.compile and self.engine == "deepspeed":
            raise ValueError("train.compile works with engine single, ddp or fsdp2; DeepSpeed compiles on its own")
        return self

    @model_validator(mode="after")
    def _cache_needs_frozen_encoder(self) -> TrainSpec:
        if self.encoder_cache_dir is not None and not self.freeze_encoder:
            raise ValueError("train.encoder_cache_dir needs train.freeze_encoder: true (a trained encoder changes)")
        return self


class InferSpec(_Section):
    """Decoding settings."""

    batch_size: Integer = Field(4, gt=0)
    max_new_tokens: Integer = Field(200, gt=0)
    min_new_tokens: Integer = Field(
        0, ge=0, description="no end-of-sequence token before this many new tokens; at most max_new_tokens"
    )
    num_beams: Integer = Field(1, gt=0)
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    repetition_penalty: float = Field(1.0, gt=0)
    no_repeat_ngram_size: Integer = Field(0, ge=0)

    @model_validator(mode="after")
    def _min_within_max(self) -> InferSpec:
        if self.min_new_tokens > self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens ({self.min_new_tokens}) is more than max_new_tokens ({self.max_new_tokens}); "
                "lower min_new_tokens or raise max_new_tokens"
            )
        return self


class BranchSpec(_Section):
    """Base of a fusion branch: one more encoder with its own projector (unions added by :func:`spec_model`)."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", description="branch name (its features' key)")
    encoder: BaseModel
    projector: BaseModel


class FusionSpec(_Section):
    """Further encoder branches fused with the main ``encoder``/``projector`` (see ``slam_core.fusion``)."""

    mode: Literal["time", "frame"] = Field(
        "time", description="time: the branches' embeddings one after the other; frame: summed frame by frame"
    )
    max_frame_difference: Integer = Field(2, ge=0, description="frame mode: tolerated length difference in frames")
    branches: list[BranchSpec] = Field(min_length=1, description="the other branches: name, encoder, projector")

    @model_validator(mode="after")
    def _unique_names(self) -> FusionSpec:
        names = [branch.name for branch in self.branches]
        repeated = sorted({name for name in names if names.count(name) > 1} | ({"main"} & set(names)))
        if repeated:
            raise ValueError(f"fusion branch names must be unique and not 'main' (the spec's encoder): {repeated}")
        return self


class PipelineSpec(_Section):
    """Base of the spec model; :func:`spec_model` adds the component unions to it."""

    name: str = "pipeline"
    encoder: BaseModel
    projector: BaseModel
    fusion: FusionSpec | None = None
    llm: BaseModel
    peft: BaseModel | None = None
    task: BaseModel
    data: DataSpec = Field(default_factory=DataSpec)
    train: TrainSpec = Field(default_factory=TrainSpec)
    infer: InferSpec = Field(default_factory=InferSpec)

    @model_validator(mode="after")
    def _peft_trains_adapters_only(self) -> PipelineSpec:
        if self.peft is not None and not self.train.freeze_llm:
            raise ValueError(
                "train.freeze_llm is false but a peft section is set: the PEFT method trains only its adapters. "
                "Remove the peft section to fine-tune the whole LLM, or set train.freeze_llm: true"
            )
        return self


def _union_of(configs: list[type[BaseModel]]) -> Any:
    if not configs:
        return dict[str, Any]  # nothing installed: the type pre-check reports it
    if len(configs) == 1:
        return configs[0]  # a one-member Union collapses, and a discriminator on it is an error
    return Annotated[Union[tuple(configs)], Field(discriminator="type")]  # noqa: UP007


def spec_model(registry: plugins.Registry | None = None) -> type[PipelineSpec]:
    """The ``PipelineSpec`` model for the plugins in ``registry`` (default: the installed ones)."""
    return _spec_model(registry or plugins.registry())


@functools.lru_cache(maxsize=8)
def _spec_model(registry: plugins.Registry) -> type[PipelineSpec]:
    fields: dict[str, Any] = {}
    for section, kind in COMPONENT_SECTIONS.items():
        configs = [registry.components[kind][name].spec.config for name in registry.names(kind)]
        annotation = _union_of(configs)
        fields[section] = (annotation | None, None) if section in OPTIONAL_SECTIONS else (annotation, ...)
    branch = create_model(
        "BranchSpec", __base__=BranchSpec, encoder=(fields["encoder"][0], ...), projector=(fields["projector"][0], ...)
    )
    fusion = create_model("FusionSpec", __base__=FusionSpec, branches=(list[branch], Field(min_length=1)))
    fields["fusion"] = (fusion | None, None)
    return create_model("PipelineSpec", __base__=PipelineSpec, **fields)


def validate_spec(data: Any, registry: plugins.Registry | None = None, source: str | None = None) -> PipelineSpec:
    """Validate a spec document (a mapping); raises :class:`SpecError` listing every problem."""
    registry = registry or plugins.registry()
    if not isinstance(data, dict):
        raise SpecError([f"the spec must be a mapping of sections, got {type(data).__name__}"], source)
    problems = _check_component_types(data, registry)
    if problems:
        raise SpecError(problems, source)
    try:
        spec = spec_model(registry).model_validate(data)
    except ValidationError as exc:
        raise SpecError(_describe_validation_errors(exc, data), source) from None
    problems = number_problems(data, spec)  # plugin configs' numbers, free-form mappings
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec(
    path: str | Path, registry: plugins.Registry | None = None, overrides: Sequence[str] = ()
) -> PipelineSpec:
    """Read a YAML (``.yaml``/``.yml``) or JSON spec file, apply ``--set``-style ``overrides``, validate it.

    Its input paths come back absolute: relative ones written in the file start from the file's
    folder, those given in ``overrides`` from the working directory (:mod:`slam_core.spec_paths`).
    Whether they exist is checked apart (:func:`slam_core.spec_paths.check_input_paths`).
    """
    return validate_spec(resolved_spec_document(path, registry, overrides), registry, source=str(path))


def resolved_spec_document(
    path: str | Path, registry: plugins.Registry | None = None, overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """The spec file's document, ``overrides`` applied and its input paths made absolute (see :func:`load_spec`).

    It is validated on the way (a :class:`SpecError` lists every problem); the result is a plain
    mapping, for a caller that edits it further (the demo) before :func:`validate_spec`.
    """
    from slam_core.overrides import apply_overrides, override_keys
    from slam_core.spec_paths import resolve_document_paths

    path = Path(path)
    document = read_spec_document(path)
    if isinstance(document, dict) and overrides:
        document = apply_overrides(document, overrides)
    spec = validate_spec(document, registry, source=str(path))
    return resolve_document_paths(document, spec, path.parent, from_cwd=override_keys(overrides))


def read_spec_document(path: Path) -> Any:
    """Parse a spec file without validating it; a syntax error names the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError([f"cannot read the spec file: {exc.strerror or exc}"], str(path)) from None
    except UnicodeDecodeError as exc:
        raise SpecError([f"the spec file is not UTF-8 text: {exc.reason} at byte {exc.start}"], str(path)) from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(
                [f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}"], str(path)
            ) from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"YAML syntax error{where}: {problem}"], str(path)) from None


def _check_component_types(data: dict[str, Any], registry: plugins.Registry) -> list[str]:
    """Check every component section's ``type`` (the fusion branches' too) against the installed plugins."""
    problems = _check_sections(data, registry, COMPONENT_SECTIONS, "")
    fusion = data.get("fusion")
    branches = fusion.get("branches") if isinstance(fusion, dict) else None
    if isinstance(branches, list):
        for index, branch in enumerate(branches):
            if isinstance(branch, dict):
                sections = {"encoder": "encoder", "projector": "projector"}
                problems += _check_sections(branch, registry, sections, f"fusion.branches.{index}.")
    return problems


def _check_sections(
    data: dict[str, Any], registry: plugins.Registry, sections: dict[str, str], prefix: str
) -> list[str]:
    problems = []
    for section, kind in sections.items():
        value = data.get(section)
        where = f"{prefix}{section}"
        if value is None:
            if section not in OPTIONAL_SECTIONS:
                choices = (
                    ", ".join(registry.names(kind)) or f"none installed (pip install a plugin providing an {kind})"
                )
                problems.append(f"{where}: section missing; it needs a 'type', one of: {choices}")
            continue
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a mapping with a 'type' key, got {value!r}")
        elif "type" not in value:
            choices = ", ".join(registry.names(kind)) or "none installed"
            problems.append(f"{where}.type: missing; installed {kind} types: {choices}")
        elif not isinstance(value["type"], str) or value["type"] not in registry.components[kind]:
            message = plugins.unknown_component_message(registry, kind, value["type"])
            problems.append(f"{where}.type: {message}")
    return problems


def _without_union_tags(location: list[Any], data: Any) -> list[Any]:
    """Drop the tags a discriminated union puts into error paths: projector.<type>.field -> projector.field."""
    kept, node = [], data
    for part in location:
        if isinstance(node, dict) and kept and kept[-1] in COMPONENT_SECTIONS and part == node.get("type"):
            continue  # the union's tag: the node stays the section itself
        kept.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return kept


def _describe_validation_errors(exc: ValidationError, data: dict[str, Any]) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False):
        location = _without_union_tags(list(error["loc"]), data)
        path = ".".join(str(part) for part in location) or "<spec>"
        if error["type"] == "missing":
            lines.append(f"{path}: required field missing")
        elif error["type"] == "extra_forbidden":
            lines.append(f"{path}: unknown field (check its spelling against `slam spec schema`)")
        elif error["type"] == "int_type" and isinstance(error["input"], bool):
            lines.append(f"{path}: expected an integer, got the boolean {str(error['input']).lower()}")
        else:
            given = error["input"]
            shown = "" if isinstance(given, dict) else f" (got {given!r})"  # a whole section says nothing
            lines.append(f"{path}: {error['msg']}{shown}")
    return lines
