"""CONTRIBUTING.md cannot drift from the kit: its rule list is the kit's, its encoder example passes the kit.

The transformers-encoder example and its test class are read from CONTRIBUTING.md, installed
in a fake site as ``slam-plugin-unispeech-sat`` and run through the kit in a pytest subprocess.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from fakedist import FakeSite
from kit_runs import run_tests

from slam_core.testing.rules import RULES

CONTRIBUTING = Path(__file__).resolve().parents[1] / "CONTRIBUTING.md"
MARKER = "<!-- transformers-encoder-example -->"


def section(text: str, heading: str) -> str:
    """The text under ``heading`` up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = text.index(heading + "\n") + len(heading) + 1
    following = re.compile(rf"^#{{1,{len(level)}}} ", re.MULTILINE).search(text, start)
    return text[start : following.start() if following else len(text)]


def test_the_listed_checks_are_the_kits_rules_in_order():
    listed = section(CONTRIBUTING.read_text(), "### What it checks")
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (.+?) \| (.+?) \|$", listed, flags=re.MULTILINE)
    assert [rule_id for rule_id, _, _ in rows] == list(RULES)
    for rule_id, applies_to, text in rows:
        assert (applies_to, text) == (RULES[rule_id].applies_to, RULES[rule_id].text)


def example() -> tuple[str, str]:
    """The plugin module and the kit test class of the transformers-encoder example."""
    text = CONTRIBUTING.read_text()
    after = text[text.index(MARKER) + len(MARKER) :]
    module = re.match(r"\s*```python\n(.*?)\n```", after, flags=re.DOTALL).group(1) + "\n"
    test = re.search(r"\n( *)```python\n(\1class TestUniSpeechSat\(.*?)\n\1```", after, flags=re.DOTALL)
    return module, textwrap.dedent(test.group(2)) + "\n"


def test_the_transformers_encoder_example_is_30_lines_and_passes_the_kit(tmp_path):
    module, test = example()
    assert len(module.splitlines()) <= 30, module
    site = FakeSite(tmp_path / "site")
    site.add_dist(
        "slam-plugin-unispeech-sat",
        "0.1.0",
        entry_points={"unispeech-sat": "slam_plugin_unispeech_sat.plugin"},
        modules={"slam_plugin_unispeech_sat.plugin": module},
    )
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "test_unispeech_sat.py").write_text("from slam_core.testing import EncoderConformance\n\n\n" + test)
    verdicts = run_tests(cases, site.root)
    outcomes = {name: verdict.outcome for name, verdict in verdicts["TestUniSpeechSat"].items()}
    failed = {name: verdicts["TestUniSpeechSat"][name].message[:600] for name, o in outcomes.items() if o == "failed"}
    assert failed == {}
    for rule_id in ("discoverable", "entry-point-imports-no-torch", "frames-match-output-lengths"):
        assert outcomes["test_" + rule_id.replace("-", "_")] == "passed"
    assert sum(outcome == "passed" for outcome in outcomes.values()) >= 20
