"""Prompt templates shared by the task heads: validation, per-sample sampling in training, the first in evaluation."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from slam_core import plugins
from slam_core.model import build_component
from slam_core.runtime.tasks import prompts
from slam_core.runtime.tasks.configs import (
    AACTaskConfig,
    ASRTaskConfig,
    ContextualASRTaskConfig,
    MCTaskConfig,
    STTaskConfig,
    VSRTaskConfig,
)

PROMPTS = ["Transcribe speech to text.", "Write down what is said.", "What does the speaker say?"]
TASKS = {
    "asr": {},
    "contextual-asr": {},
    "aac": {},
    "mc": {"labels": ["blues", "jazz"]},
    "vsr": {},
    "st": {"target_lang": "German"},
}


def samples(count: int) -> list[dict]:
    return [{"key": f"u{i}", "target": f"words {i}"} for i in range(count)]


# ----------------------------------------------------------------------------- registration


def test_every_task_head_is_registered_with_a_description_and_builds():
    registry = plugins.registry()
    for name, settings_ in TASKS.items():
        registered = registry.get("task", name)
        assert registered.spec.description
        assert registered.spec.factory.startswith("slam_core.runtime.tasks.")
        task = build_component("task", registered.spec.config.model_validate({"type": name, **settings_}))
        assert task.name == name and task.metrics


def test_task_configs_import_no_torch_or_rapidfuzz():
    code = (
        "import sys, slam_core.builtin, slam_core.runtime.tasks.configs; "
        "print(sorted({'torch', 'rapidfuzz'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_asr_config_stays_backwards_compatible():
    config = ASRTaskConfig.model_validate({"type": "asr", "prompt": "Say it.", "lowercase_target": True})
    assert config.prompt == "Say it." and config.lowercase_target
    assert ASRTaskConfig().model_dump() == {
        "type": "asr",
        "prompt": "Transcribe speech to text.",
        "metrics": None,
        "lowercase_target": False,
    }


# ----------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    ("config", "data", "message"),
    [
        (ASRTaskConfig, {"prompt": "Transcribe {speech}."}, r"unknown slot \{speech\}; it takes no slots"),
        (ASRTaskConfig, {"prompt": ["ok", "Say {} now"]}, r"unknown slot \{\}"),
        (ASRTaskConfig, {"prompt": []}, "list of prompts is empty"),
        (ASRTaskConfig, {"prompt": "unclosed {brace"}, "malformed"),
        (
            MCTaskConfig,
            {"labels": ["a"], "prompt": "Pick {label}."},
            r"unknown slot \{label\}; slots it can use: \{labels\}",
        ),
        (ContextualASRTaskConfig, {"prompt": "Transcribe."}, r"lacks the slot \{hotwords\}"),
        (ContextualASRTaskConfig, {"plain_prompt": "Use {hotwords}."}, r"plain_prompt[\s\S]*unknown slot \{hotwords\}"),
        (
            STTaskConfig,
            {"target_lang": "de", "prompt": "To {lang}."},
            r"\{source_lang\}, \{source_text\}, \{target_lang\}",
        ),
        (ASRTaskConfig, {"metrics": ["wer", "werr"]}, "unknown metric.*'werr'.*known metrics: wer, cer"),
        (ASRTaskConfig, {"metrics": []}, "metrics is empty"),
        (AACTaskConfig, {"extra": 1}, "extra"),
    ],
)
def test_config_errors_name_the_problem_and_the_fix(config, data, message):
    with pytest.raises(ValidationError, match=message):
        config.model_validate(data)


def test_literal_braces_are_allowed_and_rendered():
    config = ASRTaskConfig(prompt="Transcribe into {{JSON}}.")
    task = build_component("task", config)
    assert task.instruction({}) == "Transcribe into {JSON}."
    assert build_component("task", ASRTaskConfig(prompt="")).instruction({}) == ""  # no instruction at all


def test_default_prompts_are_valid_and_fill_their_slots():
    for config in (ASRTaskConfig(), VSRTaskConfig(), AACTaskConfig(), ContextualASRTaskConfig()):
        for template in prompts.templates(config.prompt):
            prompts.check_template(template, frozenset(prompts.slots(template)))
    assert "lip" in VSRTaskConfig().prompt and VSRTaskConfig().prompt != ASRTaskConfig().prompt


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["labels", "x", "", "0"]), max_size=3), st.text(alphabet="ab {}", max_size=8))
def test_check_template_accepts_exactly_the_allowed_slots(names, filler):
    template = "Answer" + "".join(" {" + name + "}" for name in names) + filler.replace("{", "{{").replace("}", "}}")
    allowed = frozenset({"labels"})
    if all(name == "labels" for name in names):
        assert prompts.check_template(template, allowed) == template
        assert prompts.render(template, {"labels": "L"}).count("L") == len(names)
    else:
        with pytest.raises(ValueError, match="unknown slot"):
            prompts.check_template(template, allowed)


# ----------------------------------------------------------------------------- choice per sample


def test_training_samples_every_prompt_and_evaluation_uses_the_first():
    task = build_component("task", ASRTaskConfig(prompt=PROMPTS))
    random.seed(1)
    trained = task.prepare(samples(300), training=True)
    seen = [task.instruction(s) for s in trained]
    assert set(seen) == set(PROMPTS)
    for prompt in PROMPTS:  # about uniform: each of 3 templates near 100 of 300
        assert 60 < seen.count(prompt) < 140
    evaluated = task.prepare(samples(20), training=False)
    assert {task.instruction(s) for s in evaluated} == {PROMPTS[0]}
    assert task.instruction({"key": "never-prepared"}) == PROMPTS[0]


def test_prompt_sampling_is_deterministic_under_random_seed_and_leaves_inputs_alone():
    task = build_component("task", ASRTaskConfig(prompt=PROMPTS))
    batch = samples(12)
    original = [dict(s) for s in batch]
    random.seed(7)
    first = [task.instruction(s) for s in task.prepare(batch, training=True)]
    random.seed(7)
    second = [task.instruction(s) for s in task.prepare(batch, training=True)]
    assert first == second
    assert batch == original  # prepare returns new dicts


def test_a_single_prompt_draws_no_random_numbers():
    task = build_component("task", ASRTaskConfig())
    random.seed(3)
    state = random.getstate()
    task.prepare(samples(5), training=True)
    assert random.getstate() == state


def test_metrics_config_overrides_the_default():
    assert build_component("task", ASRTaskConfig()).metrics == ("wer",)
    assert build_component("task", ASRTaskConfig(metrics=["cer", "wer"])).metrics == ("cer", "wer")
