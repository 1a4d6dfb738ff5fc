"""Every distribution of the repository has complete metadata, and one place holds each version.

The rule (CONTRIBUTING.md): ``[project] version`` in a distribution's pyproject.toml is its only
version; code that needs it asks ``importlib.metadata``. scripts/ci-wheels.sh builds them all.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import slam_core

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml")), ROOT / "recipes"]
DISTRIBUTIONS.append(ROOT / "contrib" / "template")


def project(folder: Path) -> dict:
    return tomllib.loads((folder / "pyproject.toml").read_text())


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda p: str(p.relative_to(ROOT)) or "root")
def test_metadata_is_complete(folder):
    document = project(folder)
    meta = document["project"]
    assert document["build-system"]["requires"] == ["setuptools>=77"]  # SPDX license expressions
    assert meta["license"] == "Apache-2.0" and meta["license-files"] == ["LICENSE"]
    assert (folder / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert (folder / meta["readme"]).is_file() and meta["requires-python"] == ">=3.10"
    assert meta["description"] and re.fullmatch(r"\d+\.\d+\.\d+", meta["version"]) and "dynamic" not in meta
    for requirement in map(Requirement, meta["dependencies"]):
        assert requirement.specifier, f"{meta['name']}: {requirement} has no version bound"
    for requirement in map(Requirement, [r for extra in meta.get("optional-dependencies", {}).values() for r in extra]):
        assert requirement.specifier or requirement.name == meta["name"], f"{meta['name']}: {requirement}"
    if folder != ROOT:
        assert len(meta["entry-points"]["slam.plugins"]) == 1


@pytest.mark.parametrize("folder", DISTRIBUTIONS[1:], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_distribution_pins_slam_core_to_its_minor_series(folder):
    (core,) = [r for r in map(Requirement, project(folder)["project"]["dependencies"]) if r.name == "slam-core"]
    assert str(core.specifier) in {">=0.1,<0.2", "<0.2,>=0.1"}


def test_no_package_writes_its_version_a_second_time():
    roots = [ROOT / "slam_core", *DISTRIBUTIONS[1:]]  # the root distribution's code is slam_core/ alone
    sources = [
        p for folder in roots for p in folder.rglob("*.py") if not {"tests", "build"} & set(p.relative_to(ROOT).parts)
    ]
    written = [str(p.relative_to(ROOT)) for p in sources if re.search(r"^__version__\s*=\s*['\"]", p.read_text(), re.M)]
    assert written == []
    assert slam_core.__version__ == metadata.version("slam-core") == project(ROOT)["project"]["version"]


def test_the_installed_versions_are_the_pyproject_versions():
    for folder in DISTRIBUTIONS[:-1]:  # the template is not installed
        meta = project(folder)["project"]
        assert metadata.version(meta["name"]) == meta["version"], meta["name"]
