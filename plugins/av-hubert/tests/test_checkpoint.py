"""av-hubert: reading fairseq checkpoints (every layout) without running their pickles, and loading errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap

import pytest
import torch
from avhubert_testing import FIXTURES, raw_clips, run_batch
from safetensors.torch import save_file
from slam_plugin_av_hubert.checkpoint import model_config, read_checkpoint
from slam_plugin_av_hubert.encoder import AVHubertEncoder
from slam_plugin_av_hubert.plugin import AVHubertConfig
from slam_plugin_av_hubert.safe_pickle import InertObject, plain, read_pickled

from slam_core.errors import CheckpointError

PRETRAINED = FIXTURES / "avhubert-tiny.pt"
FINE_TUNED = FIXTURES / "avhubert-tiny-s2s.pt"


def encoder_for(path, **config) -> AVHubertEncoder:
    return AVHubertEncoder(AVHubertConfig(path=str(path), **config)).eval()


@pytest.fixture(scope="module")
def released():
    """The pretrained fixture, read: its encoder state dict (fairseq names) and model config."""
    checkpoint = read_checkpoint(PRETRAINED)
    return checkpoint.state, checkpoint.model_cfg


def save_fairseq(path, model_state, model_cfg=None, **extra) -> str:
    torch.save({"args": None, "cfg": {"model": model_cfg} if model_cfg else None, "model": model_state, **extra}, path)
    return str(path)


def video_output(path, reference) -> torch.Tensor:
    output, _ = run_batch(encoder_for(path, modality="video"), raw_clips(reference, "video"))
    return output


# ----------------------------------------------------------------------------- layouts


def test_pretrained_layout_ignores_pretraining_heads_and_unused_frontend():
    checkpoint = read_checkpoint(PRETRAINED)
    assert checkpoint.layout == "pretrained AVHubertModel"
    assert checkpoint.ignored["pretraining-only"] == (
        "final_proj.bias",
        "final_proj.weight",
        "label_embs_concat",
        "mask_emb",
    )
    assert checkpoint.resnet_widths == (2, 4, 8, 16)
    assert checkpoint.model_cfg["encoder_layers"] == 2 and checkpoint.model_cfg["layer_norm_first"] is True
    report = encoder_for(PRETRAINED, modality="video").load_report
    assert report["not used with modality: video"] == (
        "feature_extractor_audio.proj.bias",
        "feature_extractor_audio.proj.weight",
    )
    assert "not used with modality: video" not in encoder_for(PRETRAINED, modality="audio-visual").load_report


def test_fine_tuned_seq2seq_layout_reads_the_encoder_and_its_config_from_w2v_args():
    checkpoint = read_checkpoint(FINE_TUNED)
    assert checkpoint.layout == "fine-tuned AVHubertSeq2Seq"
    assert all(k.startswith("decoder.") for k in checkpoint.ignored["outside the encoder (decoder / output layer)"])
    assert {v.dtype for k, v in checkpoint.state.items() if "num_batches" not in k} == {torch.float16}
    # the architecture comes from cfg.model.w2v_args, an omegaconf DictConfig in this file
    assert "omegaconf.dictconfig.DictConfig" in checkpoint.stand_ins
    assert checkpoint.model_cfg == read_checkpoint(PRETRAINED).model_cfg


def test_ctc_layout_and_parametrized_weight_norm_names_load(released, reference, tmp_path):
    state, cfg = released
    renamed = {}
    for key, value in state.items():
        key = key.replace("pos_conv.0.weight_g", "pos_conv.0.parametrizations.weight.original0")
        key = key.replace("pos_conv.0.weight_v", "pos_conv.0.parametrizations.weight.original1")
        renamed[f"w2v_encoder.w2v_model.{key}"] = value
    renamed["w2v_encoder.proj.weight"] = torch.zeros(5, 32)
    path = save_fairseq(tmp_path / "ctc.pt", renamed, {"_name": "av_hubert_ctc", "w2v_args": {"model": cfg}})
    checkpoint = read_checkpoint(path)
    assert checkpoint.layout == "fine-tuned AVHubertCtc"
    assert checkpoint.ignored["outside the encoder (decoder / output layer)"] == ("w2v_encoder.proj.weight",)
    torch.testing.assert_close(video_output(path, reference), video_output(PRETRAINED, reference), atol=0, rtol=0)


def test_old_checkpoints_with_an_argparse_namespace_give_their_shape(released, reference, tmp_path):
    state, cfg = released
    path = tmp_path / "old.pt"
    torch.save({"args": argparse.Namespace(**cfg), "cfg": None, "model": state}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint.stand_ins == ("argparse.Namespace",)
    assert checkpoint.model_cfg == cfg
    torch.testing.assert_close(video_output(path, reference), video_output(PRETRAINED, reference), atol=0, rtol=0)


def test_plain_turns_configuration_stand_ins_into_dicts():
    blob, stand_ins = read_pickled(FINE_TUNED)
    assert {"fairseq.data.dictionary.Dictionary", "omegaconf.dictconfig.DictConfig"} <= set(stand_ins)
    dictionary = blob["task_state"]["target_dictionary"]
    assert isinstance(dictionary, InertObject) and dictionary.state["symbols"][-2:] == ["hello", "world"]
    cfg = plain(blob["cfg"])
    assert cfg["model"]["w2v_args"]["task"]["labels"] == ["km"]
    assert model_config(blob)["encoder_embed_dim"] == 32


# ----------------------------------------------------------------------------- pickle safety

PAYLOAD_MODULE = """
from pathlib import Path
MARKERS = Path(__file__).parent / "markers"
MARKERS.mkdir(exist_ok=True)
(MARKERS / "imported").touch()


