"""Length arithmetic: the conv formula, windows that add up exactly, forward's lengths (hypothesis)."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from slam_plugin_whisper.encoder import WhisperEncoder
from slam_plugin_whisper.plugin import WhisperEncoderConfig
from slam_plugin_whisper.windows import conv_output_lengths, merge_windows, split_windows, time_mask


@settings(max_examples=60, deadline=None)
@given(frames=st.integers(1, 6000))
def test_formula_matches_whispers_convolutions(frames):
    mel = torch.empty(1, 80, frames, device="meta")
    hidden = torch.nn.functional.conv1d(mel, torch.empty(8, 80, 3, device="meta"), padding=1)
    hidden = torch.nn.functional.conv1d(hidden, torch.empty(8, 8, 3, device="meta"), stride=2, padding=1)
    assert int(conv_output_lengths(torch.tensor(frames))) == hidden.shape[-1] == (frames - 1) // 2 + 1


@settings(max_examples=60, deadline=None)
@given(frames=st.integers(0, 20000), half_window=st.integers(1, 1500))
def test_windows_add_up_to_the_formula(frames, half_window):
    """Encoding window by window yields exactly ceil(T / 2) frames: the formula needs no chunk term."""
    window = 2 * half_window
    full, rest = divmod(frames, window)
    per_window = full * half_window + int(conv_output_lengths(torch.tensor(rest)))
    assert per_window == int(conv_output_lengths(torch.tensor(frames)))


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=4),
    half_window=st.integers(1, 8),
    extra=st.integers(0, 5),
)
def test_split_then_merge_restores_each_sample(lengths, half_window, extra):
    """With a stand-in encoder that keeps every other frame, merge(split(x)) == x[:, ::2] on valid frames."""
    window = 2 * half_window
    lengths_t = torch.tensor(lengths)
    features = torch.randn(len(lengths), max(lengths) + extra, 3)
    windows = split_windows(features, lengths_t, window)
    assert (windows.lengths > 0).all() and int(windows.lengths.max()) <= window
    assert int(windows.lengths.sum()) == sum(lengths)
    kept = conv_output_lengths(windows.lengths)
    hidden = windows.pieces[:, ::2] * time_mask(kept, windows.pieces[:, ::2].shape[1])[..., None]
    merged = merge_windows(hidden, windows, len(lengths), half_window)
    for row, n in enumerate(lengths):
        m = (n - 1) // 2 + 1
        torch.testing.assert_close(merged[row, :m], features[row, :n:2], atol=0, rtol=0)


_CHUNKING = WhisperEncoderConfig(
    shape={"hidden_size": 8, "num_layers": 1, "num_heads": 2, "intermediate_size": 16, "max_position_embeddings": 4},
    long_audio="chunk",
)


@settings(max_examples=15, deadline=None)
@given(lengths=st.lists(st.integers(1, 30), min_size=1, max_size=3))
def test_forward_returns_output_lengths_in_chunk_mode(lengths):
    torch.manual_seed(0)
    encoder = WhisperEncoder(_CHUNKING).eval()
    lengths_t = torch.tensor(lengths)
    features = torch.randn(len(lengths), max(lengths), 80)
    with torch.no_grad():
        hidden, out_lengths = encoder(features, lengths_t)
    assert out_lengths.tolist() == [(n - 1) // 2 + 1 for n in lengths]
    assert hidden.shape == (len(lengths), max(out_lengths.tolist()), 8)
    assert not hidden[~time_mask(out_lengths, hidden.shape[1])].any(), "padded output frames must be zero"
