"""The Whisper encoder component: transformers' ``WhisperEncoder`` weights, a length-aware forward."""

from __future__ import annotations

import torch
from torch import nn

from slam_core.components import Encoder
from slam_core.configs import torch_dtype
from slam_core.errors import CheckpointError
from slam_plugin_whisper.checkpoint import EncoderCheckpoint, read_checkpoint
from slam_plugin_whisper.features import SAMPLE_RATE, WhisperLogMel
from slam_plugin_whisper.plugin import WhisperEncoderConfig
from slam_plugin_whisper.presets import WhisperDims
from slam_plugin_whisper.windows import conv_output_lengths, merge_windows, split_windows, time_mask


class WhisperEncoder(Encoder):
    """Log-mel ``[B, T, n_mels]`` (100 Hz) → hidden ``[B, ceil(T / 2), d_model]`` (50 Hz; half those rates
    with ``hop_length: 320``).

    ``model`` is a transformers ``WhisperEncoder``; this class runs its submodules (conv1,
    conv2, embed_positions, layers, layer_norm) with the padding masked: padded mel frames are
    zeroed before each conv, attention gets a key-padding mask and padded outputs are zero.
    Positional embeddings are sliced to the actual length. Inputs longer than one window
    (``2 × max_source_positions`` frames = 30 s) are encoded window by window when
    ``long_audio="chunk"`` and refused otherwise.
    """

    modality = "audio"

    def __init__(self, config: WhisperEncoderConfig):
        super().__init__()
        self.config = config
        if config.path is None:
            self.model = build_hf_encoder(hf_config(config.architecture()), config.attn_implementation)
        else:
            self.model = load_hf_encoder(read_checkpoint(config.path), config.attn_implementation)
        self.model.to(torch_dtype(config.dtype))
        self.hop_length = checked_hop_length(self.model.config, config)
        self.sample_rate = SAMPLE_RATE
        self.output_dim = int(self.model.config.d_model)
        self.frame_rate = SAMPLE_RATE / self.hop_length / 2
        self.num_mel_bins = int(self.model.config.num_mel_bins)
        self.window_frames = 2 * int(self.model.config.max_source_positions)

    def preprocessor(self) -> WhisperLogMel:
        return WhisperLogMel(
            self.num_mel_bins,
            self.window_frames,
            self.config.mode,
            self.config.long_audio,
            self.config.resample,
            hop_length=self.hop_length,
        )

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return conv_output_lengths(lengths)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = lengths.to(features.device)
        self._check_inputs(features, lengths)
        windows = split_windows(features, lengths, self.window_frames)
        hidden = self.encode_window(windows.pieces, windows.lengths)
        hidden = merge_windows(hidden, windows, features.shape[0], self.window_frames // 2)
        out_lengths = self.output_lengths(lengths)
        return hidden[:, : int(out_lengths.max()) if out_lengths.numel() else 0], out_lengths

    def encode_window(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Encode ``features [N, T ≤ window, n_mels]``; frames past ``lengths`` neither leak nor survive."""
        model = self.model
        frames = time_mask(lengths, features.shape[1])
        x = (features.to(model.conv1.weight.dtype) * frames[..., None]).transpose(1, 2)
        x = nn.functional.gelu(model.conv1(x)) * frames[:, None, :]
        x = nn.functional.gelu(model.conv2(x)).transpose(1, 2)
        valid = time_mask(conv_output_lengths(lengths), x.shape[1])
        x = x + model.embed_positions.weight[: x.shape[1]]
        x = nn.functional.dropout(x, p=model.dropout, training=self.training)
        mask = None if bool(valid.all()) else key_padding_bias(valid, x.dtype)
        for layer in model.layers:
            if self.training and model.layerdrop > 0 and torch.rand([]) < model.layerdrop:
                continue
            x = layer(x, mask)
        return model.layer_norm(x) * valid[..., None]

    def _check_inputs(self, features: torch.Tensor, lengths: torch.Tensor) -> None:
        if features.ndim != 3 or features.shape[-1] != self.num_mel_bins:
            raise ValueError(
                f"whisper expects log-mel features [B, T, {self.num_mel_bins}], got {tuple(features.shape)}; "
                "use this encoder's preprocessor"
            )
        if lengths.numel() and int(lengths.max()) > features.shape[1]:
            raise ValueError(f"whisper: lengths {lengths.tolist()} exceed the {features.shape[1]} feature frames")
        window = self.window_frames
        if self.config.mode == "pad_to_30s" and bool((lengths % window).any()):
            raise ValueError(
                f"whisper (mode pad_to_30s): every sample needs a multiple of {window} mel frames (whole padded "
                f"windows), got lengths {lengths.tolist()}; use this encoder's preprocessor or mode: variable"
            )
        if self.config.long_audio == "error" and lengths.numel() and int(lengths.max()) > window:
            raise ValueError(
                f"whisper: {int(lengths.max())} mel frames exceed one {window}-frame window "
                f"({window * self.hop_length / SAMPLE_RATE:g} s); set long_audio: chunk or cut the audio"
            )


#: The transformers config attribute (kept in config.json by ``save_pretrained``) recording the mel hop.
HOP_ATTRIBUTE = "slam_hop_length"


def checked_hop_length(hf_config, config: WhisperEncoderConfig) -> int:
    """``config.hop_length``, recorded on ``hf_config`` so that a saved encoder keeps it; a checkpoint
    recorded with another hop is refused (its features would be wrong without a word)."""
    recorded = getattr(hf_config, HOP_ATTRIBUTE, None)
    if recorded is not None and recorded != config.hop_length:
        raise CheckpointError(
            f"whisper: {config.path} was trained with hop_length {recorded}; set encoder.hop_length: {recorded}"
        )
    setattr(hf_config, HOP_ATTRIBUTE, config.hop_length)
    return config.hop_length


def key_padding_bias(valid: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask ``[N, 1, 1, T]``: 0 on valid keys, the dtype's minimum on padding."""
    bias = torch.zeros(valid.shape, dtype=dtype, device=valid.device)
    return bias.masked_fill(~valid, torch.finfo(dtype).min)[:, None, None, :]


def hf_config(dims: WhisperDims):
    """A transformers ``WhisperConfig`` with the encoder ``dims`` (decoder fields left at their defaults)."""
    from transformers import WhisperConfig

    return WhisperConfig(**dims._asdict())


def build_hf_encoder(config, attn_implementation: str) -> nn.Module:
    """A randomly initialised transformers ``WhisperEncoder`` (sinusoidal positions, as Whisper's)."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder as HFWhisperEncoder

    config._attn_implementation = attn_implementation
    return HFWhisperEncoder(config)


def load_hf_encoder(checkpoint: EncoderCheckpoint, attn_implementation: str) -> nn.Module:
    """A transformers ``WhisperEncoder`` holding the checkpoint's tensors (built on the meta device)."""
    with torch.device("meta"):
        model = build_hf_encoder(checkpoint.config, attn_implementation)
    try:
        missing, unexpected = model.load_state_dict(checkpoint.state_dict, strict=False, assign=True)
    except RuntimeError as error:
        raise CheckpointError(f"whisper: {checkpoint.source}: tensors do not fit its own config: {error}") from error
    if missing or unexpected:
        raise CheckpointError(
            f"whisper: {checkpoint.source} does not match a Whisper encoder of its own config: "
            f"missing {missing[:6]}, unexpected {unexpected[:6]}"
        )
    return model
