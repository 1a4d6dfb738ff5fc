"""hf-audio: folders, random init, the preprocessor, freezing, and the errors that name what to fix."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from hf_testing import TINY_LLM, save_tiny, tiny_fields, tiny_shape

from slam_core.audio import RawAudio
from slam_core.errors import AudioError, CheckpointError, SpecError
from slam_core.model import build_component, build_model
from slam_core.spec import validate_spec

LLM = {"type": "toy-llm", "shape": TINY_LLM}


def spec(encoder: dict, **train):
    return validate_spec(
        {
            "encoder": encoder,
            "projector": {"type": "linear-projector", "k": 2, "hidden_dim": 8},
            "llm": LLM,
            "task": {"type": "asr"},
            "train": train,
        }
    )


def encoder(**config):
    return build_component("encoder", spec(config).encoder).eval()


def test_a_ctc_fine_tuned_folder_loads_its_encoder_and_ignores_the_head(tmp_path):
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    torch.manual_seed(0)
    ctc = Wav2Vec2ForCTC(Wav2Vec2Config(**tiny_fields("wav2vec2"), vocab_size=12)).eval()
    ctc.save_pretrained(tmp_path)
    ours = encoder(type="wav2vec2", path=str(tmp_path))
    waveform = 0.1 * torch.randn(2000)
    with torch.no_grad():
        hidden, lengths = ours(waveform[None], torch.tensor([2000]))
        expected = ctc.wav2vec2(waveform[None]).last_hidden_state
    torch.testing.assert_close(hidden, expected, atol=2e-5, rtol=0)
    assert lengths.tolist() == [expected.shape[1]]


def test_a_folder_of_another_family_names_both_types(tiny_folder):
    with pytest.raises(CheckpointError, match=r"model_type 'wav2vec2' is not 'wavlm', which encoder type 'wavlm'"):
        encoder(type="wavlm", path=str(tiny_folder("wav2vec2")))


def test_a_missing_folder_or_missing_weights_are_named(tmp_path, tiny_folder):
    with pytest.raises(CheckpointError, match=r"nowhere: no such checkpoint folder"):
        encoder(type="hubert", path=str(tmp_path / "nowhere"))
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(tiny_folder("hubert") / "config.json", bare)
    with pytest.raises(CheckpointError, match=r"bare: no weights found; expected one of \['model.safetensors'"):
        encoder(type="hubert", path=str(bare))


def test_weights_that_do_not_fit_their_config_name_the_missing_keys(tmp_path, tiny_folder):
    folder = shutil.copytree(tiny_folder("hubert"), tmp_path / "hubert")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(CheckpointError, match=r"missing keys: encoder\.layers\.2\."):
        encoder(type="hubert", path=str(folder))


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_runs_code_is_refused_naming_the_file(tmp_path, tiny_folder, capsys):
    from safetensors.torch import load_file

    folder = shutil.copytree(tiny_folder("hubert"), tmp_path / "hubert")
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save({**state, "payload": _Payload()}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: the pickle holds more than tensors"):
        encoder(type="hubert", path=str(folder))
    assert "this must never run" not in capsys.readouterr().out


def test_size_or_shape_with_a_path_and_a_layer_out_of_range_are_spec_errors(tiny_folder):
    path = str(tiny_folder("wav2vec2"))
    with pytest.raises(SpecError, match=r"wav2vec2: path .* is a checkpoint, which defines its own shape; drop size"):
        spec({"type": "wav2vec2", "path": path, "size": "large"})
    with pytest.raises(SpecError, match=r"layer 3 is out of range: the model has 2 layers, i.e. hidden states 0..2"):
        spec({"type": "wav2vec2", "shape": tiny_shape("wav2vec2"), "layer": 3})
    with pytest.raises(SpecError, match=r"wav2vec2: layer -4 is out of range: the model has 2 layers"):
        encoder(type="wav2vec2", path=path, layer=-4)  # the folder's depth is known only once it is read
    with pytest.raises(SpecError, match=r"unknown size 'xl'|Input should be 'base' or 'large'"):
        spec({"type": "wav2vec2", "size": "xl"})


def test_shape_fields_take_the_shared_names_and_the_family_lacks_some():
    with pytest.raises(SpecError, match=r"wav2vec2: 'num_hidden_layers' is now 'shape\.num_layers'"):
        spec({"type": "wav2vec2", "shape": {"num_hidden_layers": 2}})
    with pytest.raises(SpecError, match=r"encoder\.shape\.layer_norm_first: unknown field"):
        spec({"type": "data2vec-audio", "shape": {"layer_norm_first": True}})
    config = spec({"type": "data2vec-audio", "shape": {"num_layers": 2, "conv_pos_kernel": 5, "conv_pos_layers": 3}})
    fields = {"num_hidden_layers": 2, "conv_pos_kernel_size": 5, "num_conv_pos_embeddings": 3}
    assert config.encoder.random_init_fields() == fields


def test_the_preprocessor_refuses_what_gives_no_frame_and_resamples_other_rates():
    ours = encoder(type="wav2vec2", shape=tiny_shape("wav2vec2"))
    preprocess = ours.preprocessor()
    with pytest.raises(AudioError, match=r"39 samples at 16000 Hz is shorter than the 40 samples"):
        preprocess(RawAudio(np.zeros(39, dtype=np.float32), 16000))
    assert preprocess(RawAudio(np.zeros(40, dtype=np.float32), 16000)).shape == (40,)
    assert preprocess(RawAudio(np.zeros(800, dtype=np.float32), 8000)).shape == (1600,)
    strict = encoder(type="wav2vec2", shape=tiny_shape("wav2vec2"), resample=False).preprocessor()
    with pytest.raises(AudioError, match=r"sample rate 8000 Hz but the encoder expects 16000 Hz"):
        strict(RawAudio(np.zeros(800, dtype=np.float32), 8000))


@pytest.mark.parametrize(
    ("stored", "given", "expected"), [(True, None, True), (False, None, False), (True, False, False)]
)
def test_normalisation_follows_the_folders_preprocessor_config(tmp_path, stored, given, expected):
    save_tiny(tmp_path, "wavlm", do_normalize=stored)
    assert encoder(type="wavlm", path=str(tmp_path), normalize=given).preprocessor().normalize is expected


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_the_weights_take_the_spec_dtype(dtype, tiny_folder):
    ours = encoder(type="hubert", path=str(tiny_folder("hubert")), dtype=dtype)
    assert {p.dtype for p in ours.parameters()} == {getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[dtype])}


@pytest.mark.parametrize("layer", [1, "weighted"])
def test_frozen_by_default_but_a_layer_mix_trains(layer, tiny_folder):
    torch.manual_seed(0)
    model = build_model(spec({"type": "wavlm", "path": str(tiny_folder("wavlm")), "layer": layer}))
    trainable = {n for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert trainable == ({"mix.weights"} if layer == "weighted" else set())
    features = 0.1 * torch.randn(2, 3000)
    lengths = torch.tensor([3000, 1700])
    text = model.text_inputs([{"key": "a", "target": "hi"}, {"key": "b", "target": "yo"}])
    model.train()
    model(features, lengths, text).loss.backward()
    assert not model.encoder.model.training
    frames = [(((n - 10) // 5 + 1 - 3) // 2 + 1 - 3) // 2 + 1 for n in lengths.tolist()]  # the tiny conv stack
    assert model.modality_lengths(lengths).tolist() == [f // 2 for f in frames]
    if layer == "weighted":
        assert model.encoder.mix.weights.grad is not None and bool(model.encoder.mix.weights.grad.abs().sum() > 0)


def test_layer_k_keeps_only_the_first_k_layers(tiny_folder):
    assert len(encoder(type="wav2vec2", path=str(tiny_folder("wav2vec2")), layer=1).model.encoder.layers) == 1
    assert len(encoder(type="wav2vec2", path=str(tiny_folder("wav2vec2")), layer=0).model.encoder.layers) == 1
    assert len(encoder(type="wav2vec2", path=str(tiny_folder("wav2vec2"))).model.encoder.layers) == 2
