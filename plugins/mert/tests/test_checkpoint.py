"""Loading checkpoints: what is accepted, and a named error for everything else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from slam_plugin_mert.encoder import MERTEncoder
from slam_plugin_mert.plugin import MERTEncoderConfig

from slam_core.errors import CheckpointError


def build(path: Path, **settings) -> MERTEncoder:
    return MERTEncoder(MERTEncoderConfig(path=str(path), **settings))


def edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def edit_weights(directory: Path, edit) -> None:
    weights = directory / "pytorch_model.bin"
    state = torch.load(weights, weights_only=True)
    edit(state)
    torch.save(state, weights)


def test_loads_the_released_layout_with_weight_norm_g_and_v(checkpoint_copy):
    directory = checkpoint_copy()
    state = torch.load(directory / "pytorch_model.bin", weights_only=True)
    encoder = build(directory)
    conv = encoder.model.encoder.pos_conv_embed.conv.parametrizations.weight
    assert torch.equal(conv.original0, state["encoder.pos_conv_embed.conv.weight_g"])
    assert torch.equal(conv.original1, state["encoder.pos_conv_embed.conv.weight_v"])
    assert (encoder.sample_rate, encoder.frame_rate, encoder.output_dim) == (24000, 75.0, 32)


def test_missing_folder_and_config_are_named(tmp_path):
    with pytest.raises(CheckpointError, match=r"folder .*nowhere does not exist"):
        build(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match=r"config\.json not found"):
        build(tmp_path)


@pytest.mark.parametrize("model_type", ["wav2vec2", "whisper", None])
def test_another_model_type_is_named_with_the_file(checkpoint_copy, model_type):
    directory = checkpoint_copy()
    edit_json(directory / "config.json", model_type=model_type)
    with pytest.raises(CheckpointError, match=rf"config\.json: model_type {model_type!r} is not a MERT checkpoint"):
        build(directory)


def test_unreadable_config_is_named(checkpoint_copy):
    directory = checkpoint_copy()
    (directory / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: not readable JSON"):
        build(directory)


def test_missing_weights_are_named(checkpoint_copy):
    directory = checkpoint_copy()
    (directory / "pytorch_model.bin").unlink()
    with pytest.raises(CheckpointError, match=r"no weights found; expected one of .*pytorch_model\.bin"):
        build(directory)


def test_weights_of_another_shape_are_refused_naming_keys(checkpoint_copy):
    directory = checkpoint_copy()
    edit_json(directory / "config.json", intermediate_size=48)
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin does not hold .* wrong shape keys: .*\[64\]"):
        build(directory)


def test_missing_and_foreign_keys_are_refused(checkpoint_copy):
    directory = checkpoint_copy()
    edit_weights(directory, lambda s: s.pop("encoder.layers.1.final_layer_norm.bias"))
    with pytest.raises(CheckpointError, match=r"missing keys: encoder\.layers\.1\.final_layer_norm\.bias"):
        build(directory)
    directory = checkpoint_copy("mert-tiny-330m")
    edit_weights(directory, lambda s: s.update({"lm_head.weight": torch.zeros(3, 32)}))
    with pytest.raises(CheckpointError, match=r"unexpected keys: lm_head\.weight"):
        build(directory)


def test_pretraining_only_keys_are_ignored(checkpoint_copy):
    """masked_spec_embed (in every released file) and a CQT front end's buffers load without complaint."""
    directory = checkpoint_copy()
    edit_weights(directory, lambda s: s.update({"feature_extractor_cqt.cqt_kernels_real": torch.zeros(2, 1, 8)}))
    assert "masked_spec_embed" in torch.load(directory / "pytorch_model.bin", weights_only=True)
    encoder = build(directory)
    assert not any("masked_spec_embed" in k or "cqt" in k for k in encoder.state_dict())


@pytest.mark.parametrize("flag", ["feature_extractor_cqt", "deepnorm"])
def test_variants_we_cannot_run_are_refused(checkpoint_copy, flag):
    directory = checkpoint_copy()
    edit_json(directory / "config.json", **{flag: True})
    with pytest.raises(CheckpointError, match=rf"config\.json: {flag} is true, which this encoder does not implement"):
        build(directory)


def test_hubert_checkpoints_are_accepted_at_their_own_rate(checkpoint_copy):
    directory = checkpoint_copy()
    config = json.loads((directory / "config.json").read_text())
    del config["sample_rate"]
    config["model_type"] = "hubert"
    (directory / "config.json").write_text(json.dumps(config))
    encoder = build(directory)
    assert (encoder.sample_rate, encoder.frame_rate) == (16000, 50.0)


