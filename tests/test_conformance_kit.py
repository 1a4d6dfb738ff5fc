"""The conformance kit itself, run with pytester: good components pass, wrong ones fail.

All example components are written into one test module and run once in a pytest
subprocess (torch cannot be re-imported in-process); each test below reads the verdicts
of its own test class.
"""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ElementTree
from collections import defaultdict

import pytest

PRELUDE = textwrap.dedent(
    """
    from typing import Literal

    import torch
    from pydantic import BaseModel, ConfigDict
    from torch import nn

    from slam_core.components import Projector
    from slam_core.testing import ProjectorConformance


    class StackConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: Literal["stack"] = "stack"
        k: int = 2


    class GoodProjector(Projector):
        def __init__(self, config, input_dim, output_dim):
            super().__init__()
            self.k, self.input_dim, self.output_dim = config.k, input_dim, output_dim
            self.linear = nn.Linear(config.k * input_dim, output_dim)

        def output_lengths(self, lengths):
            return lengths // self.k

        def forward(self, hidden, lengths):
            out = lengths // self.k
            n = int(out.max())
            stacked = hidden[:, : n * self.k].reshape(hidden.shape[0], n, -1)
            return self.linear(stacked), out
    """
)


SCENARIOS = {
    "TestGood": """
        class TestGood(ProjectorConformance):
            factory = GoodProjector
            config_model = StackConfig
        """,
    "TestOffByOne": """
        class OffByOne(GoodProjector):
            def output_lengths(self, lengths):
                return lengths // self.k + 1

        class TestOffByOne(ProjectorConformance):
            factory = OffByOne
            config_model = StackConfig
        """,
    "TestLeaky": """
        class Leaky(GoodProjector):
            def forward(self, hidden, lengths):
                embeds, out = super().forward(hidden, lengths)
                return embeds + 0.01 * hidden.shape[1], out  # depends on the padded width

        class TestLeaky(ProjectorConformance):
            factory = Leaky
            config_model = StackConfig
        """,
    "TestUnused": """
        class Unused(GoodProjector):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.forgotten = nn.Parameter(torch.ones(3))

        class TestUnused(ProjectorConformance):
            factory = Unused
            config_model = StackConfig
        """,
    "TestNoisy": """
        class Noisy(GoodProjector):
            def forward(self, hidden, lengths):
                return super().forward(nn.functional.dropout(hidden, 0.5, training=True), lengths)

        class TestNoisy(ProjectorConformance):
            factory = Noisy
            config_model = StackConfig
        """,
    "TestLax": """
        class LaxConfig(BaseModel):
            type: Literal["stack"] = "stack"
            k: int = 2

        class TestLax(ProjectorConformance):
            factory = GoodProjector
            config_model = LaxConfig
        """,
    "TestMissing": """
        class TestMissing(ProjectorConformance):
            component_name = "no-such-projector"
        """,
    "TestInstalled": """
        class TestInstalled(ProjectorConformance):
            component_name = "linear-projector"
            config = {"k": 4, "hidden_dim": 8}
        """,
    "TestHeavy": """
        from slam_core.testing import EncoderConformance
        from slam_core.toy import ToyEncoder

        class HeavyPreprocessor(ToyEncoder):
            def preprocessor(self):
                return self._features

            def _features(self, waveform):
                return super().preprocessor()(waveform)

        class TestHeavy(EncoderConformance):
            component_name = "toy-encoder"
            factory = HeavyPreprocessor
            config = {"shape": {"num_mel_bins": 8, "hidden_size": 512, "num_layers": 2, "num_heads": 2}}
        """,
    "TestGreedy": """
        from slam_core.testing import PEFTConformance
        from slam_plugin_lora.method import LoRA

        class Greedy(LoRA):
            def apply(self, module):
                adapted = super().apply(module)
                adapted.requires_grad_(True)
                return adapted

        class TestGreedy(PEFTConformance):
            component_name = "lora"
            factory = Greedy
            config = {"r": 2, "alpha": 4, "dropout": 0.0}
        """,
    "TestMutating": """
        import secrets

        from slam_core.testing import TaskHeadConformance
        from slam_core.runtime.tasks.asr import ASRTask

        class MutatingTask(ASRTask):
            def prepare(self, samples, *, training):
                for sample in samples:
                    sample["target"] = sample["target"].upper()  # changes the caller's dicts
                return list(samples)

        class TestMutating(TaskHeadConformance):
            component_name = "asr"
            factory = MutatingTask

        class UnseededTask(ASRTask):
            def prepare(self, samples, *, training):
                return [{**s, "hint": str(secrets.randbelow(10**6))} for s in samples]

            def instruction(self, sample):
                return f"Transcribe. {sample.get('hint', '')}"

        class TestUnseeded(TaskHeadConformance):
            component_name = "asr"
            factory = UnseededTask

        class WrongChoicesTask(ASRTask):
            def choices(self, sample):
                return ["yes", "no", "yes"]

        class TestWrongChoices(TaskHeadConformance):
            component_name = "asr"
            factory = WrongChoicesTask
        """,
}