def trigger(name):
    (MARKERS / name).touch()
    return name


class Reduced:
    def __reduce__(self):
        return (trigger, ("reduced",))


class Stateful:
    def __init__(self):
        self.value = 1

    def __setstate__(self, state):
        trigger("setstate")
"""


def write_payload_checkpoint(tmp_path, state, extra: str = "") -> tuple[str, list[str]]:
    """A checkpoint whose pickle holds objects that touch marker files when imported, reduced or restored.

    Written by a separate process, so that this one never imports the payload module; that process then
    loads it back with ``weights_only=False`` (the payload module forgotten first) and returns the markers
    this made: proof that the payload is live.
    """
    (tmp_path / "payload_mod.py").write_text(PAYLOAD_MODULE)
    torch.save(state, tmp_path / "state.pt")
    path = tmp_path / "evil.pt"
    script = textwrap.dedent(
        f"""
        import shutil, sys, torch
        sys.path.insert(0, {str(tmp_path)!r})
        import payload_mod
        state = torch.load({str(tmp_path / "state.pt")!r}, weights_only=True)
        blob = {{"args": None, "cfg": {{"model": state.pop("cfg")}}, "model": state,
                 "task_state": {{"payload": [payload_mod.Reduced(), payload_mod.Stateful()]}}}}
        {extra}
        torch.save(blob, {str(path)!r})
        shutil.rmtree(payload_mod.MARKERS)
        if not {bool(extra)}:
            del sys.modules["payload_mod"]
            torch.load({str(path)!r}, weights_only=False)
            print(" ".join(sorted(p.name for p in payload_mod.MARKERS.iterdir())))
            shutil.rmtree(payload_mod.MARKERS)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return str(path), result.stdout.split()


def test_pickled_objects_are_never_imported_constructed_or_restored(released, reference, tmp_path, monkeypatch):
    state, cfg = released
    path, unrestricted = write_payload_checkpoint(tmp_path, {**state, "cfg": cfg})
    assert unrestricted == ["imported", "reduced", "setstate"]  # what an unrestricted torch.load runs

    monkeypatch.syspath_prepend(str(tmp_path))  # importable, should anything try
    encoder = encoder_for(path, modality="video")
    assert "payload_mod" not in sys.modules
    assert not (tmp_path / "markers").exists(), "code from the checkpoint ran"
    assert {"payload_mod.trigger", "payload_mod.Stateful"} <= set(read_checkpoint(path).stand_ins)
    output, _ = run_batch(encoder, raw_clips(reference, "video"))
    torch.testing.assert_close(output, video_output(PRETRAINED, reference), atol=0, rtol=0)


