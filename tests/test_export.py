"""`slam export`: the self-describing folder (same text as the run, with nothing of the run left) and the
native Voxtral folder (transformers' class gives the same logits and greedy text)."""

from __future__ import annotations

import json
import shutil

import pytest
import soundfile
import torch
from support.synthetic import train_synthetic
from support.tiny_models import save_tiny_llama, whisper_llama_spec

from slam_core.audio import RawAudio
from slam_core.errors import CheckpointError, ExportError
from slam_core.model import build_model
from slam_core.runtime.cli import main
from slam_core.runtime.export import folder, voxtral
from slam_core.runtime.export.writer import export_run
from slam_core.runtime.infer.decode import decode
from slam_core.runtime.infer.weights import load_trained
from slam_core.spec import validate_spec

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def clip(seed: int, seconds: float) -> RawAudio:
    return RawAudio(0.1 * torch.randn(int(seconds * 16000), generator=torch.Generator().manual_seed(seed)), 16000)


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("llm") / "tiny-llama")


@pytest.fixture(scope="module")
def run(tmp_path_factory, llm_dir):
    """A run of the Voxtral-shaped composition (Whisper → gelu projector without biases → Llama + LoRA)."""
    spec = whisper_llama_spec(llm_dir, bias=False, activation="gelu")
    spec["train"] |= {"lr": 0.05, "warmup_steps": 0, "max_steps": 3}
    run_dir = tmp_path_factory.mktemp("run") / "run"
    trained = train_synthetic(spec, run_dir, batches=3, batch_size=2).model.eval()
    loaded = load_trained(run_dir)[1]  # built from train.seed as training built it: the random encoder too
    torch.testing.assert_close(logits_of(loaded, clip(9, 1.0)), logits_of(trained, clip(9, 1.0)))
    return run_dir


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    directory = tmp_path_factory.mktemp("data")
    rows = []
    for index, seconds in enumerate((0.5, 1.2, 1.9)):
        soundfile.write(directory / f"u{index}.wav", clip(index, seconds).waveform.numpy(), 16000)
        rows.append({"key": f"u{index}", "source": f"u{index}.wav", "target": "hello"})
    path = directory / "test.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def logits_of(model, raw: RawAudio) -> torch.Tensor:
    features = model.encoder.preprocess(raw)[None]
    text = model.text_inputs([{"key": "x"}], with_targets=False)
    with torch.no_grad():
        return model.eval()(features, torch.tensor([features.shape[1]]), text).logits


def hypotheses(path) -> dict[str, str]:
    return {r["key"]: r["hypothesis"] for r in map(json.loads, path.read_text().splitlines())}


