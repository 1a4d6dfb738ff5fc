"""Stage 1 of the embedded demo: the encoder alone, trained with a linear CTC head.

The head spells the transcripts' characters, or their phonemes (``targets: phonemes``: the
manifest's ``phonemes`` field, space-separated symbols with ``|`` between words, as
``make_open_corpus.py`` writes them). No LLM is involved, so an epoch costs seconds to a minute.
The trained encoder is saved as a Hugging Face Whisper folder (:func:`save_whisper_encoder`) that
the whisper plugin's ``encoder.path`` loads, and the head beside it (:func:`save_ctc_head`) for
decoding with a lexicon. The settings are ``recipes/demo/ctc.yaml`` (:class:`CTCConfig`; its
``lexicon`` section says how phonemes become words, :mod:`slam_recipes._demo.lexicon`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from slam_recipes._demo.lexicon import WORD_BOUNDARY, LexiconConfig

from slam_core.errors import SlamError

HEAD_FILE = "ctc_head.safetensors"
VOCABULARY_FILE = "ctc_vocabulary.json"


class CTCConfig(BaseModel):
    """Stage 1: train the encoder alone with a CTC head over the transcripts' characters or phonemes."""

    model_config = ConfigDict(extra="forbid")
    targets: Literal["characters", "phonemes"] = Field(
        "characters",
        description="what the head spells: the target's characters, or the manifest's `phonemes` field "
        "(space-separated symbols, `|` between words)",
    )
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
    vtlp: float = Field(
        0.0,
        ge=0,
        lt=0.5,
        description="vocal tract length perturbation: each utterance's mel bins stretched by a random factor "
        "in [1 - vtlp, 1 + vtlp] (0: off)",
    )
    dtype: Literal["fp32", "bf16"] = Field("fp32", description="autocast dtype of the forward pass (as train.dtype)")
    cache_features: bool = Field(
        True, description="keep each sample's features in memory after the first epoch reads them (no re-decoding)"
    )
    lexicon: LexiconConfig | None = Field(
        None, description="decode the phonemes into lexicon words chosen by the LLM, instead of the LLM stage"
    )

    @model_validator(mode="after")
    def _lexicon_reads_phonemes(self) -> CTCConfig:
        if self.lexicon is not None and self.targets != "phonemes":
            raise ValueError("lexicon decoding reads phonemes: set targets: phonemes, or remove the lexicon section")
        return self


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


def ctc_symbols(sample: dict[str, Any], targets: str) -> list[str]:
    """The symbols the CTC head spells for ``sample``: its target's characters, or its phonemes."""
    if targets == "characters":
        return list(sample["target"])
    phonemes = sample.get("phonemes")
    if not isinstance(phonemes, str) or not phonemes.split():
        raise SlamError(
            f"ctc.targets: phonemes needs a `phonemes` field in every manifest entry; {sample.get('key')!r} has "
            f"none (make_open_corpus.py writes it), or set ctc.targets: characters"
        )
    return phonemes.split()


class CTCVocabulary:
    """The symbols of the training targets (characters or phonemes); id 0 is the CTC blank."""

    def __init__(self, sequences: Sequence[Sequence[str]], targets: str = "characters"):
        self.targets = targets
        self.symbols = sorted({symbol for sequence in sequences for symbol in sequence})
        self._ids = {symbol: i + 1 for i, symbol in enumerate(self.symbols)}

    @classmethod
    def from_symbols(cls, symbols: Sequence[str], targets: str) -> CTCVocabulary:
        vocabulary = cls([symbols], targets)
        if vocabulary.symbols != list(symbols):
            raise ValueError(f"CTC symbols must be sorted and distinct, got {list(symbols)[:8]}...")
        return vocabulary

    def __len__(self) -> int:
        return len(self.symbols) + 1

    @property
    def word_boundary(self) -> str:
        """The symbol between words: a space for characters, ``|`` for phonemes."""
        return " " if self.targets == "characters" else WORD_BOUNDARY

    def encode(self, symbols: Sequence[str]) -> list[int]:
        unknown = sorted({s for s in symbols if s not in self._ids})
        if unknown:
            raise ValueError(f"symbols {unknown} of {''.join(symbols)!r} are not in the CTC vocabulary")
        return [self._ids[s] for s in symbols]

    def text(self, symbols: Sequence[str]) -> str:
        """Symbols as one string: characters joined into text, phonemes space-separated."""
        return " ".join(("" if self.targets == "characters" else " ").join(symbols).split())

    def greedy_decode(self, log_probs, lengths) -> list[str]:
        """Best path: argmax per frame, repeats merged, blanks dropped, as :meth:`text`."""
        best = log_probs.argmax(-1).tolist()
        texts = []
        for row, length in zip(best, lengths.tolist(), strict=True):
            out, previous = [], 0
            for index in row[:length]:
                if index != previous and index != 0:
                    out.append(self.symbols[index - 1])
                previous = index
            texts.append(self.text(out))
        return texts


