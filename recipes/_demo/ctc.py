"""Stage 1 of the embedded demo: the encoder alone, trained with a linear CTC head over characters.

No LLM is involved, so an epoch over the demo corpus costs a few seconds. The trained encoder is
saved as a Hugging Face Whisper folder (:func:`save_whisper_encoder`) that the whisper plugin's
``encoder.path`` loads. The settings are ``recipes/demo/ctc.yaml`` (:class:`CTCConfig`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from slam_core.errors import SlamError


class CTCConfig(BaseModel):
    """Stage 1: train the encoder alone with a CTC head over the transcripts' characters."""

    model_config = ConfigDict(extra="forbid")
    epochs: int = Field(15, ge=0, description="passes over the train split; 0 skips the stage")
    batch_size: int = Field(16, gt=0)
    lr: float = Field(2e-3, gt=0, description="peak AdamW learning rate")
    warmup: float = Field(0.1, ge=0, lt=1, description="share of the steps with a linear warmup, then linear decay")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    time_masks: int = Field(2, ge=0, description="SpecAugment: time masks per utterance")
    time_mask_frames: int = Field(10, ge=1, description="SpecAugment: longest time mask, in feature frames")
    freq_masks: int = Field(2, ge=0, description="SpecAugment: frequency masks per utterance")
    freq_mask_bins: int = Field(10, ge=1, description="SpecAugment: widest frequency mask, in mel bins")
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="autocast dtype of the forward pass (as train.dtype)")
    cache_features: bool = Field(
        True, description="keep each sample's features in memory after the first epoch reads them (no re-decoding)"
    )


class FeatureCache:
    """A :class:`~slam_core.runtime.data.dataset.SampleDataset` whose items are kept after their first read.

    For a deterministic preprocessor (Whisper's log-mel is one) and ``num_workers: 0``: later epochs
    then skip decoding and featurising (SpecAugment is applied to the batch, after the cache).
    """

    def __init__(self, dataset):
        self._dataset, self._items = dataset, {}

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    def __setattr__(self, name, value):
        if name in ("_dataset", "_items"):
            object.__setattr__(self, name, value)
        else:
            setattr(self._dataset, name, value)

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, index: int):
        if index not in self._items:
            self._items[index] = self._dataset[index]
        return self._items[index]


class CharVocabulary:
    """Characters of the training transcripts; id 0 is the CTC blank."""

    def __init__(self, texts: Sequence[str]):
        self.chars = sorted({c for text in texts for c in text})
        self._ids = {c: i + 1 for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self._ids})
        if unknown:
            raise ValueError(f"characters {unknown} of {text!r} are not in the CTC vocabulary")
        return [self._ids[c] for c in text]

    def greedy_decode(self, log_probs, lengths) -> list[str]:
        """Best path: argmax per frame, repeats merged, blanks dropped."""
        best = log_probs.argmax(-1).tolist()
        texts = []
        for row, length in zip(best, lengths.tolist(), strict=True):
            out, previous = [], 0
            for index in row[:length]:
                if index != previous and index != 0:
                    out.append(self.chars[index - 1])
                previous = index
            texts.append(" ".join("".join(out).split()))
        return texts


def spec_augment(features, lengths, config: CTCConfig, generator):
    """Zero random time spans and mel-bin bands of each utterance (SpecAugment without warping)."""
    import torch

    features = features.clone()
    batch, _, bins = features.shape
    for row in range(batch):
        length = int(lengths[row])
        for _ in range(config.time_masks):
            width = int(torch.randint(0, config.time_mask_frames + 1, (), generator=generator))
            if 0 < width < length:
                start = int(torch.randint(0, length - width, (), generator=generator))
                features[row, start : start + width] = 0.0
        for _ in range(config.freq_masks):
            width = int(torch.randint(0, config.freq_mask_bins + 1, (), generator=generator))
            if 0 < width < bins:
                start = int(torch.randint(0, bins - width, (), generator=generator))
                features[row, :length, start : start + width] = 0.0
    return features


