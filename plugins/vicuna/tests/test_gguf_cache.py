"""The cached conversion of a GGUF file: built once, found again, a damaged entry rebuilt (a tiny GGUF)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from slam_plugin_vicuna import gguf_cache, loading
from slam_plugin_vicuna.gguf_cache import CACHE_ENV, MANIFEST, cache_root, converted, file_sha256
from slam_plugin_vicuna.llm import build_vicuna
from slam_plugin_vicuna.plugin import VicunaConfig

TEXTS = ["ab abc", "The quick brown fox", "<|endoftext|>x"]


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test's own."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def gguf(tmp_path, tiny_gguf) -> Path:
    """A copy of the tiny GGUF this test may touch."""
    return Path(shutil.copy(tiny_gguf, tmp_path / "model.gguf"))


@pytest.fixture
def conversions(monkeypatch) -> list[Path]:
    """The folders the GGUF was converted into, during the test."""
    done: list[Path] = []
    convert = loading._convert_gguf

    def counting(source, folder):
        done.append(folder)
        convert(source, folder)

    monkeypatch.setattr(loading, "_convert_gguf", counting)
    return done


@pytest.fixture(scope="module")
def direct(tiny_gguf):
    """transformers' own loading of the GGUF: the model and the tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name, dtype=torch.float32)
    return model.eval(), AutoTokenizer.from_pretrained(tiny_gguf.parent, gguf_file=tiny_gguf.name)


def build(gguf: Path):
    return build_vicuna(VicunaConfig(gguf=str(gguf), dtype="fp32", template="plain")).eval()


def entry_of(cache: Path, gguf: Path) -> Path:
    return cache / "gguf" / file_sha256(gguf)


def assert_same_as_direct(llm, direct) -> None:
    model, tokenizer = direct
    for text in TEXTS:
        assert llm.tokenize(text) == tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert llm.tokenize(text, special=True) == ids
        with torch.no_grad():
            ours = llm.model(input_ids=torch.tensor([ids])).logits
            theirs = model(input_ids=torch.tensor([ids])).logits
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    assert llm.tokenizer.eos_token == tokenizer.eos_token == "<|endoftext|>"


def test_first_start_converts_and_later_starts_load_the_entry(cache, gguf, conversions, direct):
    first = build(gguf)
    entry = entry_of(cache, gguf)
    assert len(conversions) == 1 and conversions[0].parent == entry.parent and not conversions[0].exists()
    manifest = json.loads((entry / MANIFEST).read_text())
    assert manifest["source_sha256"] == entry.name and "model.safetensors" in manifest["files"]
    assert first.source == first.tokenizer_source == str(gguf)  # messages name the spec's file
    assert_same_as_direct(first, direct)
    second = build(gguf)
    assert len(conversions) == 1  # found, not converted again
    assert second.source == str(gguf)
    assert_same_as_direct(second, direct)
    assert sorted(p.name for p in (cache / "gguf").iterdir()) == sorted([entry.name, "stamps"])  # no leftovers


def test_a_later_start_hashes_nothing_until_the_file_changes(cache, gguf, conversions, monkeypatch):
    build(gguf)
    hashed = []
    monkeypatch.setattr(gguf_cache, "file_sha256", lambda path: hashed.append(path) or file_sha256(path))
    build(gguf)
    assert hashed == []  # the stamp (path, size, mtime) remembered the digest
    stat = gguf.stat()
    os.utime(gguf, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hashed again, same content
    build(gguf)
    assert hashed == [gguf] and len(conversions) == 1


def test_another_file_gets_another_entry(cache, gguf, tmp_path, conversions):
    from vicuna_testkit import save_gguf

    other = save_gguf(tmp_path / "other.gguf", seed=1)
    build(gguf), build(other)
    assert len(conversions) == 2 and entry_of(cache, gguf) != entry_of(cache, other)


def _truncate(entry: Path) -> None:
    weights = entry / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def _truncate_and_fix_the_size(entry: Path) -> None:
    """A truncated file whose manifest was rewritten to match: the safetensors header still tells."""
    _truncate(entry)
    manifest = json.loads((entry / MANIFEST).read_text())
    manifest["files"]["model.safetensors"] = (entry / "model.safetensors").stat().st_size
    (entry / MANIFEST).write_text(json.dumps(manifest))


DAMAGE = {
    "truncated safetensors": (_truncate, "model.safetensors has"),
    "truncated, size in the manifest matching": (
        _truncate_and_fix_the_size,
        "model.safetensors is not a readable safetensors file",
    ),
    "missing weights": (lambda e: (e / "model.safetensors").unlink(), "model.safetensors is missing"),
    "missing tokenizer": (lambda e: (e / "tokenizer.json").unlink(), "tokenizer.json is missing"),
    "no manifest (an interrupted build)": (lambda e: (e / MANIFEST).unlink(), "it has no manifest"),
    "manifest not JSON": (lambda e: (e / MANIFEST).write_text("{"), "its manifest does not read"),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_a_damaged_entry_is_detected_and_rebuilt(cache, gguf, conversions, direct, damage, caplog):
    spoil, reason = damage
    build(gguf)
    spoil(entry_of(cache, gguf))
    with caplog.at_level(logging.WARNING, logger=gguf_cache.log.name):
        rebuilt = build(gguf)
    assert len(conversions) == 2
    assert f"rebuilding the cached conversion of {gguf}: {reason}" in caplog.text
    assert gguf_cache.entry_problem(entry_of(cache, gguf), entry_of(cache, gguf).name) is None
    assert_same_as_direct(rebuilt, direct)


def test_a_failed_conversion_leaves_nothing(cache, gguf, monkeypatch):
    def failing(source, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed")

    monkeypatch.setattr(loading, "_convert_gguf", failing)
    with pytest.raises(RuntimeError, match="killed"):
        build(gguf)
    assert [p.name for p in (cache / "gguf").iterdir()] == ["stamps"]


def test_an_unwritable_cache_folder_loads_the_gguf_itself(tmp_path, gguf, monkeypatch, direct, caplog):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "a-file" / "cache"))
    with caplog.at_level(logging.WARNING, logger=loading.log.name):
        llm = build(gguf)
    assert f"cannot cache the conversion of {gguf}" in caplog.text
    assert_same_as_direct(llm, direct)


def test_the_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "slam"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "slam"
    monkeypatch.setenv(CACHE_ENV, "~/mine")
    assert cache_root() == tmp_path / "home" / "mine"


def test_converted_finds_an_entry_another_process_finished(tmp_path, gguf):
    """Two builds at once: the second one's rename fails on the first one's entry, which it then uses."""
    from safetensors.torch import save_file

    def convert(folder: Path) -> None:
        save_file({"w": torch.ones(3)}, folder / "model.safetensors")
        if not racing:
            racing.append(True)
            converted(gguf, convert, root=tmp_path)  # the other process, finishing first

    racing: list[bool] = []
    entry = converted(gguf, convert, root=tmp_path)
    assert gguf_cache.entry_problem(entry, file_sha256(gguf)) is None
    assert sorted(p.name for p in entry.parent.iterdir()) == sorted([entry.name, "stamps"])
