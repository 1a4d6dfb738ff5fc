"""The issue's three bugs, planted in a copy of contrib/template, are each caught by the kit naming the rule.

Each case copies the template's package into a fake site (installed as ``slam-plugin-example``
with its ``example`` entry point), changes one line as a plugin author might, and runs the
template's own tests in a pytest subprocess (``kit_runs.py``). The unchanged copy passes them all.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fakedist import FakeSite
from kit_runs import run_tests

from slam_core.testing.rules import RULES

TEMPLATE = Path(__file__).resolve().parents[1] / "contrib" / "template"
RULE_IN_MESSAGE = re.compile(r"rule ([a-z0-9-]+): ")

#: The exact conv-stack arithmetic of the template's encoder, and the bug: one frame per 320 samples.
CONV_LENGTHS = """        for kernel, stride in zip(KERNELS, STRIDES, strict=True):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return lengths.clamp(min=0)
"""
PER_320 = '        return torch.div(lengths, 320, rounding_mode="floor")  # n // 320\n'
HOOK_IMPORTS = "from slam_core.hookspecs import hookimpl\n"


def run_template(root: Path, plant: tuple[str, str, str] | None, *tests: str):
    """The verdicts of the template's ``tests`` on a copy with ``plant`` = ``(file, old, new)`` applied."""
    site = FakeSite(root / "site")
    package = shutil.copytree(TEMPLATE / "slam_plugin_example", site.root / "slam_plugin_example")
    site.add_dist("slam-plugin-example", "0.1.0", entry_points={"example": "slam_plugin_example.plugin"})
    if plant is not None:
        name, old, new = plant
        source = (package / name).read_text()
        assert source.count(old) == 1, f"the template's {name} no longer holds the line to plant the bug in"
        (package / name).write_text(source.replace(old, new))
    folder = shutil.copytree(TEMPLATE / "tests", root / "tests")
    return run_tests(folder, site.root, args=("--import-mode=importlib", *tests))


def failures(verdicts) -> dict[str, str]:
    """``{Class.test: message}`` of the failed tests; the message from the kit's ``rule <id>: ...`` on."""
    return {
        f"{owner}.{name}": verdict.message.partition("ConformanceFailure: ")[2] or verdict.message
        for owner, tests in verdicts.items()
        for name, verdict in tests.items()
        if verdict.outcome == "failed"
    }


def assert_all_name_a_rule(failed: dict[str, str]) -> None:
    for test, text in failed.items():
        named = RULE_IN_MESSAGE.search(text)
        assert named and named.group(1) in RULES, f"{test}: {text[:500]}"
        assert "the component raised" not in text, f"{test}: {text[:500]}"


def test_the_unchanged_template_passes_its_tests(tmp_path):
    verdicts = run_template(tmp_path, None)
    assert set(verdicts) >= {"TestExampleProjectorConformance", "TestExampleEncoderConformance"}
    assert failures(verdicts) == {}
    encoder = verdicts["TestExampleEncoderConformance"]
    assert encoder["test_frames_match_output_lengths"].outcome == "passed"
    assert encoder["test_entry_point_imports_no_torch"].outcome == "passed"


def test_output_lengths_n_over_320_is_caught_by_the_length_sweep(tmp_path):
    verdicts = run_template(tmp_path, ("encoder.py", CONV_LENGTHS, PER_320), "test_conformance.py")
    failed = failures(verdicts)
    assert_all_name_a_rule(failed)
    text = failed["TestExampleEncoderConformance.test_frames_match_output_lengths"]
    assert text.startswith("rule frames-match-output-lengths: ")
    # 1601 samples: the conv stack gives 4 frames, 1601 // 320 = 5
    assert (
        "raw input of 1601 (1601 input frames) gives 4 frames (returned lengths [5]), but output_lengths() says 5"
        in text
    )
    assert not any(test.startswith("TestExampleProjector") for test in failed)


def test_import_torch_in_the_entry_point_module_is_named_with_the_statement(tmp_path):
    plant = ("plugin.py", HOOK_IMPORTS, "import torch\n\n" + HOOK_IMPORTS)
    verdicts = run_template(tmp_path, plant, "test_conformance.py")
    failed = failures(verdicts)
    assert_all_name_a_rule(failed)
    assert set(failed) == {
        "TestExampleProjectorConformance.test_entry_point_imports_no_torch",
        "TestExampleEncoderConformance.test_entry_point_imports_no_torch",
    }
    text = failed["TestExampleEncoderConformance.test_entry_point_imports_no_torch"]
    assert text.startswith("rule entry-point-imports-no-torch: importing slam_plugin_example.plugin ")
    assert "(entry point 'example' of slam-plugin-example) imported torch" in text
    assert re.search(r"slam_plugin_example/plugin\.py:\d+: import torch", text), text


def test_a_plugin_module_that_fails_to_import_is_named_with_its_reason(tmp_path):
    typo = HOOK_IMPORTS + "from slam_core.records import ComponentSpecs\n"  # a misspelt name
    verdicts = run_template(tmp_path, ("plugin.py", HOOK_IMPORTS, typo), "test_conformance.py")
    failed = failures(verdicts)
    assert_all_name_a_rule(failed)
    text = failed["TestExampleEncoderConformance.test_discoverable"]
    assert text.startswith("rule discoverable: unknown encoder type 'example-encoder'")
    assert "slam-plugin-example 0.1.0 (entry point 'example'): import-failed" in text
    assert "ImportError: cannot import name 'ComponentSpecs' from 'slam_core.records'" in text
    # every test that needs the component says why it is missing, none fails on its own
    assert {RULE_IN_MESSAGE.search(message).group(1) for message in failed.values()} == {"discoverable"}