def test_layer_out_of_range_is_named(checkpoint_copy):
    directory = checkpoint_copy()
    assert len(build(directory, layer=-4).model.encoder.layers) == 0
    with pytest.raises(
        ValueError, match=r"layer 4 is out of range: the model has 3 layers, i\.e\. hidden states 0\.\.3"
    ):
        build(directory, layer=4)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"path": "x", "shape": {"hidden_size": 8}},
            r"mert: path x is a checkpoint, which defines its own shape; drop shape \(it describes a random-init "
            r"model\) or set path: null",
        ),
        ({"path": "x", "size": "95m"}, r"mert: path x is a checkpoint, .*; drop size \(it describes"),
        ({"shape": {"hidden_sise": 8}}, r"shape\.hidden_sise\n  Extra inputs are not permitted"),
        (
            {"shape": {"num_hidden_layers": 8}},
            r"mert: 'num_hidden_layers' is now 'shape\.num_layers' \(see docs/spec\.md\)",
        ),
        ({"overrides": {"hidden_size": 8}}, r"mert: 'overrides' is now 'shape' \(see docs/spec\.md\)"),
        ({"num_layers": 2}, r"mert: 'num_layers' is now 'shape\.num_layers' \(see docs/spec\.md\)"),
        ({"layer": 13}, r"layer 13 is out of range: the model has 12 layers, i\.e\. hidden states 0\.\.12"),
        (
            {"size": "330m", "layer": -26},
            r"layer -26 is out of range: the model has 24 layers, .*-25\.\.-1 from the end",
        ),
        ({"shape": {"num_layers": 2}, "layer": 3}, "layer 3 is out of range: the model has 2 layers"),
        ({"layer": "mean"}, "weighted"),
        ({"max_seconds": 0}, "greater than 0"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValidationError, match=message):
        MERTEncoderConfig.model_validate(settings)


def test_shape_covers_every_preset_field_under_its_config_json_name():
    from slam_plugin_mert.plugin import MERTShape
    from slam_plugin_mert.presets import PRESETS

    upstream = {MERTShape.upstream_names.get(name, name) for name in MERTShape.model_fields}
    assert upstream == set(PRESETS["95m"]) - {"model_type"}
    config = MERTEncoderConfig(size="330m", shape={"num_layers": 2, "layer_norm_first": False, "conv_pos_kernel": 8})
    preset = config.preset()
    assert (preset["num_hidden_layers"], preset["do_stable_layer_norm"], preset["num_conv_pos_embeddings"]) == (
        2,
        False,
        8,
    )
    assert preset["hidden_size"] == 1024


def test_config_module_imports_no_torch():
    code = "import sys, slam_plugin_mert.plugin; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def expected_parameters(width: int, ffn: int, layers: int) -> int:
    """MERT-v1's parameter count from its architecture (7 bias-free convs of 512 channels, ...)."""
    convs = 512 * 10 + 2 * 512 + 512 * 512 * (3 + 3 + 3 + 3 + 2 + 2)  # first conv has its GroupNorm affine
    projection = 2 * 512 + 512 * width + width
    positional = 128 + width * (width // 16) * 128 + width  # weight-norm g [1, 1, 128], v, bias
    layer = 4 * (width * width + width) + 4 * width + 2 * width * ffn + ffn + width
    return convs + projection + positional + 2 * width + layers * layer


def test_random_init_presets_have_the_released_shapes():
    """Built on the meta device: nothing is allocated, the counts follow from the architecture."""
    with torch.device("meta"):
        counts = {
            size: sum(p.numel() for p in MERTEncoder(MERTEncoderConfig(size=size)).parameters())
            for size in ("95m", "330m")
        }
    assert counts == {"95m": expected_parameters(768, 3072, 12), "330m": expected_parameters(1024, 4096, 24)}
    assert 94e6 < counts["95m"] < 96e6 and 310e6 < counts["330m"] < 320e6  # the names' orders of magnitude


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_a_pickle_that_runs_code_is_refused_naming_the_file(checkpoint_copy, capsys):
    directory = checkpoint_copy()
    edit_weights(directory, lambda state: state.update(payload=_Payload()))
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: cannot load the MERT weights: .*weights_only"):
        build(directory)
    assert "this must never run" not in capsys.readouterr().out