@dataclass
class CTCResult:
    """What :func:`pretrain_encoder_ctc` gives back: its scores, the trained head and its vocabulary."""

    scores: dict[str, float]
    head: Any
    vocabulary: CTCVocabulary


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


def warp_frequencies(features, lengths, largest: float, generator):
    """Vocal tract length perturbation on features ``[B, T, bins]``: each utterance's frequency axis is
    stretched (:func:`stretch_bins`) by a factor drawn from ``[1 - largest, 1 + largest]``; padding is kept."""
    import torch

    if largest == 0:
        return features
    warped = features.clone()
    factors = 1 + largest * (2 * torch.rand(features.shape[0], generator=generator) - 1)
    for row, factor in enumerate(factors.tolist()):
        length = int(lengths[row])
        warped[row, :length] = stretch_bins(features[row, :length], factor)
    return warped


def stretch_bins(frames, factor: float):
    """``frames [T, bins]`` with bin ``j`` taking the value at bin ``j / factor`` (linear interpolation;
    past the top bin, the top bin's value): the spectrum's features move up by ``factor``."""
    import torch
    from torch.nn import functional

    bins = frames.shape[-1]
    width = max(2, round(bins * factor))
    stretched = functional.interpolate(frames[None], size=width, mode="linear", align_corners=True)[0]
    if width < bins:
        stretched = torch.cat([stretched, stretched[:, -1:].expand(-1, bins - width)], dim=-1)
    return stretched[:, :bins]


def pretrain_encoder_ctc(
    encoder,
    train_batches,
    config: CTCConfig,
    *,
    valid_batches=None,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> CTCResult:
    """Train ``encoder`` in place with a linear CTC head on the samples' characters or phonemes.

    ``train_batches`` (and ``valid_batches``) are :class:`~slam_core.runtime.data.Batches`. The
    scores are the last epoch's mean train loss and, with ``valid_batches``, the greedy CTC error
    rates there: ``ctc_cer`` and ``ctc_wer`` for characters, ``ctc_per`` (phoneme error rate) and
    ``ctc_wer`` (words of phonemes) for phonemes. With ``config.cache_features`` the train
    batches' dataset becomes a :class:`FeatureCache`.
    """
    import torch
    from torch import nn

    from slam_core.runtime.train.precision import autocast, autocast_dtype

    if config.cache_features:  # the caller's batches keep the cache (a later pass reads no audio either)
        train_batches.dataset = FeatureCache(train_batches.dataset)
    sequences = [ctc_symbols(entry.fields, config.targets) for entry in train_batches.dataset.entries]
    vocabulary = CTCVocabulary(sequences, config.targets)
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
            features = warp_frequencies(batch.features, batch.feature_lengths, config.vtlp, generator)
            features = spec_augment(features, batch.feature_lengths, config, generator)
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
    return CTCResult(result, head, vocabulary)


def _warmup_then_linear_decay(optimizer, total: int, warmup_share: float):
    """A linear warmup over ``warmup_share`` of ``total`` steps, then a linear decay to 0."""
    import torch

    warmup = max(1, int(warmup_share * total))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
    )