def test_a_pickle_calling_os_functions_is_refused_without_running(released, tmp_path):
    state, cfg = released
    command = f"touch {tmp_path}/pwned"
    extra = (
        f"import os; blob['extra_state'] = type('X', (), {{'__reduce__': lambda self: (os.system, ({command!r},))}})()"
    )
    path, _ = write_payload_checkpoint(tmp_path, {**state, "cfg": cfg}, extra)
    with pytest.raises(CheckpointError, match=r"refusing a pickle that references posix\.system"):
        read_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


# ----------------------------------------------------------------------------- errors


def test_missing_file_is_named():
    with pytest.raises(CheckpointError, match=r"nowhere\.pt does not exist; set encoder\.path"):
        read_checkpoint("/nowhere.pt")


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        ([1, 2, 3], r"not a fairseq checkpoint: expected a dict with a 'model' state dict, found list"),
        ({"cfg": {}, "weights": {}}, r"found a dict with keys \['cfg', 'weights'\]"),
        ({"model": {"fc.weight": torch.zeros(2)}}, r"no AV-HuBERT weights found: .* found fc\.weight"),
    ],
)
def test_files_that_are_not_av_hubert_checkpoints_are_named(blob, message, tmp_path):
    torch.save(blob, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match=message):
        read_checkpoint(tmp_path / "other.pt")


def test_legacy_format_is_refused_with_a_way_out(released, tmp_path):
    torch.save({"model": released[0]}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"not a zip checkpoint .* re-save it with torch\.save"):
        read_checkpoint(tmp_path / "legacy.pt")


def test_missing_and_misshapen_keys_are_listed(released, tmp_path):
    state, cfg = released
    state = dict(state)
    del state["encoder.layers.1.fc1.bias"]
    state["post_extract_proj.weight"] = torch.zeros(3, 3)
    with pytest.raises(CheckpointError) as error:
        encoder_for(save_fairseq(tmp_path / "broken.pt", state, cfg), modality="video")
    message = str(error.value)
    assert "missing keys: encoder.layers.1.fc1.bias" in message
    assert "wrong shapes: post_extract_proj.weight [3, 3] (expected [32, 64])" in message


def test_config_disagreeing_with_the_weights_is_reported(released, tmp_path):
    state, cfg = released
    with pytest.raises(CheckpointError, match=r"missing keys: encoder\.layers\.2\..*"):
        encoder_for(save_fairseq(tmp_path / "deeper.pt", state, {**cfg, "encoder_layers": 3}), modality="video")
    with pytest.raises(
        CheckpointError, match=r"\(encoder_embed_dim\) 32 is not divisible by num_heads \(encoder_attention_heads\) 5"
    ):
        encoder_for(save_fairseq(tmp_path / "heads.pt", state, {**cfg, "encoder_attention_heads": 5}))
    with pytest.raises(CheckpointError, match=r"sub_encoder_layers = 2 .* is not supported"):
        encoder_for(save_fairseq(tmp_path / "sub.pt", state, {**cfg, "sub_encoder_layers": 2}))


def test_unreadable_safetensors_and_out_of_range_layer(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match=r"bad\.safetensors: not a readable safetensors file"):
        read_checkpoint(tmp_path / "bad.safetensors")
    with pytest.raises(ValueError, match=r"layer 3 is out of range: the model has 2"):
        encoder_for(PRETRAINED, layer=3)


def test_safetensors_with_the_wrong_size_names_the_mismatch(tmp_path):
    encoder = encoder_for(PRETRAINED, modality="video")
    save_file({k: v.contiguous() for k, v in encoder.state_dict().items()}, tmp_path / "tiny.safetensors")
    with pytest.raises(CheckpointError, match=r"missing keys: encoder\.layers\.10\..*wrong shapes: "):
        encoder_for(tmp_path / "tiny.safetensors", modality="video", size="base")