_verdicts: dict[str, dict[str, set[str]]] = {}


def verdicts(pytester: pytest.Pytester, test_class: str) -> dict[str, set[str]]:
    """``{"passed"|"skipped"|"failed": test names}`` of ``test_class`` in the one kit run."""
    if not _verdicts:
        source = PRELUDE + "".join(textwrap.dedent(body) for body in SCENARIOS.values())
        pytester.makepyfile(test_components=source)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--junitxml=kit.xml")
        assert result.ret in (0, 1), result.stdout.str()
        for case in ElementTree.parse(pytester.path / "kit.xml").iter("testcase"):
            outcome = (
                "failed"
                if case.find("failure") is not None or case.find("error") is not None
                else ("skipped" if case.find("skipped") is not None else "passed")
            )
            owner = case.get("classname", "").rsplit(".", 1)[-1]
            _verdicts.setdefault(owner, defaultdict(set))[outcome].add(case.get("name"))
    return _verdicts[test_class]


def test_a_correct_component_passes_every_contract_test(pytester):
    outcome = verdicts(pytester, "TestGood")
    assert not outcome["failed"]
    assert {
        "test_output_lengths_are_exact",
        "test_batch_equals_each_sample_alone",
        "test_gradients_flow_exactly_where_trainable",
        "test_state_dict_round_trip",
        "test_config_round_trip",
        "test_schema_export",
    } <= outcome["passed"]
    assert "test_discoverable_through_entry_point" in outcome["skipped"]


@pytest.mark.parametrize(
    ("test_class", "expected_failures"),
    [
        ("TestOffByOne", {"test_output_lengths_are_exact"}),
        ("TestLeaky", {"test_batch_equals_each_sample_alone"}),
        ("TestUnused", {"test_gradients_flow_exactly_where_trainable"}),
        ("TestLax", {"test_config_forbids_unknown_fields"}),
        (
            "TestMutating",
            {
                "test_prepare_returns_new_samples_and_leaves_the_batch_alone[True]",
                "test_prepare_returns_new_samples_and_leaves_the_batch_alone[False]",
            },
        ),
        ("TestUnseeded", {"test_prepare_draws_only_from_pythons_random"}),
        ("TestWrongChoices", {"test_choices_are_distinct_text_and_hold_the_target"}),
    ],
)
def test_a_deliberately_wrong_component_fails_exactly_its_contract(pytester, test_class, expected_failures):
    assert verdicts(pytester, test_class)["failed"] == expected_failures


@pytest.mark.parametrize(
    ("test_class", "expected_failure"),
    [
        ("TestNoisy", "test_eval_is_deterministic"),
        ("TestMissing", "test_discoverable_through_entry_point"),
        ("TestHeavy", "test_preprocessor_pickles_cheaply"),
        ("TestGreedy", "test_only_adapter_parameters_are_trainable"),
    ],
)
def test_a_deliberately_wrong_component_fails(pytester, test_class, expected_failure):
    assert expected_failure in verdicts(pytester, test_class)["failed"]


def test_the_installed_linear_projector_passes_through_its_entry_point(pytester):
    outcome = verdicts(pytester, "TestInstalled")
    assert not outcome["failed"]
    assert "test_discoverable_through_entry_point" in outcome["passed"]
