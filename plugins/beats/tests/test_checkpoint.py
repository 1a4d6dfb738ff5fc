"""beats against Microsoft's reference implementation (fixtures/, see its README) and checkpoint errors."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import torch
from slam_plugin_beats.encoder import BeatsEncoder
from slam_plugin_beats.plugin import BeatsConfig

from slam_core.errors import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures"
CHECKPOINTS = {"iter3": FIXTURES / "tiny_beats.pt", "prenorm": FIXTURES / "tiny_beats_prenorm.pt"}
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference() -> dict[str, torch.Tensor]:
    return torch.load(FIXTURES / "reference.pt", weights_only=True)


def clips(reference) -> list[torch.Tensor]:
    return list(reference["waveforms"].split(reference["num_samples"].tolist()))


def load(name: str) -> BeatsEncoder:
    return BeatsEncoder(BeatsConfig(path=str(CHECKPOINTS[name]))).eval()


def released(name: str = "iter3") -> dict:
    return torch.load(CHECKPOINTS[name], weights_only=True)


def write(tmp_path: Path, blob) -> str:
    path = tmp_path / "model.pt"
    torch.save(blob, path)
    return str(path)


# ----------------------------------------------------------------------------- parity


def test_fbank_matches_upstream(reference):
    preprocess = load("iter3").preprocessor()
    expected = reference["fbank"].split(reference["fbank_frames"].tolist())
    for clip, fbank in zip(clips(reference), expected, strict=True):
        torch.testing.assert_close(preprocess(clip), fbank, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", ["iter3", "prenorm"])
def test_each_clip_matches_upstream(reference, name):
    encoder = load(name)
    expected_lengths = reference[f"{name}/alone_tokens"]
    for index, clip in enumerate(clips(reference)):
        features = encoder.preprocess(clip)[None]
        with torch.no_grad():
            hidden, lengths = encoder(features, torch.tensor([features.shape[1]]))
        assert lengths.item() == expected_lengths[index].item()
        expected = reference[f"{name}/alone_hidden"][index, : lengths.item()]
        torch.testing.assert_close(hidden[0], expected, atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", ["iter3", "prenorm"])
def test_padded_batch_matches_upstream_with_its_padding_mask(reference, name):
    encoder = load(name)
    features = [encoder.preprocess(clip) for clip in clips(reference)]
    lengths = torch.tensor([f.shape[0] for f in features])
    with torch.no_grad():
        hidden, out_lengths = encoder(torch.nn.utils.rnn.pad_sequence(features, batch_first=True), lengths)
    # upstream's token padding mask (from the sample mask the fixture passed) is exactly our lengths
    token_mask = reference[f"{name}/batch_token_mask"]
    assert (~token_mask).sum(dim=1).tolist() == out_lengths.tolist()
    expected = reference[f"{name}/batch_hidden"]
    for row, n in enumerate(out_lengths.tolist()):
        torch.testing.assert_close(hidden[row, :n], expected[row, :n], atol=TOLERANCE, rtol=0)


def test_full_size_model_has_the_checkpoint_key_names():
    """Key names of the released iter3 shape = those of the upstream fixture, with layer indices abstracted."""

    def patterns(keys) -> set[str]:
        return {re.sub(r"\.layers\.\d+\.", ".layers.N.", key) for key in keys}

    full = BeatsEncoder(BeatsConfig()).state_dict()
    assert patterns(full) == patterns(released("iter3")["model"])
    assert sum(".relative_attention_bias." in key for key in full) == 12  # one shared table, named in every layer


def test_loaded_weights_are_the_checkpoint_weights():
    state = released()["model"]
    loaded = load("iter3").state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key


# ----------------------------------------------------------------------------- checkpoint variants and errors


def test_finetuned_checkpoint_predictor_is_ignored(tmp_path, reference):
    blob = released()
    blob["cfg"] = {**blob["cfg"], "finetuned_model": True, "predictor_class": 5}
    blob["model"] = {**blob["model"], "predictor.weight": torch.randn(5, 32), "predictor.bias": torch.randn(5)}
    blob["label_dict"] = {0: "Speech", 1: "Music"}
    finetuned = BeatsEncoder(BeatsConfig(path=write(tmp_path, blob))).eval()
    plain = load("iter3")
    features = plain.preprocess(clips(reference)[0])[None]
    lengths = torch.tensor([features.shape[1]])
    with torch.no_grad():
        torch.testing.assert_close(finetuned(features, lengths)[0], plain(features, lengths)[0], atol=0, rtol=0)
    assert not any(key.startswith("predictor") for key in finetuned.state_dict())


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "BEATs_iter3_plus_AS2M.pt"
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(missing))} does not exist.*path: null"):
        BeatsEncoder(BeatsConfig(path=str(missing)))


def test_not_a_torch_file(tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(path))}: cannot be read with torch.load"):
        BeatsEncoder(BeatsConfig(path=str(path)))


def test_pickled_objects_are_not_unpickled(tmp_path):
    path = write(tmp_path, {"cfg": argparse.Namespace(embed_dim=512), "model": {}})
    with pytest.raises(CheckpointError, match="weights_only=True"):
        BeatsEncoder(BeatsConfig(path=path))


@pytest.mark.parametrize(
    "blob",
    [
        {"state_dict": {"weight": torch.zeros(1)}},
        {"cfg": {"embed_dim": 512}},
        [torch.zeros(1)],
    ],
)
def test_a_file_without_cfg_and_model_is_not_beats(tmp_path, blob):
    with pytest.raises(CheckpointError, match=r"model\.pt: not a BEATs checkpoint: expected a dict with a 'cfg'"):
        BeatsEncoder(BeatsConfig(path=write(tmp_path, blob)))


def test_key_mismatch_names_the_file_and_keys(tmp_path):
    blob = released()
    del blob["model"]["encoder.layers.1.fc2.bias"]
    blob["model"]["quantize.embedding.weight"] = torch.zeros(4, 4)
    with pytest.raises(CheckpointError) as info:
        BeatsEncoder(BeatsConfig(path=write(tmp_path, blob)))
    message = str(info.value)
    assert "model.pt: state dict does not match" in message
    assert "missing keys: encoder.layers.1.fc2.bias" in message
    assert "unexpected keys: quantize.embedding.weight" in message


def test_shape_mismatch_names_the_file(tmp_path):
    blob = released()
    blob["cfg"] = {**blob["cfg"], "encoder_ffn_embed_dim": 64}
    with pytest.raises(CheckpointError, match=r"(?s)model\.pt: tensor shapes do not match its cfg.*fc1\.weight"):
        BeatsEncoder(BeatsConfig(path=write(tmp_path, blob)))


def test_cfg_without_a_patch_size_is_refused(tmp_path):
    blob = released()
    blob["cfg"] = {k: v for k, v in blob["cfg"].items() if k != "input_patch_size"}  # upstream default: -1
    with pytest.raises(CheckpointError, match=r"(?s)'cfg' does not describe a BEATs encoder.*input_patch_size"):
        BeatsEncoder(BeatsConfig(path=write(tmp_path, blob)))


def test_the_checkpoint_decides_the_shape():
    path = str(CHECKPOINTS["iter3"])
    with pytest.raises(ValueError, match=r"beats: path .*tiny_beats\.pt is a checkpoint, which defines its own shape"):
        BeatsConfig(path=path, shape={"num_layers": 2})
    assert BeatsEncoder(BeatsConfig(path=path)).shape.encoder_layers == 2
