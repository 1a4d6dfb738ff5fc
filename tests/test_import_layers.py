"""The layer rule (docs/architecture.md): the core proper imports neither the runtime nor a plugin.

`.ci/run` runs `lint-imports` on the contracts in pyproject.toml; these tests check that the
contracts cover every core module and that a violating import really fails the check.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def core_contract() -> dict:
    (contract,) = [c for c in contracts() if "slam_core.model" in c["source_modules"]]
    return contract


def test_every_core_module_is_under_the_core_contract():
    listed = set(core_contract()["source_modules"])
    on_disk = {
        f"slam_core.{path.stem if path.is_file() else path.name}"
        for path in (ROOT / "slam_core").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path.is_dir() and (path / "__init__.py").exists())
    } - {"slam_core.runtime"}
    assert on_disk == listed, f"add {sorted(on_disk - listed)} / drop {sorted(listed - on_disk)} in pyproject.toml"


def test_every_plugin_package_is_forbidden_to_the_core():
    plugins = {p.parent.name for p in (ROOT / "plugins").glob("*/slam_plugin_*/__init__.py")}
    assert plugins and plugins <= set(core_contract()["forbidden_modules"])


def test_the_core_library_names_no_plugin_package():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "slam_core").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "slam_plugin_" in line
    ]
    assert offenders == []


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed in this environment")
def test_a_core_module_importing_the_runtime_fails_the_check(tmp_path):
    # a copy of the package with one violating import added: lint-imports must fail and name it
    shutil.copytree(ROOT / "slam_core", tmp_path / "slam_core", ignore=shutil.ignore_patterns("__pycache__"))
    config = tmp_path / "contracts.toml"
    config.write_text(
        "[tool.importlinter]\nroot_packages = ['slam_core']\n\n"
        "[[tool.importlinter.contracts]]\nname = 'core'\ntype = 'forbidden'\n"
        f"source_modules = {core_contract()['source_modules']!r}\nforbidden_modules = ['slam_core.runtime']\n"
    )

    def check() -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(LINT_IMPORTS), str(config), "--no-cache"],
            cwd=tmp_path,
            env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
        )

    clean = check()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    spec = tmp_path / "slam_core" / "spec.py"
    spec.write_text(spec.read_text() + "\nfrom slam_core.runtime.metrics import score  # noqa\n")
    broken = check()
    assert broken.returncode == 1
    assert "slam_core.spec is not allowed to import slam_core.runtime" in broken.stdout
