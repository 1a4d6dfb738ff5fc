"""The conformance kit catches what it promises: for every rule, a planted bug fails that rule by name.

``kit_planted/`` holds correct components and one broken component per rule of
:data:`slam_core.testing.rules.RULES` (see its README). They run once, in a pytest subprocess, next
to three fake installed distributions: a torch-free plugin, one that imports torch at the top, and
one whose module fails to import.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from fakedist import FakeSite
from kit_runs import run_tests

from slam_core.testing.rules import RULES, method_name

PLANTED = Path(__file__).resolve().parent / "kit_planted"
RULE_IN_MESSAGE = re.compile(r"rule ([a-z0-9-]+): ")


def case_class(rule_id: str) -> str:
    """The planted class of ``rule_id``: ``config-round-trip`` -> ``TestConfigRoundTrip``."""
    return "Test" + "".join(part.capitalize() for part in rule_id.split("-"))


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    root = tmp_path_factory.mktemp("kit")
    site = FakeSite(root / "site")
    for module in ("planted_components", "planted_plugins", "planted_torchy"):
        shutil.copy(PLANTED / f"{module}.py", site.root)
    site.add_dist("fake-planted-good", entry_points={"good": "planted_plugins"})
    site.add_dist("fake-planted-torchy", entry_points={"torchy": "planted_torchy"})
    site.add_plugin("fake-planted-broken", "import no_such_dependency_xyz\n", entry_point="broken")
    cases = root / "cases"
    cases.mkdir()
    shutil.copy(PLANTED / "planted_cases.py", cases / "test_planted.py")
    return run_tests(cases, site.root)


def test_every_rule_has_exactly_one_planted_bug():
    source = (PLANTED / "planted_cases.py").read_text()
    planted = set(re.findall(r"^class (Test(?!Good)\w+)\(", source, flags=re.MULTILINE))
    assert planted == {case_class(rule) for rule in RULES}


def rule_verdicts(verdicts, rule_id: str) -> list:
    """The verdicts of the planted class's test of ``rule_id`` (one per parametrisation)."""
    tests = verdicts[case_class(rule_id)]
    found = [v for name, v in tests.items() if name.partition("[")[0] == method_name(rule_id)]
    assert found, f"{case_class(rule_id)} ran no {method_name(rule_id)}: {sorted(tests)}"
    return found


@pytest.mark.parametrize("rule_id", list(RULES))
def test_the_planted_bug_is_caught_by_its_rule(verdicts, rule_id):
    for verdict in rule_verdicts(verdicts, rule_id):
        if rule_id == "device-move" and not torch.cuda.is_available():
            assert verdict.outcome == "skipped"
            continue
        assert verdict.outcome == "failed", f"{case_class(rule_id)} passed {method_name(rule_id)}"
        assert f"rule {rule_id}: " in verdict.message
        # the rule's own finding, not an exception of the component that the kit merely relabelled
        assert "the component raised" not in verdict.message, verdict.message[:500]


def test_every_failure_names_a_rule_never_an_incidental_exception(verdicts):
    for owner, tests in verdicts.items():
        for name, verdict in tests.items():
            if verdict.outcome == "failed":
                named = RULE_IN_MESSAGE.search(verdict.message)
                assert named and named.group(1) in RULES, f"{owner}.{name}: {verdict.message[:500]}"


def test_correct_components_pass_every_rule(verdicts):
    good = {owner: tests for owner, tests in verdicts.items() if owner.startswith("TestGood")}
    assert len(good) == 7
    for owner, tests in good.items():
        failed = {name: v.message[:300] for name, v in tests.items() if v.outcome == "failed"}
        assert not failed, f"{owner}: {failed}"
    installed = good["TestGoodInstalledProjector"]
    assert installed["test_discoverable"].outcome == installed["test_entry_point_imports_no_torch"].outcome == "passed"
    assert good["TestGoodMixedEncoder"]["test_head_trains_with_frozen_backbone"].outcome == "passed"


def message(verdicts, rule_id: str) -> str:
    return rule_verdicts(verdicts, rule_id)[0].message


def test_the_issues_conv_stack_bug_is_named_with_its_numbers(verdicts):
    # output_lengths = n // 320 for a kernel-400 stride-320 conv: 1601 samples give 4 frames, not 5;
    # the padded batch's lengths agree with output_lengths() by construction, so only the sweep sees it
    assert verdicts["TestFramesMatchOutputLengths"]["test_lengths_exact"].outcome == "passed"
    text = message(verdicts, "frames-match-output-lengths")
    assert "one unpadded raw input of 1601 (1601 input frames), for which output_lengths() says 5" in text


def test_the_torch_import_is_named_with_the_statement(verdicts):
    text = message(verdicts, "entry-point-imports-no-torch")
    assert "importing planted_torchy (entry point 'torchy' of fake-planted-torchy) imported torch" in text
    assert re.search(r"planted_torchy\.py:\d+: import torch", text)


def test_a_plugin_that_failed_to_import_is_named_with_its_reason(verdicts):
    text = message(verdicts, "discoverable")
    assert "unknown projector type 'broken-proj'" in text
    assert "fake-planted-broken 1.0.0 (entry point 'broken'): import-failed" in text
    assert "ModuleNotFoundError: No module named 'no_such_dependency_xyz'" in text


@pytest.mark.parametrize(
    ("rule_id", "fragment"),
    [
        ("config-defaults-validate", "BadDefaultConfig with only its defaults does not validate"),
        ("short-input-refused-clearly", "the preprocessor raised RuntimeError on a raw input of"),
        ("preprocessor-takes-pipeline-input", "on RawAudio(4000 samples at 16000 Hz)"),
        ("generate-returns-new-tokens", "greedy decoding through forward() of the prompt alone gives"),
        ("metrics-are-declared", "metrics ['word_error_rate'] are declared by no plugin (slam_metrics)"),
        ("api-compatible", "targets API '2.0', this host implements 1.0"),
    ],
)
def test_failures_say_what_was_computed(verdicts, rule_id, fragment):
    assert fragment in message(verdicts, rule_id)
