"""Build the transformers config, model and tokenizer that a :class:`VicunaConfig` names.

Three sources: a Hugging Face directory (safetensors; pickled ``.bin`` only through
``torch.load(weights_only=True)``), a GGUF file (transformers dequantizes it, once: the result
is cached as a directory, see :mod:`slam_plugin_vicuna.gguf_cache`), or a shape.
Under ``with torch.device("meta")`` (``slam inspect``) the model is an empty shell built from
the config alone: no weight file is opened.
"""

from __future__ import annotations

import logging
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from slam_core.errors import CheckpointError
from slam_plugin_vicuna import gguf_cache, sources
from slam_plugin_vicuna.plugin import SMOLLM2, LlamaArchitecture, VicunaConfig

#: ``tokenizer_source`` of the byte-level tokenizer a shell without tokenizer files gets.
STAND_IN_TOKENIZER = "byte-level stand-in tokenizer (the shell has none of its own)"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSource:
    """Where the model comes from: ``kind`` and the directory or file (``None`` for a shape)."""

    kind: Literal["dir", "gguf", "shape"]
    location: Path | None
    label: str

    @classmethod
    def of(cls, config: VicunaConfig) -> ModelSource:
        if config.is_shell():
            return cls("shape", None, f"shape({config.architecture().model_dump(exclude_defaults=True)})")
        if config.path is not None:
            directory = sources.model_directory(config.path)
            return cls("dir", directory, str(directory))
        gguf = sources.gguf_file(config.gguf or SMOLLM2)
        return cls("gguf", gguf, str(gguf))


def cached_gguf(source: ModelSource) -> ModelSource:
    """A GGUF source as the cached directory of its conversion (built on first use); other sources as they are.

    The label stays the GGUF file's, so messages name the file the spec names. On the meta
    device nothing is converted; a cache folder that cannot be written means loading the GGUF itself.
    """
    if source.kind != "gguf" or on_meta_device():
        return source
    try:
        entry = gguf_cache.converted(source.location, lambda folder: _convert_gguf(source, folder))
    except OSError as exc:
        log.warning("vicuna: cannot cache the conversion of %s (%s); loading the GGUF itself", source.label, exc)
        return source
    return ModelSource("dir", entry, source.label)


def _convert_gguf(source: ModelSource, folder: Path) -> None:
    """De-quantise the GGUF of ``source`` (fp32) and save it, with its tokenizer, as a Hugging Face directory."""
    from transformers import AutoModelForCausalLM, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        source.location.parent,
        gguf_file=source.location.name,
        config=hf_config(source),  # a Llama-family model, or a CheckpointError naming the file
        dtype=torch.float32,
        quantization_config=GgufConfig(dequantize=True),  # plain tensors, whatever kernels are installed
    )
    model.hf_quantizer = None  # the weights are plain tensors now: saved as any model's
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    _gguf_tokenizer(source.location)[0].save_pretrained(folder)


def on_meta_device() -> bool:
    """True inside ``with torch.device("meta")``: build shells, read no weights."""
    return torch.get_default_device().type == "meta"


def hf_config(source: ModelSource, shape: LlamaArchitecture | None = None) -> Any:
    """The transformers config of ``source``, checked to be a Llama-family model."""
    from transformers import AutoConfig

    if source.kind == "shape":
        return llama_config(shape)
    if source.kind == "dir":
        return AutoConfig.from_pretrained(source.location, trust_remote_code=False, local_files_only=True)
    try:
        config = AutoConfig.from_pretrained(source.location.parent, gguf_file=source.location.name)
    except (ValueError, OSError, KeyError, IndexError, struct.error) as exc:
        raise CheckpointError(f"vicuna: cannot read the GGUF file {source.label!r}: {exc}") from None
    sources.check_llama_family(config.model_type, source.label)
    return config


