"""``slam inspect --batch --seconds --text-tokens``: a training step's memory, run on fake tensors,
against the memory of the same step run for real on the CPU in a fresh process."""

from __future__ import annotations

import copy

import pytest
from support.step_memory import measured_step
from support.synthetic import toy_spec
from support.tiny_models import save_tiny_llama, whisper_llama_spec
from test_cli import EXAMPLE, slam

from slam_core.runtime.inspect import estimate_step
from slam_core.spec import validate_spec

#: Big enough that the step's activations (~150 MiB) stand well above the noise of a process's RSS.
TOY = toy_spec(
    encoder={"shape": {"num_mel_bins": 80, "hidden_size": 128, "num_layers": 2, "num_heads": 4}},
    llm={"shape": {"hidden_size": 256, "num_layers": 4, "num_heads": 4, "intermediate_size": 1024, "vocab_size": 320}},
    projector={"k": 2, "hidden_dim": 256},
)


@pytest.fixture(scope="module")
def whisper_llama(tmp_path_factory) -> dict:
    """A whisper-shaped encoder (30 s windows, 4 layers) -> linear projector -> a 4-layer Llama + LoRA."""
    llm = save_tiny_llama(
        tmp_path_factory.mktemp("llama"),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=1024,
    )
    spec = whisper_llama_spec(llm, window_positions=1500)
    spec["encoder"]["shape"].update(hidden_size=256, num_layers=4, num_heads=4, intermediate_size=1024)
    spec["projector"]["hidden_dim"] = 256
    return spec


def _estimate_against_measurement(spec: dict, shape: tuple[int, float, int], checkpointed: bool) -> float:
    estimate = estimate_step(validate_spec(spec), *shape)
    step = estimate.checkpointed if checkpointed else estimate.plain
    if checkpointed:
        spec = copy.deepcopy(spec)
        spec["llm"]["gradient_checkpointing"] = True
    measured = measured_step(spec, *shape)
    assert step.before == measured["weights"]  # the weights are counted exactly
    assert measured["peak"] > measured["built_peak"]  # the step, not the build, set the peak RSS
    return (step.peak - step.before) / (measured["peak"] - measured["baseline"])


def test_toy_composition_step_memory_is_within_25_percent_of_the_measured_rss():
    assert 0.75 <= _estimate_against_measurement(TOY, (8, 10.0, 64), checkpointed=False) <= 1.25


@pytest.mark.parametrize("checkpointed", [False, True])
def test_whisper_llama_step_memory_is_within_25_percent_of_the_measured_rss(whisper_llama, checkpointed):
    assert 0.75 <= _estimate_against_measurement(whisper_llama, (4, 4.0, 64), checkpointed) <= 1.25


def test_checkpointing_keeps_less_of_the_llm_for_backward(whisper_llama):
    estimate = estimate_step(validate_spec(whisper_llama), 4, 4.0, 64)
    assert estimate.checkpointing == ("llm",)
    assert estimate.checkpointed.saved["llm"] < estimate.plain.saved["llm"] / 4
    assert estimate.checkpointed.saved["encoder"] == estimate.plain.saved["encoder"]
    assert estimate.checkpointed.peak < estimate.plain.peak


def test_activations_grow_with_the_batch():
    spec = validate_spec(TOY)
    one, two = estimate_step(spec, 1, 2.0, 8).plain, estimate_step(spec, 2, 2.0, 8).plain
    assert one.before == two.before
    assert two.saved["llm"] == pytest.approx(2 * one.saved["llm"], rel=0.05)


def test_cli_prints_the_step_table_below_the_counts():
    plain = slam("inspect", str(EXAMPLE)).stdout
    stepped = slam("inspect", str(EXAMPLE), "--batch", "1", "--seconds", "1", "--text-tokens", "4").stdout
    assert stepped.startswith(plain.rstrip("\n"))
    extra = stepped[len(plain.rstrip("\n")) :].strip().splitlines()
    assert extra[0] == "one training step at batch 1 x 1 s, 4 target tokens (run on fake tensors; MiB):"
    assert [line.split()[0] for line in extra[2:6]] == ["encoder", "projector", "llm", "other"]
    assert extra[6].startswith("estimated training peak (weights, gradients, optimizer state, activations): ")
    assert "one training step" not in plain


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch", "0", "--seconds", "1", "--text-tokens", "4"], "slam inspect: --batch must be positive, got 0"),
        (["--batch", "1", "--seconds", "-2", "--text-tokens", "4"], "slam inspect: --seconds must be positive, got -2"),
        (
            ["--batch", "1", "--seconds", "1", "--text-tokens", "0"],
            "slam inspect: --text-tokens must be positive, got 0",
        ),
        (["--batch", "2"], "slam inspect: --batch needs --seconds and --text-tokens too (the step's shape)"),
    ],
)
def test_bad_step_flags_are_one_line_errors(flags, message):
    result = slam("inspect", str(EXAMPLE), *flags, check=2)
    assert result.stderr.strip().splitlines() == [f"slam: error: {message}"]
