"""Loading Hugging Face directories and OpenAI .pt files, parity after loading, and wrong checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from slam_plugin_whisper.checkpoint import openai_to_hf_name
from transformers import LlamaConfig, LlamaForCausalLM, WhisperConfig, WhisperForConditionalGeneration, WhisperModel

from slam_core.errors import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures"
HF_SHAPE = {
    "d_model": 32,
    "encoder_layers": 2,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 48,
    "decoder_layers": 1,
    "decoder_attention_heads": 4,
    "decoder_ffn_dim": 48,
    "num_mel_bins": 80,
    "max_source_positions": 20,
    "max_target_positions": 16,
    "vocab_size": 64,
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "decoder_start_token_id": 3,
}


def save_hf(model_class, directory, **options):
    torch.manual_seed(7)
    model = model_class(WhisperConfig(**HF_SHAPE)).eval()
    model.save_pretrained(directory, **options)
    return model


def encoder_of(model) -> torch.nn.Module:
    return model.get_encoder() if hasattr(model, "get_encoder") else model.encoder


def assert_same_encoder(loaded, reference_model) -> None:
    mel = torch.randn(1, 40, 80, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = encoder_of(reference_model)(mel.transpose(1, 2)).last_hidden_state
        hidden, lengths = loaded(mel, torch.tensor([40]))
    assert lengths.tolist() == [20]
    torch.testing.assert_close(hidden, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("model_class", [WhisperForConditionalGeneration, WhisperModel])
def test_hf_directory_round_trip(model_class, tmp_path, make_encoder):
    reference = save_hf(model_class, tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    assert_same_encoder(make_encoder(path=str(tmp_path)), reference)


def test_sharded_hf_directory(tmp_path, make_encoder):
    reference = save_hf(WhisperForConditionalGeneration, tmp_path, max_shard_size="40KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert_same_encoder(make_encoder(path=str(tmp_path)), reference)


def test_legacy_pytorch_model_bin(tmp_path, make_encoder):
    reference = save_hf(WhisperForConditionalGeneration, tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(reference.state_dict(), tmp_path / "pytorch_model.bin")
    assert_same_encoder(make_encoder(path=str(tmp_path)), reference)


def test_loaded_encoder_runs_in_the_configured_dtype(tmp_path, make_encoder):
    save_hf(WhisperModel, tmp_path)
    encoder = make_encoder(path=str(tmp_path), dtype="fp16")
    assert {p.dtype for p in encoder.parameters()} == {torch.float16}
    assert encoder.preprocessor().window_frames == 40


def test_openai_checkpoint_matches_openai_whisper(make_encoder, openai_reference):
    """The fixture made by the real openai-whisper package (fp16 weights, see fixtures/README.md)."""
    encoder = make_encoder(path=str(FIXTURES / "tiny_openai.pt"))
    assert (encoder.output_dim, encoder.window_frames, encoder.num_mel_bins) == (32, 32, 80)
    mel = encoder.preprocess(openai_reference["waveform"])
    with torch.no_grad():
        hidden, lengths = encoder(mel[None], torch.tensor([mel.shape[0]]))
    assert lengths.tolist() == [16]
    torch.testing.assert_close(hidden[0], openai_reference["encoder_output"], atol=1e-4, rtol=0)


def test_openai_names_map_to_transformers_names():
    checkpoint = torch.load(FIXTURES / "tiny_openai.pt", weights_only=True)["model_state_dict"]
    mapped = {openai_to_hf_name(k.removeprefix("encoder.")) for k in checkpoint if k.startswith("encoder.")}
    torch.manual_seed(0)
    expected = set(WhisperModel(WhisperConfig(**HF_SHAPE)).encoder.state_dict())
    assert mapped == expected


def test_llama_directory_is_refused(tmp_path, make_encoder):
    config = LlamaConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=50
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"config\.json has model_type 'llama', not 'whisper'"):
        make_encoder(path=str(tmp_path))


def test_pt_without_dims_is_refused(tmp_path, make_encoder):
    file = tmp_path / "model.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, file)
    with pytest.raises(CheckpointError, match=r"model\.pt is not an OpenAI Whisper checkpoint.*found \['state_dict'\]"):
        make_encoder(path=str(file))


def test_pt_with_incomplete_dims_is_refused(tmp_path, make_encoder):
    file = tmp_path / "model.pt"
    torch.save({"dims": {"n_mels": 80}, "model_state_dict": {}}, file)
    with pytest.raises(CheckpointError, match=r"'dims' lacks \['n_audio_ctx'"):
        make_encoder(path=str(file))


def test_pt_with_encoder_tensors_missing_is_refused(tmp_path, make_encoder):
    checkpoint = torch.load(FIXTURES / "tiny_openai.pt", weights_only=True)
    del checkpoint["model_state_dict"]["encoder.ln_post.weight"]
    torch.save(checkpoint, tmp_path / "cut.pt")
    with pytest.raises(CheckpointError, match=r"cut\.pt does not match .* missing \['layer_norm\.weight'\]"):
        make_encoder(path=str(tmp_path / "cut.pt"))


def test_pickled_objects_are_not_unpickled(tmp_path, make_encoder):
    file = tmp_path / "object.pt"
    torch.save({"dims": torch.nn.Linear(2, 2), "model_state_dict": {}}, file)
    with pytest.raises(CheckpointError, match=r"object\.pt cannot be loaded with weights_only=True"):
        make_encoder(path=str(file))


def test_directory_without_weights_is_refused(tmp_path, make_encoder):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    with pytest.raises(CheckpointError, match=r"has no model\.safetensors or pytorch_model\.bin"):
        make_encoder(path=str(tmp_path))


def test_directory_of_another_model_with_a_whisper_config_is_refused(tmp_path, make_encoder):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "whisper"}))
    torch.save({"lm_head.weight": torch.zeros(2, 2)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"hold no Whisper encoder .* found e\.g\. \['lm_head\.weight'\]"):
        make_encoder(path=str(tmp_path))


@pytest.mark.parametrize(("name", "message"), [("missing", "does not exist"), ("weights.npz", "cannot read")])
def test_missing_or_unknown_paths_are_named(name, message, tmp_path, make_encoder):
    if name.endswith(".npz"):
        (tmp_path / name).write_bytes(b"\0")
    with pytest.raises(CheckpointError, match=f"{name}.*{message}|{message}.*{name}"):
        make_encoder(path=str(tmp_path / name))


def test_a_saved_encoder_keeps_its_hop_and_another_hop_is_refused(tmp_path, make_encoder, audio):
    from safetensors.torch import save_file

    trained = make_encoder(hop_length=320)
    trained.model.config.save_pretrained(tmp_path)  # config.json records the hop
    save_file({k: v.contiguous() for k, v in trained.model.state_dict().items()}, tmp_path / "model.safetensors")
    assert json.loads((tmp_path / "config.json").read_text())["slam_hop_length"] == 320
    reloaded = make_encoder(path=str(tmp_path), hop_length=320)
    features = reloaded.preprocessor()(audio(16000))
    with torch.no_grad():
        expected = trained(features[None], torch.tensor([features.shape[0]]))[0]
        torch.testing.assert_close(reloaded(features[None], torch.tensor([features.shape[0]]))[0], expected)
    with pytest.raises(CheckpointError) as error:
        make_encoder(path=str(tmp_path))
    assert str(error.value) == f"whisper: {tmp_path} was trained with hop_length 320; set encoder.hop_length: 320"
