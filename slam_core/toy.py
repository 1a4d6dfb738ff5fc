"""Factories of the built-in toy components (see :mod:`slam_core.builtin`)."""

from __future__ import annotations

import math

import torch
from torch import nn

from slam_core.audio import prepare_waveform
from slam_core.builtin import ToyEncoderConfig, ToyLLMConfig
from slam_core.components import Encoder
from slam_core.configs import torch_dtype
from slam_core.hf_llm import HFCausalLM, byte_tokenizer


class LogMel:
    """Raw audio (see :func:`prepare_waveform`) → log-mel ``[1 + N // hop, n_mels]``; picklable, no weights."""

    def __init__(self, sample_rate: int, n_mels: int, hop_length: int):
        self.sample_rate, self.n_mels, self.hop_length = sample_rate, n_mels, hop_length
        self._transform = None

    def __getstate__(self):
        return {**self.__dict__, "_transform": None}

    def __call__(self, raw) -> torch.Tensor:
        waveform = prepare_waveform(raw, self.sample_rate)
        if self._transform is None:
            import torchaudio

            self._transform = torchaudio.transforms.MelSpectrogram(
                self.sample_rate,
                n_fft=max(400, 2 * self.hop_length),
                hop_length=self.hop_length,
                n_mels=self.n_mels,
                pad_mode="constant",  # reflect padding fails on clips shorter than half a window
            )
        return torch.log(self._transform(waveform) + 1e-6).T.contiguous()


def _halve(lengths: torch.Tensor) -> torch.Tensor:
    """Output length of a kernel-3, stride-2, padding-1 convolution."""
    return torch.div(lengths - 1, 2, rounding_mode="floor") + 1


def _time_mask(lengths: torch.Tensor, width: int) -> torch.Tensor:
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


class ToyEncoder(Encoder):
    """Log-mel → two stride-2 convolutions (4× subsampling) → transformer; padding never leaks."""

    modality = "audio"

    def __init__(self, config: ToyEncoderConfig):
        super().__init__()
        self.config = config
        shape = config.shape
        self.sample_rate = config.sample_rate
        self.output_dim = shape.hidden_size
        self.frame_rate = config.sample_rate / config.hop_length / 4
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(config.seed)
        dim = shape.hidden_size
        self.conv1 = nn.Conv1d(shape.num_mel_bins, dim, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        ffn = shape.intermediate_size or 4 * dim
        layer = nn.TransformerEncoderLayer(dim, shape.num_heads, ffn, dropout=0.0, batch_first=True)
        self.transformer = nn.TransformerEncoder(layer, shape.num_layers, enable_nested_tensor=False)
        self.position_scale = nn.Parameter(torch.ones(()))
        torch.random.set_rng_state(generator_state)
        self.to(torch_dtype(config.dtype))

    def preprocessor(self) -> LogMel:
        return LogMel(self.config.sample_rate, self.config.shape.num_mel_bins, self.config.hop_length)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return _halve(_halve(lengths))

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.to(self.conv1.weight.dtype).masked_fill(~_time_mask(lengths, features.shape[1])[..., None], 0.0)
        lengths1 = _halve(lengths)
        x = torch.relu(self.conv1(x.transpose(1, 2)))
        x = x.masked_fill(~_time_mask(lengths1, x.shape[-1])[:, None, :], 0.0)
        out_lengths = _halve(lengths1)
        x = torch.relu(self.conv2(x))
        x = x.transpose(1, 2)[:, : int(out_lengths.max()) if out_lengths.numel() else 0]
        valid = _time_mask(out_lengths, x.shape[1])
        x = x + self.position_scale * _sinusoids(x.shape[1], x.shape[2], x.device, x.dtype)
        x = self.transformer(x, src_key_padding_mask=~valid)
        return x.masked_fill(~valid[..., None], 0.0), out_lengths


def _sinusoids(length: int, dim: int, device, dtype) -> torch.Tensor:
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    rates = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * rates)
    table[:, 1::2] = torch.cos(position * rates[: dim // 2])
    return table.to(dtype)


def build_toy_llm(config: ToyLLMConfig) -> HFCausalLM:
    """A random-init ``LlamaForCausalLM`` of the configured shape with a byte tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = byte_tokenizer()
    shape = config.shape
    llama_config = LlamaConfig(
        hidden_size=shape.hidden_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads or shape.num_heads,
        intermediate_size=shape.intermediate_size,
        vocab_size=shape.vocab_size,
        max_position_embeddings=shape.max_position_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(config.seed)
    try:
        model = LlamaForCausalLM(llama_config).to(torch_dtype(config.dtype))
    finally:
        torch.random.set_rng_state(generator_state)
    return HFCausalLM(model, tokenizer)
