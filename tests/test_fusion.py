"""Multi-encoder fusion: two encoder branches, each with its projector, combined in time or per frame."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from support.synthetic import toy_spec
from test_train_manifest_data import write_split  # tests/ is on sys.path (conftest)

from slam_core.audio import RawAudio
from slam_core.features import PerBranch, pad
from slam_core.fusion import FusionError, fuse
from slam_core.model import BranchPreprocessor, build_model
from slam_core.runtime.train import train
from slam_core.spec import SpecError, validate_spec

BRANCH = {
    "name": "wide",
    "encoder": {
        "type": "toy-encoder",
        "shape": {"num_mel_bins": 12, "hidden_size": 16, "num_layers": 1, "num_heads": 2},
        "hop_length": 320,
    },
    "projector": {"type": "linear-projector", "k": 1, "hidden_dim": 16},
}


def fusion_spec(mode: str = "time", **sections):
    return toy_spec(fusion={"mode": mode, "branches": [copy.deepcopy(BRANCH)]}, **sections)


def _reference_fuse(embeds, lengths, mode):
    rows = []
    for b in range(embeds[0].shape[0]):
        if mode == "time":
            rows.append(torch.cat([e[b, : int(n[b])] for e, n in zip(embeds, lengths, strict=True)]))
        else:
            m = min(int(n[b]) for n in lengths)
            rows.append(sum(e[b, :m] for e in embeds))
    return rows


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    batch=st.integers(1, 4),
    branches=st.integers(2, 3),
    mode=st.sampled_from(["time", "frame"]),
)
def test_fuse_matches_a_per_sample_reference(data, batch, branches, mode):
    base = data.draw(st.lists(st.integers(0, 6), min_size=batch, max_size=batch))
    lengths = []
    for _ in range(branches):
        jitter = data.draw(st.lists(st.integers(0, 2), min_size=batch, max_size=batch))
        lengths.append(torch.tensor([n + j for n, j in zip(base, jitter, strict=True)]))
    generator = torch.Generator().manual_seed(0)
    embeds = [torch.randn(batch, int(n.max()), 3, generator=generator) for n in lengths]
    fused, fused_lengths = fuse(embeds, lengths, mode)
    for b, row in enumerate(_reference_fuse(embeds, lengths, mode)):
        assert int(fused_lengths[b]) == row.shape[0]
        torch.testing.assert_close(fused[b, : row.shape[0]], row)
        assert not fused[b, row.shape[0] :].any()


def test_frame_fusion_refuses_branches_at_different_frame_rates():
    embeds = [torch.zeros(1, 10, 2), torch.zeros(1, 5, 2)]
    with pytest.raises(FusionError, match=r"same frame rate.*'main': \[10\], 'wide': \[5\]"):
        fuse(embeds, [torch.tensor([10]), torch.tensor([5])], "frame", names=["main", "wide"])


def test_spec_errors_inside_a_branch_name_the_branch_path():
    bad_type = fusion_spec()
    bad_type["fusion"]["branches"][0]["encoder"]["type"] = "toy-encodr"
    with pytest.raises(SpecError, match=r"fusion\.branches\.0\.encoder\.type: .*toy-encoder"):
        validate_spec(bad_type)
    bad_field = fusion_spec()
    bad_field["fusion"]["branches"][0]["encoder"]["dims"] = 3
    with pytest.raises(SpecError, match=r"fusion\.branches\.0\.encoder\.dims: unknown field"):
        validate_spec(bad_field)
    clash = fusion_spec()
    clash["fusion"]["branches"].append(copy.deepcopy(BRANCH))
    with pytest.raises(SpecError, match="unique"):
        validate_spec(clash)


def test_a_fused_model_splices_both_branches_and_trains_both_projectors():
    model = build_model(validate_spec(fusion_spec()))
    preprocess = model.preprocessor()
    assert isinstance(preprocess, BranchPreprocessor) and model.modality == "audio"
    generator = torch.Generator().manual_seed(0)
    raws = [RawAudio(0.1 * torch.randn(n, generator=generator), 16000) for n in (4000, 2500)]
    features, lengths = pad([preprocess(raw) for raw in raws])
    assert isinstance(features, PerBranch) and set(features) == {"main", "wide"}
    main = model.projector.output_lengths(model.encoder.output_lengths(lengths["main"]))
    wide_branch = model.branches["wide"]
    wide = wide_branch.projector.output_lengths(wide_branch.encoder.output_lengths(lengths["wide"]))
    assert model.modality_lengths(lengths).tolist() == (main + wide).tolist()
    embeds, embed_lengths = model.encode(features, lengths)
    assert embed_lengths.tolist() == (main + wide).tolist() and embeds.shape[1] == int((main + wide).max())
    model.train()
    text = model.text_inputs([{"key": "a", "target": "alpha"}, {"key": "b", "target": "bravo echo"}])
    model(features, lengths, text).loss.backward()
    for projector in (model.projector, wide_branch.projector):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in projector.parameters())
    assert all(p.grad is None for p in wide_branch.encoder.parameters())  # frozen encoders


def test_fused_pipeline_trains_from_a_manifest_with_an_encoder_cache_per_branch(tmp_path):
    data = {
        "train_manifest": write_split(tmp_path, "train", 6, 0),
        "valid_manifest": write_split(tmp_path, "valid", 2, 1),
        "batch_size": 3,
        "num_workers": 0,
    }
    cache = tmp_path / "cache"
    spec = validate_spec(fusion_spec(data=data, train={"epochs": 2, "encoder_cache_dir": str(cache), "keep_last": 1}))
    result = train(spec, run_dir=tmp_path / "run")
    assert result.step == 4 and all(torch.isfinite(torch.tensor(v)) for v in result.losses.values())
    assert len(list(cache.iterdir())) == 2  # one fingerprint folder per encoder
    assert all(len(list(folder.rglob("*.safetensors"))) == 8 for folder in cache.iterdir())
