"""The ``slam`` command, run as a user runs it: in a fresh interpreter, with its exit status and output."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from fakedist import FakeSite, component_source

from slam_core import plugins
from slam_core.runtime.cli import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "recipes" / "example" / "spec.yaml"

#: (name, kind, distribution) of every component the dev environment installs
INSTALLED = [
    ("toy-encoder", "encoder", "slam-core"),
    ("linear-projector", "projector", "slam-plugin-linear-projector"),
    ("toy-llm", "llm", "slam-core"),
    ("lora", "peft", "slam-plugin-lora"),
    ("asr", "task", "slam-core"),
]
BROKEN_DIST, BROKEN_VERSION = "slam-plugin-broken", "0.4.2"


def slam(*args: str, pythonpath: Path | None = None, check: int | None = 0, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m slam_core.runtime.cli ARGS`` in a fresh interpreter from the repository root."""
    return run_python("-m", "slam_core.runtime.cli", *args, pythonpath=pythonpath, check=check, **env)


def run_python(*args: str, pythonpath: Path | None = None, check: int | None = 0, **env: str):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SLAM_") and k != "PYTHONPATH"}
    environment.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONWARNINGS="ignore", **env)
    if pythonpath is not None:
        environment["PYTHONPATH"] = str(pythonpath)
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO, env=environment, capture_output=True, text=True, timeout=120
    )
    if check is not None:
        assert result.returncode == check, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    if result.returncode in (0, 2):
        assert "Traceback" not in result.stderr, result.stderr
    return result


