"""A SLAM-LLM checkpoint in SLAM: parity with SLAM-LLM's own decoding on the same weights.

``tests/fixtures/slam_llm_asr`` holds a tiny asr_librispeech run made with SLAM-LLM's own model
factory, dataset, forward, checkpoint writer and ``generate`` (its README says how), and what
SLAM-LLM decoded with it. Here ``slam convert slam-llm`` turns its ``model.pt`` into a SLAM
checkpoint for the equivalent spec and SLAM decodes the same tokens, text and logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from slam_core.runtime import cli

FIXTURE = Path(__file__).parent / "fixtures" / "slam_llm_asr"
SPEC = FIXTURE / "spec.yaml"
SLAM_LLM_CHECKPOINT = FIXTURE / "run" / "model.pt"
REFERENCE = json.loads((FIXTURE / "reference.json").read_text())


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("converted") / "checkpoint"
    argv = ["convert", "slam-llm", str(SLAM_LLM_CHECKPOINT), "--spec", str(SPEC), "--output", str(output)]
    assert cli.main(argv) == 0
    return output


def _model(checkpoint: Path | None):
    from slam_core.model import build_model
    from slam_core.runtime.infer.weights import load_trained_weights
    from slam_core.spec import load_spec

    spec = load_spec(SPEC)
    model = build_model(spec)
    if checkpoint is not None:
        load_trained_weights(model, checkpoint)
    return spec, model.eval()


def _next_token_logits(spec, model) -> dict[str, torch.Tensor]:
    """Each test utterance's logits after the prompt (left padding, as SLAM-LLM's collator pads)."""
    from slam_core.runtime.data.loader import build_batches

    batches = build_batches(spec, "test", model.preprocessor(), modality=model.modality, task=model.task)
    batches.set_epoch(0)
    logits = {}
    with torch.no_grad():
        for batch in batches:
            embeds, lengths = model.encode(batch.features, batch.feature_lengths)
            text = model.text_inputs(batch.samples, with_targets=False)
            inputs_embeds, grid = model.splice_inputs(embeds, lengths, text.prompt_only(), "left")
            last = model.llm(inputs_embeds, grid.attention_mask).logits[:, -1].float()
            logits.update({sample["key"]: row for sample, row in zip(batch.samples, last, strict=True)})
    return logits


def test_converted_checkpoint_holds_exactly_the_trainable_tensors(converted):
    from safetensors.torch import load_file

    saved = load_file(converted / "trainable.safetensors")
    original = torch.load(SLAM_LLM_CHECKPOINT, weights_only=True)
    assert len(saved) == len(original) > 0
    assert torch.equal(saved["projector.linear1.weight"], original["encoder_projector.linear1.weight"])
    lora = "model.layers.1.self_attn.v_proj.lora_B.default.weight"
    assert torch.equal(saved[f"llm.model.base_model.model.{lora}"], original[f"llm.base_model.model.{lora}"])


def test_prompt_tokens_are_slam_llms():
    _, model = _model(None)
    text = model.text_inputs([{"key": "utt0", "source": "x.wav"}], with_targets=False)
    assert text.prefix_ids == [[]]
    assert text.suffix_ids == [REFERENCE["prompt_ids"]]


@pytest.mark.parametrize(("decoded", "beams"), [("greedy", 1), ("beam4", 4)])
def test_slam_infer_decodes_the_text_slam_llm_decoded(converted, tmp_path, decoded, beams):
    output = tmp_path / "hyp.jsonl"
    argv = ["infer", str(SPEC), "--checkpoint", str(converted), "--output", str(output)]
    assert cli.main([*argv, "--set", f"infer.num_beams={beams}"]) == 0
    ours = {line["key"]: line["hypothesis"] for line in map(json.loads, output.read_text().splitlines())}
    theirs = {key: " ".join(text.split()) for key, text in zip(REFERENCE["keys"], REFERENCE[decoded], strict=True)}
    assert ours == theirs


def test_next_token_logits_equal_slam_llms(converted):
    reference = torch.load(FIXTURE / "reference_logits.pt", weights_only=True)["last_logits"]
    theirs = dict(zip(REFERENCE["keys"], reference, strict=True))
    ours = _next_token_logits(*_model(converted))
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        torch.testing.assert_close(ours[key], theirs[key], atol=1e-4, rtol=1e-4)
    # the comparison can fail: the audio moves the logits far more than the tolerance, and so do the weights
    assert (theirs["utt0"] - theirs["utt1"]).abs().max() > 1e-2
    untrained = _next_token_logits(*_model(None))
    assert (untrained["utt0"] - theirs["utt0"]).abs().max() > 1e-2


def _error_line(capsys, argv) -> str:
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slam: error: ")
    return lines[0]


def test_a_spec_that_does_not_match_the_run_is_refused_naming_the_fix(capsys, tmp_path):
    argv = ["convert", "slam-llm", str(SLAM_LLM_CHECKPOINT), "--spec", str(SPEC), "--output", str(tmp_path / "c")]
    line = _error_line(capsys, [*argv, "--set", "peft.r=16"])
    assert "model.pt: does not match the model built from this spec" in line
    assert "lora_A.default.weight has shape (8, 32), the model's is (16, 32)" in line
    assert "peft.r" in line
    assert not (tmp_path / "c").exists()


def test_a_file_that_is_not_a_slam_llm_checkpoint_is_refused(capsys, tmp_path):
    ours = tmp_path / "ours.pt"
    torch.save({"projector.linear1.weight": torch.zeros(2)}, ours)
    argv = ["convert", "slam-llm", str(ours), "--spec", str(SPEC), "--output", str(tmp_path / "c")]
    assert "tensors of no known module, e.g. ['projector.linear1.weight']" in _error_line(capsys, argv)
    trained_encoder = tmp_path / "encoder.pt"
    torch.save(
        {**torch.load(SLAM_LLM_CHECKPOINT, weights_only=True), "encoder.conv1.weight": torch.zeros(1)}, trained_encoder
    )
    argv[2] = str(trained_encoder)
    assert "it trained the encoder too (freeze_encoder=false)" in _error_line(capsys, argv)
    torch.save([1, 2], ours)
    argv[2] = str(ours)
    assert "not a SLAM-LLM model.pt (expected a state dict of tensors" in _error_line(capsys, argv)


def test_an_existing_output_folder_is_not_overwritten(capsys, converted):
    argv = ["convert", "slam-llm", str(SLAM_LLM_CHECKPOINT), "--spec", str(SPEC), "--output", str(converted)]
    assert "already exists; name a new folder" in _error_line(capsys, argv)