def _ctc_loss(encoder, head, vocabulary: CTCVocabulary, features, batch):
    """The mean CTC loss of one batch (``features`` may be augmented) against its targets' symbols."""
    import torch
    from torch import nn

    hidden, lengths = encoder(features, batch.feature_lengths)
    log_probs = head(hidden).log_softmax(-1)
    targets = [torch.tensor(vocabulary.encode(ctc_symbols(s, vocabulary.targets))) for s in batch.samples]
    return nn.CTCLoss(blank=0, zero_infinity=True)(
        log_probs.transpose(0, 1), torch.cat(targets), lengths, torch.tensor([len(t) for t in targets])
    )


def _ctc_scores(encoder, head, vocabulary: CTCVocabulary, batches) -> dict[str, float]:
    import torch

    from slam_core.runtime.metrics import score

    encoder.eval()
    hypotheses, references = [], []
    batches.set_epoch(0)
    with torch.no_grad():
        for batch in batches:
            hidden, lengths = encoder(batch.features, batch.feature_lengths)
            hypotheses += vocabulary.greedy_decode(head(hidden).log_softmax(-1), lengths)
            references += [vocabulary.text(ctc_symbols(s, vocabulary.targets)) for s in batch.samples]
    encoder.train()
    if vocabulary.targets == "characters":
        return {f"ctc_{k}": v for k, v in score(["cer", "wer"], hypotheses, references).items()}
    words = [_phoneme_words(text) for text in hypotheses], [_phoneme_words(text) for text in references]
    return {  # over space-separated symbols, not normalised as English
        "ctc_per": score(["wer"], hypotheses, references, normalize="none")["wer"],
        "ctc_wer": score(["wer"], *words, normalize="none")["wer"],
    }


def _phoneme_words(phonemes: str) -> str:
    """``"D @ | k a t"`` -> ``"D@ kat"``: one token per word, to count word errors of a phoneme string."""
    return " ".join("".join(word.split()) for word in phonemes.split(WORD_BOUNDARY) if word.split())


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


def save_ctc_head(result: CTCResult, directory: str | Path) -> None:
    """Write the trained CTC head and its vocabulary into ``directory`` (beside the saved encoder)."""
    import json

    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in result.head.state_dict().items()}, directory / HEAD_FILE)
    vocabulary = {"targets": result.vocabulary.targets, "symbols": result.vocabulary.symbols}
    (directory / VOCABULARY_FILE).write_text(json.dumps(vocabulary, ensure_ascii=False) + "\n", encoding="utf-8")


def load_ctc_head(directory: str | Path):
    """``(head, vocabulary)`` as :func:`save_ctc_head` wrote them into ``directory``."""
    import json

    from safetensors.torch import load_file
    from torch import nn

    directory = Path(directory)
    if not (directory / HEAD_FILE).is_file():
        raise SlamError(f"{directory} has no CTC head ({HEAD_FILE}); train the encoder with the demo's CTC stage")
    saved = json.loads((directory / VOCABULARY_FILE).read_text(encoding="utf-8"))
    vocabulary = CTCVocabulary.from_symbols(saved["symbols"], saved["targets"])
    state = load_file(directory / HEAD_FILE)
    head = nn.Linear(state["weight"].shape[1], len(vocabulary))
    head.load_state_dict(state)
    return head.eval(), vocabulary


def load_ctc_config(path: str | Path, overrides: dict[str, Any] | None = None) -> CTCConfig:
    """The CTC settings in ``path`` (YAML; a missing file gives the defaults) with ``overrides`` applied;
    a relative ``lexicon.path`` starts from the file's folder."""
    import yaml

    path = Path(path)
    values = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config = CTCConfig.model_validate({**(values or {}), **(overrides or {})})
    if config.lexicon is not None:
        lexicon = config.lexicon.model_copy(update={"path": str((path.parent / config.lexicon.path).resolve())})
        config = config.model_copy(update={"lexicon": lexicon})
    return config