HEADER = ["NAME", "KIND", "DISTRIBUTION", "VERSION", "STATUS"]


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of the ``slam plugins`` table, after checking its header."""
    header, *rows = (line.split() for line in stdout.splitlines() if line.strip())
    assert header == HEADER
    assert all(len(row) == len(HEADER) for row in rows), rows
    return rows


def row(rows: list[list[str]], name: str, kind: str) -> list[str]:
    found = [r for r in rows if r[:2] == [name, kind]]
    assert len(found) == 1, f"expected one row for {kind} {name!r} in {rows}"
    return found[0]


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory) -> Path:
    """A folder for PYTHONPATH with one plugin that fails to import and one good plugin."""
    site = FakeSite(tmp_path_factory.mktemp("site-packages"))
    site.add_plugin(BROKEN_DIST, "import slam_missing_dependency_abc\n", version=BROKEN_VERSION, entry_point="broken")
    site.add_plugin("slam-plugin-extra", component_source("task", "extra-task"), version="3.0")
    return site.root


# --- slam plugins ------------------------------------------------------------------------------------------


def test_plugins_lists_every_installed_component():
    rows = table_rows(slam("plugins").stdout)
    for name, kind, distribution in INSTALLED:
        assert row(rows, name, kind) == [name, kind, distribution, metadata.version(distribution), "ok"]


def test_plugins_json():
    entries = json.loads(slam("plugins", "--json").stdout)
    assert all(set(entry) == {"name", "kind", "distribution", "version", "status"} for entry in entries)
    listed = {(e["name"], e["kind"], e["distribution"], e["version"], e["status"]) for e in entries}
    for name, kind, distribution in INSTALLED:
        assert (name, kind, distribution, metadata.version(distribution), "ok") in listed


def test_plugins_imports_no_torch():
    code = (
        "import sys; from slam_core.runtime.cli import main; assert main(['plugins']) == 0; "
        "heavy = sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules); "
        "assert not heavy, heavy"
    )
    run_python("-c", code)


def test_broken_plugin_is_listed_and_the_rest_still_work(broken_site):
    result = slam("plugins", pythonpath=broken_site)
    rows = table_rows(result.stdout)
    assert row(rows, "broken", "-") == ["broken", "-", BROKEN_DIST, BROKEN_VERSION, "import-failed"]
    assert row(rows, "extra-task", "task") == ["extra-task", "task", "slam-plugin-extra", "3.0", "ok"]
    for name, kind, distribution in INSTALLED:
        assert row(rows, name, kind)[2:] == [distribution, metadata.version(distribution), "ok"]
    assert BROKEN_DIST in result.stderr and "slam_missing_dependency_abc" in result.stderr

    entries = json.loads(slam("plugins", "--json", pythonpath=broken_site).stdout)
    (broken,) = [entry for entry in entries if entry["name"] == "broken"]
    assert "slam_missing_dependency_abc" in broken.pop("message")  # the JSON says why it was skipped
    assert broken == {
        "name": "broken",
        "kind": "-",
        "distribution": BROKEN_DIST,
        "version": BROKEN_VERSION,
        "status": "import-failed",
    }


def test_broken_plugin_is_fatal_in_strict_mode(broken_site):
    result = slam("plugins", pythonpath=broken_site, check=2, SLAM_STRICT_PLUGINS="1")
    assert f"{BROKEN_DIST} {BROKEN_VERSION}" in result.stderr
    assert "slam-plugin-extra" not in result.stderr
    assert "slam: error: SLAM_STRICT_PLUGINS is set" in result.stderr


def test_strict_mode_stops_every_command(fake_site, monkeypatch, capsys):
    # in-process: main() turns the PluginError from discovery into exit status 2, whatever the command
    fake_site.add_plugin(BROKEN_DIST, "raise ImportError('no libfoo')\n", version=BROKEN_VERSION)
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    for argv in (["plugins"], ["plugins", "--json"], ["spec", "validate", str(EXAMPLE)], ["inspect", str(EXAMPLE)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert BROKEN_DIST in err and "no libfoo" in err, argv
    monkeypatch.delenv("SLAM_STRICT_PLUGINS")
    plugins.clear_cache()
    assert main(["plugins"]) == 0
    assert BROKEN_DIST in capsys.readouterr().out


def test_strict_mode_stops_spec_schema_in_a_long_lived_process(fake_site, monkeypatch, capsys):
    # a process (a notebook, a test session) printed the schema once, then strict mode is switched on:
    # discovery is cached per environment, so the next command must see the new setting
    fake_site.add_plugin(BROKEN_DIST, "raise ImportError('no libfoo')\n", version=BROKEN_VERSION)
    assert main(["spec", "schema"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("SLAM_STRICT_PLUGINS", "1")
    assert main(["spec", "schema"]) == 2
    assert BROKEN_DIST in capsys.readouterr().err


def test_deny_hides_a_plugin(broken_site):
    rows = table_rows(slam("plugins", pythonpath=broken_site, SLAM_PLUGINS_DENY=f"lora,{BROKEN_DIST}").stdout)
    assert not [r for r in rows if r[1] == "peft"]
    assert row(rows, "extra-task", "task")[-1] == "ok"
    disabled = {(r[0], r[2]) for r in rows if r[-1] == "disabled"}
    assert disabled == {("lora", "slam-plugin-lora"), ("broken", BROKEN_DIST)}


# --- slam spec ---------------------------------------------------------------------------------------------


def test_spec_validate_example():
    result = slam("spec", "validate", str(EXAMPLE.relative_to(REPO)))
    assert "valid" in result.stdout
    for section, value in yaml.safe_load(EXAMPLE.read_text()).items():
        if isinstance(value, dict) and "type" in value:
            assert f"{section}={value['type']}" in result.stdout


def test_spec_validate_misspelled_type(tmp_path):
    bad = tmp_path / "spec.yaml"
    bad.write_text(EXAMPLE.read_text().replace("type: linear-projector", "type: linear-projecter"))
    result = slam("spec", "validate", str(bad), check=2)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert str(bad) in result.stderr
    assert "projector.type" in result.stderr and "'linear-projecter'" in result.stderr
    assert re.search(r"Installed projector types: [^.]*\blinear-projector\b", result.stderr)
    assert "Did you mean 'linear-projector'?" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, "cannot read"),
        ("encoder: [unclosed\n", "YAML syntax error"),
        ("name: x\n", "section missing"),
    ],
)
def test_spec_validate_user_errors_exit_2_without_traceback(tmp_path, text, expected):
    path = tmp_path / "spec.yaml"
    if text is not None:
        path.write_text(text)
    result = slam("spec", "validate", str(path), check=2)
    assert expected in result.stderr


def test_spec_schema(clean_discovery):
    schema = json.loads(slam("spec", "schema").stdout)
    assert set(schema["required"]) >= {"encoder", "projector", "llm", "task"}
    defs = schema["$defs"]
    types = {
        definition["properties"]["type"]["const"]
        for definition in defs.values()
        if "type" in definition.get("properties", {}) and "const" in definition["properties"]["type"]
    }
    plugins.clear_cache()
    installed = plugins.registry()  # this interpreter sees the same environment as the command
    assert types == {name for kind in installed.components for name in installed.names(kind)}
    assert types >= {name for name, _, _ in INSTALLED}
    # each component section refers to its plugin's config
    for name, kind, _ in INSTALLED:
        section = json.dumps(schema["properties"][kind])
        referenced = [key for key in defs if f"#/$defs/{key}" in section]
        assert any(defs[key]["properties"]["type"]["const"] == name for key in referenced), kind


@pytest.mark.parametrize("argv", [[], ["spec"], ["frobnicate"], ["inspect"], ["inspect", "x.yaml", "--dtype", "fp8"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert capsys.readouterr().err.startswith("usage: slam")


def test_console_script():
    script = Path(sys.executable).with_name("slam")
    assert script.exists(), f"the slam console script is not installed next to {sys.executable}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAM_")}
    result = subprocess.run(
        [str(script), "spec", "validate", str(EXAMPLE)],
        env={**env, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


# --- slam inspect ------------------------------------------------------------------------------------------


def parse_counts(stdout: str) -> dict[str, tuple[int, int]]:
    """``{component: (parameters, trainable)}`` from the inspect table, ``total`` included."""
    counts = {}
    for line in stdout.splitlines():
        match = re.match(r"^(encoder|projector|llm|peft|total)\s.*?([\d,]+)\s+([\d,]+)(\s+\(.*\))?$", line)
        if match:
            counts[match.group(1)] = (int(match.group(2).replace(",", "")), int(match.group(3).replace(",", "")))
    return counts


@pytest.fixture(scope="module")
def inspected() -> tuple[dict, dict[str, tuple[int, int]], str]:
    result = slam("inspect", str(EXAMPLE))
    return yaml.safe_load(EXAMPLE.read_text()), parse_counts(result.stdout), result.stdout


def test_inspect_lora_count(inspected):
    spec, counts, _ = inspected
    llm, lora = spec["llm"]["shape"], spec["peft"]
    head_dim = llm["hidden_size"] // llm["num_heads"]
    kv_dim = head_dim * (llm.get("num_kv_heads") or llm["num_heads"])
    shapes = {
        "q_proj": (llm["hidden_size"], llm["hidden_size"]),
        "k_proj": (llm["hidden_size"], kv_dim),
        "v_proj": (llm["hidden_size"], kv_dim),
        "o_proj": (llm["hidden_size"], llm["hidden_size"]),
    }
    expected = llm["num_layers"] * sum(
        lora["r"] * (d_in + d_out) for d_in, d_out in (shapes[m] for m in lora["target_modules"])
    )
    assert expected == 32 * 4 * 32 * (4096 + 4096) == 33_554_432  # r=32 on q/k/v/o of a Vicuna-7B shape
    assert counts["peft"] == (expected, expected)
    assert counts["llm"][1] == expected  # the LLM is frozen: only its adapters train


def test_inspect_projector_count(inspected):
    spec, counts, _ = inspected
    k, hidden, encoder_dim, llm_dim = (
        spec["projector"]["k"],
        spec["projector"]["hidden_dim"],
        spec["encoder"]["shape"]["hidden_size"],
        spec["llm"]["shape"]["hidden_size"],
    )
    expected = (k * encoder_dim) * hidden + hidden + hidden * llm_dim + llm_dim
    assert expected == (5 * 1280) * 2048 + 2048 + 2048 * 4096 + 4096 == 21_501_952
    assert counts["projector"] == (expected, expected)
    assert f"{expected:,}" in inspected[2]


def test_inspect_llm_count(inspected):
    spec, counts, _ = inspected
    llm = spec["llm"]["shape"]
    h, inter, vocab, layers = llm["hidden_size"], llm["intermediate_size"], llm["vocab_size"], llm["num_layers"]
    per_layer = 4 * h * h + 3 * h * inter + 2 * h  # attention, SwiGLU MLP, two RMSNorms (no biases)
    base = layers * per_layer + 2 * vocab * h + h  # untied embeddings and LM head, final norm
    assert counts["llm"][0] == base + counts["peft"][0]
    assert counts["encoder"][1] == 0  # frozen by default


def test_inspect_total_counts_every_parameter_once(inspected):
    # the peft row is "(included in llm)": the total must not count the adapters a second time
    _, counts, _ = inspected
    assert counts["total"] == (
        counts["encoder"][0] + counts["projector"][0] + counts["llm"][0],
        counts["encoder"][1] + counts["projector"][1] + counts["llm"][1],
    )


def memory_gib(stdout: str) -> float:
    return float(re.search(r"([\d,.]+) GiB", stdout).group(1).replace(",", ""))


def test_inspect_memory_estimate(inspected):
    # frozen weights in the spec's dtype (bf16: 2 bytes); trainable parameters: fp32 weight, fp32 gradient
    # and two fp32 AdamW moments (16 bytes)
    spec, counts, stdout = inspected
    assert spec["train"]["dtype"] == "bf16"
    total = sum(counts[c][0] for c in ("encoder", "projector", "llm"))
    trainable = sum(counts[c][1] for c in ("encoder", "projector", "llm"))
    expected = ((total - trainable) * 2 + trainable * 16) / 2**30
    assert memory_gib(stdout) == pytest.approx(expected, abs=0.006)


def test_inspect_dtype_override_changes_only_the_memory_estimate(inspected):
    _, counts, bf16 = inspected
    fp32 = slam("inspect", str(EXAMPLE), "--dtype", "fp32").stdout
    assert parse_counts(fp32) == counts
    frozen = sum(counts[c][0] - counts[c][1] for c in ("encoder", "projector", "llm"))
    # fp32 frozen weights take 2 more bytes each than bf16 ones
    assert memory_gib(fp32) - memory_gib(bf16) == pytest.approx(frozen * 2 / 2**30, abs=0.011)
    assert "(fp32 frozen weights" in fp32 and "(bf16 frozen weights" in bf16


def test_inspect_bad_spec_exits_2(tmp_path):
    bad = tmp_path / "spec.yaml"
    bad.write_text(EXAMPLE.read_text().replace("type: lora", "type: lorra"))
    result = slam("inspect", str(bad), check=2)
    assert "Did you mean 'lora'?" in result.stderr