def llama_config(shape: LlamaArchitecture) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads or shape.num_heads,
        intermediate_size=shape.intermediate_size,
        vocab_size=shape.vocab_size,
        max_position_embeddings=shape.max_position_embeddings,
        tie_word_embeddings=shape.tie_word_embeddings,
    )


def require_weights(source: ModelSource) -> None:
    """Refuse, before anything is loaded, a source that has no weights to run (off the meta device)."""
    if source.kind == "shape":
        raise CheckpointError(
            "vicuna: llm.size / llm.shape have no weights; they build only an empty shell on the meta device "
            "(slam inspect). "
            "To run the model, set llm.path to a model directory or llm.gguf to a .gguf file"
        )
    if source.kind == "dir" and not sources.weight_files(source.location):
        raise CheckpointError(
            f"vicuna: {source.label!r} has a config.json but no weights (expected one of: "
            f"{', '.join(sources.WEIGHT_FILES)}); a config.json alone builds only an empty shell on the meta device"
        )


def build_model(source: ModelSource, config: Any, dtype: torch.dtype) -> nn.Module:
    """The causal LM: loaded from ``source``, or an empty shell on the meta device."""
    from transformers import AutoModelForCausalLM

    options = {"dtype": dtype, "attn_implementation": "sdpa"}
    if on_meta_device():
        return AutoModelForCausalLM.from_config(config, **options)
    require_weights(source)
    if source.kind == "gguf":
        return AutoModelForCausalLM.from_pretrained(
            source.location.parent, gguf_file=source.location.name, config=config, **options
        )
    try:
        return AutoModelForCausalLM.from_pretrained(
            source.location,
            config=config,
            weights_only=True,
            trust_remote_code=False,
            local_files_only=True,
            **options,
        )
    except pickle.UnpicklingError as exc:
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"vicuna: refusing the pickled weights in {source.label!r}: they hold more than tensors, and .bin files "
            f"are only read with torch.load(weights_only=True) ({detail}). Convert a trusted copy to safetensors"
        ) from None


def load_tokenizer(config: VicunaConfig, source: ModelSource) -> tuple[Any, str]:
    """The tokenizer and where it came from: ``config.tokenizer``, else the model's own.

    A shell with no tokenizer of its own (a shape, or a config.json alone) gets a 259-token
    byte-level stand-in, labelled as such, so that the composition can still be inspected.
    """
    if config.tokenizer is not None:
        if config.tokenizer == SMOLLM2 or config.tokenizer.endswith(".gguf"):
            return _gguf_tokenizer(sources.gguf_file(config.tokenizer))
        directory = Path(config.tokenizer).expanduser()
        if not directory.is_dir() or not sources.has_tokenizer(directory):
            raise CheckpointError(
                f"vicuna: tokenizer {config.tokenizer!r} is not a tokenizer directory "
                f"(expected one of {', '.join(sources.TOKENIZER_FILES)}) nor a .gguf file"
            )
        return _directory_tokenizer(directory)
    if source.kind == "gguf":
        return _gguf_tokenizer(source.location)
    if source.kind == "dir" and sources.has_tokenizer(source.location):
        return _directory_tokenizer(source.location)[0], source.label
    if source.kind == "shape" or on_meta_device():
        from slam_core.hf_llm import byte_tokenizer

        return byte_tokenizer(), STAND_IN_TOKENIZER
    raise CheckpointError(
        f"vicuna: {source.label!r} has no tokenizer files ({', '.join(sources.TOKENIZER_FILES)}); "
        "set llm.tokenizer to the model's tokenizer directory"
    )


def _directory_tokenizer(directory: Path) -> tuple[Any, str]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, trust_remote_code=False, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"vicuna: cannot load the tokenizer in {str(directory)!r}: {exc}") from None
    return tokenizer, str(directory)


def _gguf_tokenizer(path: Path) -> tuple[Any, str]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"vicuna: cannot load the tokenizer of the GGUF file {str(path)!r}: {exc}") from None
    return tokenizer, str(path)
