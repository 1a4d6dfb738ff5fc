"""slam-recipes: the shipped recipes as ``slam recipes list | copy`` sees them, and what its wheel ships."""

from __future__ import annotations

import filecmp
import glob
import json
import subprocess
import sys
from pathlib import Path

import pytest
from slam_recipes import catalog

from slam_core.runtime.cli import main
from slam_core.spec import load_spec

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
#: every recipe folder of the repository and its pipeline specs
SHIPPED = {
    "aac": ["audiocaps.yaml", "clotho.yaml"],
    "contextual-asr": ["spec.yaml"],
    "demo": ["spec.yaml"],
    "example": ["spec.yaml"],
    "fusion": ["spec.yaml"],
    "mc-gtzan": ["spec.yaml"],
    "st": ["spec.yaml"],
    "vicuna-7b-lora": ["spec.yaml"],
    "vsr": ["spec.yaml"],
}


def recipe_files(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_catalog_is_the_recipes_folder_of_the_clone():
    assert catalog.ROOT == RECIPES
    assert {r.name: [s.name for s in r.specs] for r in catalog.recipes()} == SHIPPED
    # the demo's CTC settings are YAML but not a pipeline spec
    assert not catalog.is_pipeline_spec(RECIPES / "demo" / "ctc.yaml")


def test_recipes_list_prints_every_recipe_with_its_specs_and_title(capsys):
    assert main(["recipes", "list"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["NAME", "SPECS", "TITLE"]
    assert [row.split()[0] for row in rows] == sorted(SHIPPED)
    vsr = next(row for row in rows if row.startswith("vsr "))
    assert vsr.split(None, 2)[1:] == ["spec.yaml", "SLAM-VSR, lip reading on LRS3 with an LLM"]


def test_recipes_list_json_gives_absolute_spec_paths(capsys):
    assert main(["recipes", "list", "--json"]) == 0
    entries = {entry["name"]: entry for entry in json.loads(capsys.readouterr().out)}
    assert set(entries) == set(SHIPPED)
    assert entries["aac"]["specs"] == [str(RECIPES / "aac" / n) for n in SHIPPED["aac"]]
    assert entries["demo"]["path"] == str(RECIPES / "demo")


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_a_copied_recipe_is_the_recipe_and_its_specs_validate(name, tmp_path, capsys):
    destination = tmp_path / f"my-{name}"
    assert main(["recipes", "copy", name, str(destination)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"copied recipe {name} to {destination}: ")
    assert f"slam spec validate {destination / SHIPPED[name][0]}" in out
    assert recipe_files(destination) == recipe_files(RECIPES / name)
    for relative in recipe_files(destination):
        assert filecmp.cmp(destination / relative, RECIPES / name / relative, shallow=False), relative
    for spec in SHIPPED[name]:
        load_spec(destination / spec)


def test_a_copied_prepare_script_runs_outside_the_clone(tmp_path):
    catalog.copy("vsr", tmp_path / "my-vsr")
    result = subprocess.run(
        [sys.executable, str(tmp_path / "my-vsr" / "prepare_data.py"), "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: my-vsr/prepare_data.py")


def test_copy_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep")
    assert main(["recipes", "copy", "vsr", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"slam: error: cannot copy recipe 'vsr' to {tmp_path}: the folder is not empty; name a new or empty folder\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
    (tmp_path / "empty").mkdir()
    assert main(["recipes", "copy", "st", str(tmp_path / "empty")]) == 0  # an empty folder is fine


def test_copy_of_an_unknown_recipe_names_the_choices(tmp_path, capsys):
    assert main(["recipes", "copy", "vrs", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no recipe named 'vrs'; shipped recipes: aac, contextual-asr, demo" in err and "Did you mean 'vsr'?" in err
    assert not (tmp_path / "x").exists()


def shipped_files() -> set[Path]:
    """The files recipes/pyproject.toml puts in the wheel: each package's modules and package data."""
    config = tomllib.loads((RECIPES / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"slam_recipes": "."}
    shipped = set()
    for package in config["packages"]:
        folder = Path(*package.split(".")[1:])
        patterns = ["*.py", *config["package-data"].get(package, [])]
        shipped |= {folder / path for pattern in patterns for path in glob.glob(pattern, root_dir=RECIPES / folder)}
    return {path for path in shipped if (RECIPES / path).is_file()}


def test_the_wheel_ships_every_file_of_every_recipe():
    shipped = shipped_files()
    for recipe in catalog.recipes():
        missing = {recipe.name / relative for relative in recipe_files(recipe.path)} - shipped
        assert not missing, f"add {sorted(map(str, missing))} to the package data in recipes/pyproject.toml"


def test_every_folder_with_an_importable_name_is_a_listed_package():
    """Else setuptools warns that it would ignore the folder ("Package would be ignored")."""
    config = tomllib.loads((RECIPES / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = {
        path.relative_to(RECIPES)
        for path in RECIPES.rglob("*")
        if path.is_dir()
        and all(part.isidentifier() and part != "__pycache__" for part in path.relative_to(RECIPES).parts)
        and any(child.is_file() for child in path.iterdir())
    }
    listed = {Path(*package.split(".")[1:]) for package in config["packages"]} - {Path()}
    assert listed == folders