def pretrain_encoder_ctc(
    encoder,
    train_batches,
    config: CTCConfig,
    *,
    valid_batches=None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, float]:
    """Train ``encoder`` in place with a linear CTC head on the characters of the samples' ``target``.

    ``train_batches`` (and ``valid_batches``) are :class:`~slam_core.runtime.data.Batches`. Returns the
    last epoch's mean train loss and, with ``valid_batches``, the greedy CTC CER and WER there.
    With ``config.cache_features`` the train batches' dataset becomes a :class:`FeatureCache`.
    """
    import torch
    from torch import nn

    from slam_core.runtime.train.precision import autocast, autocast_dtype

    if config.cache_features:  # the caller's batches keep the cache (a later pass reads no audio either)
        train_batches.dataset = FeatureCache(train_batches.dataset)
    texts = [entry.fields["target"] for entry in train_batches.dataset.entries]
    vocabulary = CharVocabulary(texts)
    head = nn.Linear(encoder.output_dim, len(vocabulary))
    parameters = [p for p in [*encoder.parameters(), *head.parameters()] if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    schedule = _warmup_then_linear_decay(optimizer, config.epochs * len(train_batches), config.warmup)
    generator = torch.Generator().manual_seed(seed)
    device = parameters[0].device
    mixed = autocast(device, autocast_dtype(config.dtype, device))
    encoder.train()
    result: dict[str, float] = {}
    started = time.monotonic()
    for epoch in range(config.epochs):
        train_batches.set_epoch(epoch)
        losses = []
        for batch in train_batches:
            features = spec_augment(batch.features, batch.feature_lengths, config, generator)
            with mixed:
                loss = _ctc_loss(encoder, head, vocabulary, features, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, config.grad_clip)
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        result["loss"] = sum(losses) / len(losses)
        log(f"  ctc epoch {epoch + 1}/{config.epochs}: loss {result['loss']:.3f} ({time.monotonic() - started:.0f} s)")
    if valid_batches is not None and config.epochs:
        result.update(_ctc_scores(encoder, head, vocabulary, valid_batches))
    encoder.eval()
    return result


def _warmup_then_linear_decay(optimizer, total: int, warmup_share: float):
    """A linear warmup over ``warmup_share`` of ``total`` steps, then a linear decay to 0."""
    import torch

    warmup = max(1, int(warmup_share * total))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )


def _ctc_loss(encoder, head, vocabulary: CharVocabulary, features, batch):
    """The mean CTC loss of one batch (``features`` may be augmented) against its targets' characters."""
    import torch
    from torch import nn

    hidden, lengths = encoder(features, batch.feature_lengths)
    log_probs = head(hidden).log_softmax(-1)
    targets = [torch.tensor(vocabulary.encode(s["target"])) for s in batch.samples]
    return nn.CTCLoss(blank=0, zero_infinity=True)(
        log_probs.transpose(0, 1), torch.cat(targets), lengths, torch.tensor([len(t) for t in targets])
    )


def _ctc_scores(encoder, head, vocabulary: CharVocabulary, batches) -> dict[str, float]:
    import torch

    from slam_core.runtime.metrics import score

    encoder.eval()
    hypotheses, references = [], []
    batches.set_epoch(0)
    with torch.no_grad():
        for batch in batches:
            hidden, lengths = encoder(batch.features, batch.feature_lengths)
            hypotheses += vocabulary.greedy_decode(head(hidden).log_softmax(-1), lengths)
            references += [s["target"] for s in batch.samples]
    encoder.train()
    return {f"ctc_{k}": v for k, v in score(["cer", "wer"], hypotheses, references).items()}


def save_whisper_encoder(encoder, directory: str | Path) -> Path:
    """Write a whisper-plugin encoder as a Hugging Face folder (config.json + model.safetensors)
    that ``encoder.path`` loads.

    The encoder is reached through what the plugin builds, never imported: its ``model`` is the
    transformers ``WhisperEncoder`` (anything with ``config.save_pretrained`` and ``state_dict``).
    """
    from safetensors.torch import save_file

    model = getattr(encoder, "model", None)
    if not hasattr(getattr(model, "config", None), "save_pretrained"):
        raise SlamError(
            f"the demo's CTC stage saves a transformers-backed whisper encoder; "
            f"{type(encoder).__name__} has no model.config to save (set encoder.path to skip the stage)"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(directory)
    state = {name: tensor.detach().contiguous().cpu() for name, tensor in model.state_dict().items()}
    save_file(state, directory / "model.safetensors")
    return directory


def load_ctc_config(path: str | Path, overrides: dict[str, Any] | None = None) -> CTCConfig:
    """The CTC settings in ``path`` (YAML; a missing file gives the defaults) with ``overrides`` applied."""
    import yaml

    path = Path(path)
    values = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return CTCConfig.model_validate({**(values or {}), **(overrides or {})})