def test_the_export_decodes_the_runs_text_with_the_run_and_the_llm_folder_gone(tmp_path, run, llm_dir, manifest):
    spec, _, _ = load_trained(run)
    expected = hypotheses(decode(spec, tmp_path / "run.jsonl", checkpoint=run, manifest=manifest, device="cpu"))
    reference = logits_of(load_trained(run)[1], clip(7, 1.0))
    assert main(["export", str(run), str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    record = json.loads((out / folder.EXPORT_FILE).read_text())
    assert (record["format"], record["adapter"], record["exported_from"]["checkpoint"]) == (
        "slam",
        "merged",
        "step-00000003",
    )
    text = (out / folder.SPEC_FILE).read_text()
    assert str(run) not in text and str(llm_dir) not in text and str(manifest.parent) not in text
    document = json.loads(text)
    assert document["peft"] is None and document["llm"]["path"] == "inputs/llm.path/tiny-llama"
    assert (out / "tokenizer" / "tokenizer.json").is_file() and not list(tmp_path.glob(".tmp-*"))
    hidden = llm_dir.with_name("moved-away")
    llm_dir.rename(hidden)  # nothing of the run or of the files its spec names is read any more
    shutil.move(run, run.with_name("run-moved"))
    try:
        assert main(["infer", str(out), "--manifest", str(manifest), "--output", str(tmp_path / "export.jsonl")]) == 0
        assert hypotheses(tmp_path / "export.jsonl") == expected
        spec, model, weights = load_trained(out)
        assert weights == out / folder.WEIGHTS_FILE and spec.peft is None
        torch.testing.assert_close(logits_of(model, clip(7, 1.0)), reference, atol=1e-5, rtol=1e-4)
    finally:
        hidden.rename(llm_dir)
        shutil.move(run.with_name("run-moved"), run)


def test_the_weights_file_holds_only_what_the_exported_spec_does_not_build(tmp_path, run):
    from safetensors import safe_open

    export_run(run, tmp_path / "out")
    with safe_open(tmp_path / "out" / folder.WEIGHTS_FILE, "pt") as weights:
        names = set(weights.keys())
    adapted = {f"llm.model.model.layers.{i}.self_attn.{p}_proj.weight" for i in range(2) for p in "qkvo"}
    assert {n for n in names if n.startswith("llm.")} == adapted  # the LoRA-merged layers; the rest is the copy's
    assert {"projector.linear1.weight", "projector.linear2.weight"} <= names
    assert "encoder.model.layers.0.fc1.weight" in names  # a randomly initialised frozen encoder is stored


def test_keep_adapter_exports_the_adapter_apart_with_the_same_logits(tmp_path, run):
    reference = logits_of(load_trained(run)[1], clip(3, 0.8))
    export_run(run, tmp_path / "out", keep_adapter=True)
    out = tmp_path / "out"
    assert json.loads((out / folder.EXPORT_FILE).read_text())["adapter"] == "kept"
    assert json.loads((out / folder.SPEC_FILE).read_text())["peft"]["type"] == "lora"
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["peft_type"] == "LORA"
    model = load_trained(out)[1]
    assert model.peft is not None
    torch.testing.assert_close(logits_of(model, clip(3, 0.8)), reference, atol=1e-5, rtol=1e-4)


def test_slam_serve_loads_an_export_and_transcribes_as_the_run(tmp_path, run):
    from slam_core.runtime.serve.transcriber import Transcriber

    export_run(run, tmp_path / "out")
    clips = [clip(1, 0.6), clip(2, 1.5)]
    exported = Transcriber.load(tmp_path / "out", device="cpu")
    assert exported.checkpoint == tmp_path / "out" / folder.WEIGHTS_FILE
    assert exported.transcribe(clips) == Transcriber.load(run, device="cpu").transcribe(clips)


def test_an_export_replaces_an_earlier_one_and_refuses_any_other_folder(tmp_path, run):
    export_run(run, tmp_path / "out")
    export_run(run, tmp_path / "out", keep_adapter=True)
    assert json.loads((tmp_path / "out" / folder.EXPORT_FILE).read_text())["adapter"] == "kept"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(ExportError, match="mine: a folder that is not an export is there; choose another"):
        export_run(run, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_infer_on_an_export_needs_a_manifest_and_no_checkpoint(tmp_path, run, capsys):
    export_run(run, tmp_path / "out")
    assert main(["infer", str(tmp_path / "out"), "--output", str(tmp_path / "h.jsonl")]) == 2
    assert "is an export, which names no data: give the manifest to decode (--manifest)" in capsys.readouterr().err
    with pytest.raises(CheckpointError, match="not an export folder"):
        folder.load_export_spec(tmp_path)


def test_the_voxtral_export_loads_in_transformers_with_the_same_logits_and_greedy_text(tmp_path, run):
    from transformers import AutoTokenizer, VoxtralForConditionalGeneration, WhisperFeatureExtractor

    assert main(["export", str(run), str(tmp_path / "vox"), "--format", "voxtral"]) == 0
    out = tmp_path / "vox"
    native, info = VoxtralForConditionalGeneration.from_pretrained(out, output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"])
    native.eval()
    record = json.loads((out / folder.EXPORT_FILE).read_text())
    assert (record["model_class"], record["audio_positions_per_window"]) == ("VoxtralForConditionalGeneration", 25)
    extractor, tokenizer = WhisperFeatureExtractor.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    _, model, _ = load_trained(run)
    model.eval()
    for seed, seconds in ((0, 0.7), (1, 1.9)):
        raw = clip(seed, seconds)
        features = extractor(raw.waveform.numpy(), sampling_rate=16000, return_tensors="pt").input_features
        ids = voxtral.input_ids(record)
        with torch.no_grad():
            logits = native(input_ids=ids, input_features=features).logits
            generated = native.generate(input_ids=ids, input_features=features, max_new_tokens=5, do_sample=False)
        torch.testing.assert_close(logits, logits_of(model, raw), atol=1e-5, rtol=1e-4)
        ours = model.encoder.preprocess(raw)[None]
        text = model.text_inputs([{"key": "x"}], with_targets=False)
        expected = model.generate(ours, torch.tensor([ours.shape[1]]), text, max_new_tokens=5)
        assert tokenizer.batch_decode(generated[:, ids.shape[1] :], skip_special_tokens=True) == expected


def composition(llm_dir, **changes):
    spec = whisper_llama_spec(llm_dir, bias=False)
    for section, fields in changes.items():
        spec[section] = fields if "type" in fields else {**spec[section], **fields}
    spec = validate_spec(spec)
    return spec, build_model(spec)


@pytest.mark.parametrize(
    "changes, reasons",
    [
        (
            {"encoder": {"mode": "variable"}, "projector": {"bias": True, "hidden_dim": 16}},
            "encoder.mode variable: Voxtral encodes whole padded windows (train with mode: pad_to_30s); projector.bias "
            "true: Voxtral's projector has no biases (train with bias: false); projector.hidden_dim 16: Voxtral's is "
            "the LLM's hidden size 32",
        ),
        ({"projector": {"k": 5}}, "projector.k 5: Voxtral stacks encoder_ffn_dim / d_model = 64 / 16 frames"),
        (
            {"encoder": {"hop_length": 320}},
            "encoder.hop_length 320: Voxtral's feature extractor has Whisper's hop of 160",
        ),
        (
            {"encoder": {"type": "toy-encoder", "shape": {"num_mel_bins": 8, "hidden_size": 16}}},
            "encoder toy-encoder has no native transformers counterpart in Voxtral (a Whisper encoder)",
        ),
        (
            {"projector": {"type": "conv1d-projector", "k": 4}},
            "projector conv1d-projector: Voxtral's projector is a linear-projector's",
        ),
    ],
)
def test_a_composition_voxtral_does_not_compute_is_refused_naming_why(llm_dir, changes, reasons):
    spec, model = composition(llm_dir, **changes)
    with pytest.raises(ExportError) as error:
        voxtral.check_composition(spec, model)
    assert (
        str(error.value)
        == f"cannot export to voxtral: {reasons}; use the default self-describing export (--format slam)"
    )


def test_the_audio_token_is_a_spare_special_token_or_the_one_asked_for(llm_dir):
    _, model = composition(llm_dir)
    assert voxtral.audio_token(model) == model.llm.tokenizer.convert_tokens_to_ids("<pad>")  # pad is EOS here
    assert voxtral.audio_token(model, 200) == 200
    used = voxtral.prompt_ids(model)[0]
    with pytest.raises(ExportError, match=f"--audio-token-id {used}: must be a token id below 259"):
        voxtral.audio_token(model, used)


def test_keep_adapter_and_an_unknown_format_are_refused(tmp_path, run):
    with pytest.raises(ExportError, match="the voxtral format holds merged weights only"):
        export_run(run, tmp_path / "o", format="voxtral", keep_adapter=True)
    with pytest.raises(ExportError, match="unknown export format 'onnx'"):
        export_run(run, tmp_path / "o", format="onnx")
    with pytest.raises(ExportError, match=r"options \['audio_token_id'\] are for --format voxtral only"):
        export_run(run, tmp_path / "o", format="slam", audio_token_id=3)
    assert not (tmp_path / "o").exists()
