"""The training loop on one process: what trains, accumulation, NaN policy, precision, validation and reports."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from support.synthetic import (
    InMemoryBatches,
    synthetic_batches,
    toy_spec,
    train_synthetic,
)
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from slam_core.model import build_model
from slam_core.runtime.train import NonFiniteLossError, train
from slam_core.spec import SpecError, validate_spec


def initial_model(spec: dict):
    """The model a run starts from: train() seeds with train.seed before building it."""
    validated = validate_spec(spec)
    transformers.set_seed(validated.train.seed)
    return build_model(validated)


def test_training_lowers_the_loss_and_changes_only_trainable_weights(tmp_path):
    spec = toy_spec(train={"epochs": 8, "lr": 3e-2, "warmup_steps": 1})
    before = initial_model(spec).state_dict()
    result = train_synthetic(spec, tmp_path, batches=2, batch_size=4, shuffle=False)
    assert result.step == 16 and sorted(result.losses) == list(range(1, 17))
    first, last = result.losses[1], result.losses[16]
    # the toy LLM's frozen head and final norm bound how far LoRA can move the logits: ~0.2 nats here
    assert last < first - 0.1, f"the loss should fall when overfitting two batches: {first} -> {last}"

    trainable = {n for n, p in result.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("projector.") or "lora_" in n for n in trainable)
    for name, value in result.model.state_dict().items():
        if name in trainable:
            assert not torch.equal(value, before[name]), f"{name} should have trained"
        else:
            assert torch.equal(value, before[name]), f"frozen {name} changed"


def test_accumulating_micro_batches_equals_one_big_batch(tmp_path):
    """Token-weighted accumulation: 2 micro-batches of 2 step exactly like 1 batch of 4 (unequal token counts)."""
    spec = toy_spec(train={"epochs": 2})
    big = train_synthetic(spec, tmp_path / "big", batches=2, batch_size=4, shuffle=False)
    accum_spec = toy_spec(train={"epochs": 2, "grad_accum": 2})
    small = train_synthetic(accum_spec, tmp_path / "small", batches=4, batch_size=2, shuffle=False)
    assert sorted(small.losses) == sorted(big.losses) == [1, 2, 3, 4]
    for step, loss in big.losses.items():
        assert small.losses[step] == pytest.approx(loss, rel=1e-6)
    big_state, small_state = big.model.state_dict(), small.model.state_dict()
    for name, param in big.model.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(small_state[name], big_state[name], rtol=1e-5, atol=1e-6)


def nan_factory(bad: set[int], batches: int = 6):
    """Train batches of which those at the indices in ``bad`` have NaN features."""
    data = synthetic_batches(lambda raw: torch.randn(len(raw.waveform) // 160, 8), 16000, batches=batches, batch_size=2)
    for index in bad:
        data[index].features[:] = float("nan")

    def factory(split, rank, world_size):
        return InMemoryBatches(data) if split == "train" else None

    return factory


def test_a_nan_loss_stops_training_by_default(tmp_path):
    spec = validate_spec(toy_spec())
    with pytest.raises(
        NonFiniteLossError, match=r"non-finite loss at step 3 \(epoch 0, samples \['utt00004', 'utt00005'\]"
    ):
        train(spec, run_dir=tmp_path, batches_factory=nan_factory({2}))


def test_skip_batch_skips_the_step_and_carries_on(tmp_path):
    spec = validate_spec(toy_spec(train={"nan_policy": "skip_batch", "grad_accum": 2}))
    result = train(spec, run_dir=tmp_path, batches_factory=nan_factory({1}))
    assert result.skipped_steps == 1
    assert result.step == 2, "three windows of two micro-batches, the first skipped"
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    events = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert any(e["split"] == "event" and "utt00002" in e["message"] for e in events)


def test_too_many_consecutive_skips_stop_training(tmp_path):
    spec = validate_spec(toy_spec(train={"nan_policy": "skip_batch", "max_consecutive_skips": 1}))
    with pytest.raises(NonFiniteLossError, match="2 steps in a row had a non-finite loss"):
        train(spec, run_dir=tmp_path, batches_factory=nan_factory({1, 2}))


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_mixed_precision_trains_on_the_cpu(tmp_path, dtype):
    result = train_synthetic(toy_spec(train={"dtype": dtype, "epochs": 2}), tmp_path, batches=2, batch_size=2)
    assert result.step == 4 and all(torch.isfinite(torch.tensor(list(result.losses.values()))))
    trainer_state = torch.load(result.last_checkpoint / "trainer.pt", weights_only=True)
    if dtype == "fp16":
        assert trainer_state["scaler"]["scale"] > 0, "the GradScaler state is checkpointed"
    else:
        assert trainer_state["scaler"] is None


def test_validation_reports_loss_accuracy_and_the_scorers_metrics(tmp_path, capsys):
    seen = {}

    def scorer(hypotheses, references, samples):
        seen.update(hypotheses=hypotheses, references=references, samples=samples)
        return {"wer": 0.5}

    spec = toy_spec(train={"epochs": 2, "eval_every_steps": 1, "log_every_steps": 1})
    result = train_synthetic(spec, tmp_path, batches=2, batch_size=2, valid_batches=2, scorer=scorer)
    assert [v["step"] for v in result.validations] == [1, 2, 3, 4]
    assert set(result.validations[-1]) == {"step", "loss", "token_accuracy", "wer"}

    # the last validation's loss and accuracy, recomputed from the final model
    model = result.model.eval()
    valid = result_batches(spec, valid=True)
    loss_sum = correct = tokens = 0.0
    with torch.no_grad():
        for batch in valid:
            out = model(batch.features, batch.feature_lengths, model.text_inputs(batch.samples))
            loss_sum += float(out.loss) * out.target_tokens
            correct += float(out.token_accuracy) * out.target_tokens
            tokens += out.target_tokens
    assert result.validations[-1]["loss"] == pytest.approx(loss_sum / tokens, rel=1e-6)
    assert result.validations[-1]["token_accuracy"] == pytest.approx(correct / tokens)
    assert seen["references"] == [s["target"] for b in valid for s in b.samples]
    assert len(seen["hypotheses"]) == 4 and all(isinstance(h, str) for h in seen["hypotheses"])

    # TensorBoard scalars, the history and the plot
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert {"train/loss", "train/lr", "train/grad_norm", "valid/loss", "valid/wer"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("valid/loss")] == [1, 2, 3, 4]
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "step" not in capsys.readouterr().err, "no progress bar when stderr is not a terminal"


def test_python_train_takes_a_task_metric_as_best_metric_and_scores_it_as_slam_train_does(tmp_path):
    """No scorer passed: ``train.best_metric: wer`` (the asr task's metric) turns on decoding and scoring."""
    from slam_core.runtime.infer.service import decode_batches, generate_options
    from slam_core.runtime.metrics import score

    spec = toy_spec(train={"epochs": 3, "eval_every_steps": 1, "best_metric": "wer", "keep_last": 1})
    result = train_synthetic(spec, tmp_path, batches=1, batch_size=2, valid_batches=1)
    assert [set(v) for v in result.validations] == [{"step", "loss", "token_accuracy", "wer"}] * 3
    decoded = decode_batches(
        result.model, result_batches(spec, valid=True)[:1], generate_options(validate_spec(spec).infer)
    )
    assert result.validations[-1]["wer"] == score(["wer"], decoded.hypotheses, decoded.references)["wer"]
    best = min(result.validations, key=lambda v: (v["wer"], v["step"]))
    assert result.best_checkpoint.name == f"step-{best['step']:08d}"
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["value"] == best["wer"]


def test_score_true_adds_the_tasks_metrics_and_an_unreported_best_metric_is_refused(tmp_path):
    spec = toy_spec(train={"epochs": 1})
    result = train_synthetic(spec, tmp_path / "scored", batches=1, batch_size=2, valid_batches=1, score=True)
    assert set(result.validations[-1]) == {"step", "loss", "token_accuracy", "wer"}
    unscored = train_synthetic(spec, tmp_path / "plain", batches=1, batch_size=2, valid_batches=1)
    assert set(unscored.validations[-1]) == {"step", "loss", "token_accuracy"}
    bleu = toy_spec(train={"epochs": 1, "best_metric": "bleu"})
    refusal = (
        r"train\.best_metric: 'bleu' is not reported by validation, which gives loss, token_accuracy, wer "
        r"\(the task's metrics \(wer\) are scored"
    )
    with pytest.raises(SpecError, match=refusal):
        train_synthetic(bleu, tmp_path / "bleu", batches=1, batch_size=2, valid_batches=1, score=True)
    with pytest.raises(SpecError, match="'bleu' is not reported by validation: there is no valid split"):
        train_synthetic(bleu, tmp_path / "bleu", batches=1, batch_size=2)
    assert not (tmp_path / "bleu").exists()


def result_batches(spec: dict, valid: bool):
    from slam_core.model import build_component

    encoder = build_component("encoder", validate_spec(spec).encoder)
    return synthetic_batches(
        encoder.preprocessor(),
        encoder.sample_rate,
        batches=2,
        batch_size=2,
        seed=1 if valid else 0,
        key_prefix="valid" if valid else "utt",
    )


def test_the_plot_is_redrawn_at_each_validation(tmp_path, monkeypatch):
    from slam_core.runtime.train import monitor

    drawn = []
    real = monitor.render_curves
    monkeypatch.setattr(monitor, "render_curves", lambda history: drawn.append(len(history)) or real(history))
    train_synthetic(toy_spec(train={"epochs": 3}), tmp_path, batches=1, batch_size=2, valid_batches=1)
    assert len(drawn) == 3 and drawn == sorted(drawn), "once per validation, with a growing history"
