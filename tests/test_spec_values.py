"""Core spec values that validate as a type but cannot work: infinities, NaN, booleans for integers."""

from __future__ import annotations

import pytest
import yaml
from support.synthetic import TOY_SPEC

from slam_core.runtime.cli import main

CHOSEN = "encoder=toy-encoder, projector=linear-projector, llm=toy-llm, peft=lora, task=asr"


def _validate(tmp_path, capsys, text: str) -> tuple[int, list[str]]:
    """``slam spec validate`` of TOY_SPEC with ``text`` (YAML) merged into its sections: the exit status and
    the error lines."""
    spec = {name: dict(value) if isinstance(value, dict) else value for name, value in TOY_SPEC.items()}
    for section, entries in yaml.safe_load(text).items():
        spec.setdefault(section, {}).update(entries)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    status = main(["spec", "validate", "--no-check-paths", str(path)])
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("train: {lr: .inf}", "train.lr: Input should be a finite number (got inf)"),
        ("train: {grad_clip: .nan}", "train.grad_clip: Input should be a finite number (got nan)"),
        ("data: {max_duration_s: .inf}", "data.max_duration_s: Input should be a finite number (got inf)"),
        ("data: {max_batch_seconds: -.inf}", "data.max_batch_seconds: Input should be a finite number (got -inf)"),
        ("infer: {temperature: .nan}", "infer.temperature: Input should be a finite number (got nan)"),
    ],
)
def test_a_non_finite_float_is_refused_naming_the_field(tmp_path, capsys, text, problem):
    status, lines = _validate(tmp_path, capsys, text)
    assert status == 2
    assert lines == [f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: {problem}"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("data: {batch_size: true}", "data.batch_size: expected an integer, got the boolean true"),
        ("data: {num_workers: false}", "data.num_workers: expected an integer, got the boolean false"),
        ("train: {epochs: true}", "train.epochs: expected an integer, got the boolean true"),
        ("train: {max_steps: true}", "train.max_steps: expected an integer, got the boolean true"),
        ("infer: {max_new_tokens: true}", "infer.max_new_tokens: expected an integer, got the boolean true"),
        ("train: {epochs: 2.0}", "train.epochs: Input should be a valid integer (got 2.0)"),
        ("train: {deepspeed_stage: true}", "train.deepspeed_stage: expected an integer, got the boolean true"),
    ],
)
def test_a_boolean_or_float_for_an_integer_is_refused_naming_the_field(tmp_path, capsys, text, problem):
    status, lines = _validate(tmp_path, capsys, text)
    assert status == 2
    assert lines == [f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: {problem}"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("projector: {k: true}", "projector.k: expected an integer, got the boolean true"),
        ("projector: {k: 2.0}", "projector.k: Input should be a valid integer (got 2.0)"),
        (
            "encoder: {shape: {num_layers: true}}",
            "encoder.shape.num_layers: expected an integer, got the boolean true",
        ),
        ("peft: {type: lora, r: true}", "peft.r: expected an integer, got the boolean true"),
        ("train: {lr: true}", "train.lr: expected a number, got the boolean true"),
        ("data: {max_duration_s: true}", "data.max_duration_s: expected a number, got the boolean true"),
        (
            "train: {deepspeed_config: {optimizer: {lr: .inf}}}",
            "train.deepspeed_config.optimizer.lr: Input should be a finite number (got inf)",
        ),
        (
            "train: {deepspeed_config: {betas: [0.9, .nan]}}",
            "train.deepspeed_config.betas.1: Input should be a finite number (got nan)",
        ),
    ],
)
def test_plugin_configs_and_free_form_mappings_refuse_the_same_numbers(tmp_path, capsys, text, problem):
    # plugin configs declare plain int/float fields: the spec checks what was written beside what validated
    status, lines = _validate(tmp_path, capsys, text)
    assert status == 2
    assert lines == [f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: {problem}"]


@pytest.mark.parametrize(("written", "shown"), [(".inf", "inf"), ("'inf'", "'inf'")])
def test_a_plugin_float_with_only_a_lower_bound_refuses_infinity(tmp_path, capsys, written, shown):
    # lora's alpha is declared gt=0, which infinity passes; the string "inf" is read as a float too
    status, lines = _validate(tmp_path, capsys, f"peft: {{type: lora, alpha: {written}}}")
    assert status == 2
    problem = f"peft.alpha: Input should be a finite number (got {shown})"
    assert lines == [f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: {problem}"]


def test_finite_floats_and_true_integers_still_validate(tmp_path, capsys):
    status, _ = _validate(tmp_path, capsys, "train: {lr: 1.0e-3, epochs: 3, deepspeed_stage: 3}\ndata: {batch_size: 2}")
    assert status == 0


def _inspect(tmp_path, capsys, **sections) -> tuple[int, list[str]]:
    """``slam inspect`` (builds on the meta device) of TOY_SPEC with ``sections`` updated."""
    spec = {name: dict(value) if isinstance(value, dict) else value for name, value in TOY_SPEC.items()}
    for section, entries in sections.items():
        spec.setdefault(section, {}).update(entries)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    status = main(["inspect", str(path)])
    return status, capsys.readouterr().err.strip().splitlines()


def test_a_projector_stride_that_leaves_no_audio_position_is_refused(tmp_path, capsys):
    # the toy encoder gives 25 frames/s: 2 s are 50 frames; a stride of 51 leaves none, 50 leaves one
    status, lines = _inspect(tmp_path, capsys, projector={"k": 51}, data={"max_duration_s": 2.0})
    assert status == 2
    assert lines == [
        "slam: error: invalid pipeline spec: projector.k = 51 leaves no audio position for the longest clip the data "
        "allows: data.max_duration_s = 2 s is 50 frames of toy-encoder (25 frames/s), which the projector turns into "
        "0 positions; lower projector.k or raise data.max_duration_s"
    ]
    assert _inspect(tmp_path, capsys, projector={"k": 50}, data={"max_duration_s": 2.0})[0] == 0


def test_a_fusion_branch_projector_stride_is_checked_against_its_own_encoder(tmp_path, capsys):
    # the branch's toy encoder hops 320 samples: 12.5 frames/s, 25 frames in 2 s
    branch = {
        "name": "wide",
        "encoder": {"type": "toy-encoder", "hop_length": 320},
        "projector": {"type": "linear-projector", "k": 26},
    }
    status, lines = _inspect(tmp_path, capsys, fusion={"branches": [branch]}, data={"max_duration_s": 2.0})
    assert status == 2
    assert lines == [
        "slam: error: invalid pipeline spec: fusion.branches.0.projector.k = 26 leaves no audio position for the "
        "longest clip the data allows: data.max_duration_s = 2 s is 25 frames of toy-encoder (12.5 frames/s), which "
        "the projector turns into 0 positions; lower fusion.branches.0.projector.k or raise data.max_duration_s"
    ]
    branch["projector"]["k"] = 25
    assert _inspect(tmp_path, capsys, fusion={"branches": [branch]}, data={"max_duration_s": 2.0})[0] == 0


def test_lora_targets_that_match_no_module_are_one_line(tmp_path, capsys):
    status, lines = _inspect(tmp_path, capsys, peft={"target_modules": ["qq_proj"]})
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith(
        "slam: error: invalid pipeline spec: peft.target_modules: ['qq_proj'] match no layer of LlamaForCausalLM; "
        "its linear layers include: down_proj, gate_proj, k_proj"
    )


def _deep_validate(tmp_path, capsys, *flags: str, **sections) -> tuple[int, list[str], list[str]]:
    """``slam spec validate`` with ``flags`` of TOY_SPEC with ``sections`` updated: status, stdout and stderr lines."""
    spec = {name: dict(value) if isinstance(value, dict) else value for name, value in TOY_SPEC.items()}
    for section, entries in sections.items():
        spec.setdefault(section, {}).update(entries)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    status = main(["spec", "validate", "--no-check-paths", *flags, str(path)])
    captured = capsys.readouterr()
    return status, captured.out.strip().splitlines(), captured.err.strip().splitlines()


def test_spec_validate_deep_finds_lora_targets_that_match_no_layer(tmp_path, capsys):
    peft = {"type": "lora", "target_modules": ["qq_proj"]}
    status, out, err = _deep_validate(tmp_path, capsys, peft=peft)
    assert status == 0 and out == [f"{tmp_path / 'spec.yaml'}: valid ({CHOSEN})"]  # only a build can tell
    status, out, err = _deep_validate(tmp_path, capsys, "--deep", peft=peft)
    assert status == 2 and out == [] and len(err) == 1
    assert err[0].startswith(
        f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: peft.target_modules: ['qq_proj'] match "
        "no layer of LlamaForCausalLM; its linear layers include: down_proj, gate_proj, k_proj"
    )


def test_spec_validate_deep_finds_a_projector_stride_with_no_position_left(tmp_path, capsys):
    status, out, err = _deep_validate(tmp_path, capsys, "--deep", projector={"k": 51}, data={"max_duration_s": 2.0})
    assert status == 2
    assert err == [
        f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: projector.k = 51 leaves no audio position "
        "for the longest clip the data allows: data.max_duration_s = 2 s is 50 frames of toy-encoder (25 frames/s), "
        "which the projector turns into 0 positions; lower projector.k or raise data.max_duration_s"
    ]
    status, out, err = _deep_validate(tmp_path, capsys, "--deep", projector={"k": 50}, data={"max_duration_s": 2.0})
    assert status == 0 and err == []
    assert out == [f"{tmp_path / 'spec.yaml'}: valid ({CHOSEN}); the model builds (meta device)"]


def test_min_new_tokens_above_max_new_tokens_is_refused_naming_both(tmp_path, capsys):
    status, lines = _validate(tmp_path, capsys, "infer: {min_new_tokens: 30, max_new_tokens: 20}")
    assert status == 2
    assert len(lines) == 1 and "min_new_tokens (30) is more than max_new_tokens (20)" in lines[0], lines
    assert lines[0].startswith(f"slam: error: invalid pipeline spec in {tmp_path / 'spec.yaml'}: infer")
