"""A disk cache of a frozen encoder's outputs, so that epochs after the first skip the encoder.

An entry is one sample's hidden frames ``[T, D]`` (before the projector, which trains),
keyed by a hash of the sample's identity (``key``, ``source``, ``offset``, ``duration``) in
a folder named by a fingerprint of the encoder (its config, its weights and the autocast
dtype): another encoder or other weights never read these entries. A batch whose samples are
all cached never calls the encoder; otherwise the encoder runs on the whole batch and the
missing entries are written. A corrupt or mismatched entry is recomputed.

The cache assumes a sample's features are the same every epoch (no random augmentation).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slam_core import features as feature_ops
from slam_core.components import Encoder

IDENTITY_FIELDS = ("key", "source", "offset", "duration")


class EncoderCache:
    """Serves ``model.encoder``'s outputs from ``directory`` while :meth:`attach` is open."""

    def __init__(self, directory: str | Path, encoder: Encoder, encoder_config: Any, dtype: str):
        trainable = [name for name, p in encoder.named_parameters() if p.requires_grad]
        if trainable:
            raise ValueError(
                f"train.encoder_cache_dir caches a frozen encoder's outputs, but encoder parameters train "
                f"(e.g. {trainable[:3]}); set train.freeze_encoder: true or drop encoder_cache_dir"
            )
        self.encoder = encoder
        self.fingerprint = encoder_fingerprint(encoder, encoder_config, dtype)
        self.directory = Path(directory) / self.fingerprint
        self.directory.mkdir(parents=True, exist_ok=True)
        self.encoder_calls = self.hits = self.misses = 0
        self._samples: Sequence[dict[str, Any]] | None = None

    @contextlib.contextmanager
    def attach(self) -> Iterator[EncoderCache]:
        """Route the encoder's calls through the cache (its module, names and weights stay as they are)."""
        original = self.encoder.forward

        def cached_forward(features: torch.Tensor, lengths: torch.Tensor):
            return self._forward(original, features, lengths)

        self.encoder.forward = cached_forward
        try:
            yield self
        finally:
            del self.encoder.forward  # back to the class's method

    @contextlib.contextmanager
    def batch(self, samples: Sequence[dict[str, Any]]) -> Iterator[None]:
        """Name the samples of the batch about to be encoded."""
        self._samples = samples
        try:
            yield
        finally:
            self._samples = None

    def _forward(self, original, features: torch.Tensor, lengths: torch.Tensor):
        if self._samples is None or len(self._samples) != feature_ops.batch_size(features):
            self.encoder_calls += 1
            return original(features, lengths)  # a call outside a named batch (e.g. generate): no caching
        expected = self.encoder.output_lengths(lengths).tolist()
        paths = [self._path(sample) for sample in self._samples]
        cached = [self._read(path, n) for path, n in zip(paths, expected, strict=True)]
        if all(entry is not None for entry in cached):
            self.hits += len(cached)
            return _pad(cached, feature_ops.device(features)), self.encoder.output_lengths(lengths)
        self.encoder_calls += 1
        hidden, out_lengths = original(features, lengths)
        for path, entry, row, n in zip(paths, cached, hidden, expected, strict=True):
            if entry is None:
                self.misses += 1
                _write(path, row[:n])
        return hidden, out_lengths

    def _path(self, sample: dict[str, Any]) -> Path:
        identity = {field: sample.get(field) for field in IDENTITY_FIELDS}
        if identity["key"] is None:
            raise ValueError(f"the encoder cache needs a 'key' in every sample, got fields {sorted(sample)}")
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
        return self.directory / digest[:2] / f"{digest}.safetensors"

    @staticmethod
    def _read(path: Path, frames: int) -> torch.Tensor | None:
        from safetensors.torch import load_file

        try:
            hidden = load_file(path)["hidden"]
        except Exception:  # absent, torn or foreign: recompute
            return None
        return hidden if hidden.ndim == 2 and hidden.shape[0] == frames else None


class EncoderCaches:
    """One :class:`EncoderCache` per encoder branch of a model, used as one (``attach``, ``batch``)."""

    def __init__(self, caches: Sequence[EncoderCache]):
        self.caches = list(caches)

    @classmethod
    def for_model(cls, directory: str | Path, model: Any, spec: Any, dtype: str) -> EncoderCaches:
        """Caches for ``model``'s encoders (the main one and any fusion branches), configured by ``spec``."""
        configs = [spec.encoder, *(branch.encoder for branch in (spec.fusion.branches if spec.fusion else []))]
        encoders = [encoder for _, encoder, _ in model.named_branches()]
        return cls([EncoderCache(directory, e, c, dtype) for e, c in zip(encoders, configs, strict=True)])

    @contextlib.contextmanager
    def attach(self) -> Iterator[EncoderCaches]:
        with contextlib.ExitStack() as stack:
            for cache in self.caches:
                stack.enter_context(cache.attach())
            yield self

    @contextlib.contextmanager
    def batch(self, samples: Sequence[dict[str, Any]]) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for cache in self.caches:
                stack.enter_context(cache.batch(samples))
            yield

    @property
    def hits(self) -> int:
        return sum(cache.hits for cache in self.caches)

    @property
    def misses(self) -> int:
        return sum(cache.misses for cache in self.caches)

    @property
    def encoder_calls(self) -> int:
        return sum(cache.encoder_calls for cache in self.caches)


def encoder_fingerprint(encoder: nn.Module, encoder_config: Any, dtype: str) -> str:
    """A hash of the encoder's config, its weights and buffers, and the autocast dtype."""
    digest = hashlib.sha256()
    config = encoder_config.model_dump(mode="json") if hasattr(encoder_config, "model_dump") else encoder_config
    digest.update(json.dumps({"config": config, "dtype": dtype}, sort_keys=True, default=str).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:24]


def _pad(rows: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    return torch.nn.utils.rnn.pad_sequence(rows, batch_first=True).to(device)


def _write(path: Path, hidden: torch.Tensor) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    save_file({"hidden": hidden.detach().cpu().contiguous()}, temporary)
    os.replace(temporary, path)
