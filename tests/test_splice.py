"""Property tests of ``slam_core.splice``: every token and modality embedding lands where it must.

The checks compare :func:`layout` and :func:`splice_embeddings` against a straightforward
per-sample reference written here, over random batch sizes, prompt/target token lists,
modality lengths and both padding sides.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from slam_core.splice import IGNORE_INDEX, layout, splice_embeddings

PAD = 0
tokens = st.lists(st.integers(1, 500), max_size=8)  # real token ids never equal the pad id


@st.composite
def batches(draw, with_targets=True):
    batch = draw(st.integers(1, 6))
    prefixes = [draw(tokens) for _ in range(batch)]
    lengths = [draw(st.integers(0, 20)) for _ in range(batch)]
    suffixes = [draw(tokens) for _ in range(batch)]
    targets = [draw(tokens) for _ in range(batch)] if with_targets else None
    side = draw(st.sampled_from(["left", "right"]))
    return prefixes, lengths, suffixes, targets, side


def reference_rows(prefixes, lengths, suffixes, targets):
    """Per sample: a list of (kind, token) with kind in {"prefix", "modality", "suffix", "target"}."""
    rows = []
    for b in range(len(prefixes)):
        row = [("prefix", t) for t in prefixes[b]]
        row += [("modality", None)] * lengths[b]
        row += [("suffix", t) for t in suffixes[b]]
        row += [("target", t) for t in (targets[b] if targets is not None else [])]
        rows.append(row)
    return rows


def real_columns(row_length: int, width: int, side: str) -> list[int]:
    start = width - row_length if side == "left" else 0
    return list(range(start, start + row_length))


@settings(max_examples=200, deadline=None)
@given(batches())
def test_layout_matches_per_sample_reference(args):
    prefixes, lengths, suffixes, targets, side = args
    grid = layout(prefixes, lengths, suffixes, targets, PAD, side)
    rows = reference_rows(prefixes, lengths, suffixes, targets)
    width = max(len(row) for row in rows)

    for tensor in (grid.input_ids, grid.modality_mask, grid.attention_mask, grid.labels):
        assert tuple(tensor.shape) == (len(rows), width)
    assert grid.modality_mask.dtype == torch.bool

    for b, row in enumerate(rows):
        columns = real_columns(len(row), width, side)
        padding = sorted(set(range(width)) - set(columns))
        # padding lies entirely on the requested side
        if side == "left":
            assert padding == list(range(width - len(row)))
        else:
            assert padding == list(range(len(row), width))

        expected_attention = [0] * width
        expected_labels = [IGNORE_INDEX] * width
        expected_modality = [False] * width
        expected_ids = [PAD] * width
        for column, (kind, token) in zip(columns, row, strict=True):
            expected_attention[column] = 1
            if kind == "modality":
                expected_modality[column] = True
            else:
                expected_ids[column] = token
            if kind == "target":
                expected_labels[column] = token
        assert grid.input_ids[b].tolist() == expected_ids
        assert grid.attention_mask[b].tolist() == expected_attention
        assert grid.labels[b].tolist() == expected_labels
        assert grid.modality_mask[b].tolist() == expected_modality
        assert int(grid.modality_mask[b].sum()) == lengths[b]

        # real tokens, read back in order, are exactly prefix, n modality slots, suffix, target
        real = [
            "M" if grid.modality_mask[b, c] else int(grid.input_ids[b, c])
            for c in range(width)
            if grid.attention_mask[b, c]
        ]
        assert real == [*prefixes[b], *["M"] * lengths[b], *suffixes[b], *targets[b]]
        # labelled positions are exactly the target and nothing else
        labelled = [int(x) for x in grid.labels[b] if x != IGNORE_INDEX]
        assert labelled == list(targets[b])

    # no padding, prompt or modality position is ever labelled
    unlabelled = (grid.attention_mask == 0) | grid.modality_mask
    assert (grid.labels[unlabelled] == IGNORE_INDEX).all()
    assert not (grid.modality_mask & (grid.attention_mask == 0)).any()


@settings(max_examples=60, deadline=None)
@given(batches(with_targets=False))
def test_layout_without_targets_labels_nothing(args):
    prefixes, lengths, suffixes, _, side = args
    grid = layout(prefixes, lengths, suffixes, None, PAD, side)
    assert (grid.labels == IGNORE_INDEX).all()
    totals = [len(p) + n + len(s) for p, n, s in zip(prefixes, lengths, suffixes, strict=True)]
    assert grid.attention_mask.sum(1).tolist() == totals
    if side == "left" and max(totals) > 0:  # generation: every row ends at the last column
        assert (grid.attention_mask[:, -1] == 1).all() or min(totals) == 0


def test_left_padding_puts_zeros_on_the_left():
    grid = layout([[5], []], [2, 1], [[7, 8], [9]], None, PAD, "left")
    assert grid.attention_mask.tolist() == [[1, 1, 1, 1, 1], [0, 0, 0, 1, 1]]
    assert grid.modality_mask.tolist() == [[False, True, True, False, False], [False, False, False, True, False]]
    assert grid.input_ids.tolist() == [[5, PAD, PAD, 7, 8], [PAD, PAD, PAD, PAD, 9]]


@settings(max_examples=100, deadline=None)
@given(batches(), st.integers(1, 5), st.data())
def test_splice_embeddings_places_every_modality_row(args, dim, data):
    prefixes, lengths, suffixes, targets, side = args
    grid = layout(prefixes, lengths, suffixes, targets, PAD, side)
    batch, width = grid.input_ids.shape
    seed = data.draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    text = torch.randn(batch, width, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    longest = max(lengths)
    modality = torch.randn(batch, longest, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    n = torch.tensor(lengths)

    out = splice_embeddings(text, grid.modality_mask, modality, n)
    assert out.shape == text.shape

    expected = text.detach().clone()
    for b in range(batch):
        positions = [c for c in range(width) if grid.modality_mask[b, c]]
        assert len(positions) == lengths[b]
        for t, column in enumerate(positions):
            expected[b, column] = modality[b, t].detach()
    assert torch.equal(out.detach(), expected)

    # gradients: to text everywhere but the modality positions, to modality rows t < n_b only
    weight = torch.randn(batch, width, dim, generator=generator, dtype=torch.float64)
    (out * weight).sum().backward()
    mask = grid.modality_mask[..., None]
    assert torch.equal(text.grad, torch.where(mask, torch.zeros_like(weight), weight))
    expected_modality_grad = torch.zeros_like(modality)
    for b in range(batch):
        positions = [c for c in range(width) if grid.modality_mask[b, c]]
        for t, column in enumerate(positions):
            expected_modality_grad[b, t] = weight[b, column]
    assert torch.equal(modality.grad, expected_modality_grad)


def test_splice_embeddings_casts_to_the_text_dtype():
    grid = layout([[3]], [2], [[4]], None, PAD, "right")
    text = torch.zeros(1, 4, 2)
    modality = torch.ones(1, 2, 2, dtype=torch.float64)
    out = splice_embeddings(text, grid.modality_mask, modality, torch.tensor([2]))
    assert out.dtype == torch.float32
    assert out[0, :, 0].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_splice_embeddings_rejects_a_total_count_mismatch():
    grid = layout([[3], [3]], [2, 1], [[4], [4]], None, PAD, "right")
    text = torch.zeros(2, 4, 2)
    with pytest.raises(ValueError, match=r"modality positions in the layout but .* valid"):
        splice_embeddings(text, grid.modality_mask, torch.ones(2, 2, 2), torch.tensor([2, 2]))
    # embeddings shorter than the lengths claim
    with pytest.raises(ValueError, match="modality positions"):
        splice_embeddings(text, grid.modality_mask, torch.ones(2, 1, 2), torch.tensor([2, 1]))


def test_splice_embeddings_rejects_a_per_sample_count_mismatch():
    """Row 0 has 2 slots and row 1 has 1, but the lengths say 1 and 2: the totals agree.

    Silently accepting this would put sample 1's first embedding into sample 0's row.
    """
    grid = layout([[3], [3]], [2, 1], [[4], [4, 4]], None, PAD, "right")
    text = torch.zeros(2, 4, 2)
    modality = torch.arange(8, dtype=torch.float32).reshape(2, 2, 2)
    with pytest.raises(ValueError, match="modality"):
        splice_embeddings(text, grid.modality_mask, modality, torch.tensor([1, 2]))


@pytest.mark.parametrize(
    ("prefixes", "lengths", "suffixes", "targets"),
    [
        ([[1], [2]], [1], [[3], [4]], None),
        ([[1], [2]], [1, 1], [[3]], None),
        ([[1], [2]], [1, 1], [[3], [4]], [[5]]),
    ],
)
def test_layout_rejects_ragged_batches(prefixes, lengths, suffixes, targets):
    with pytest.raises(ValueError, match="one entry per sample"):
        layout(prefixes, lengths, suffixes, targets, PAD, "right")


def test_layout_rejects_bad_padding_side_and_negative_lengths():
    with pytest.raises(ValueError, match=r"padding_side must be 'left' or 'right', got 'middle'"):
        layout([[1]], [1], [[2]], None, PAD, "middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modality length must be >= 0, got -1"):
        layout([[1]], [-1], [[2]], None, PAD, "right")
