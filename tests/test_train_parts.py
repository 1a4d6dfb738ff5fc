"""The trainer's small parts: parameter groups, the LR schedule, precision checks, RNG capture, in-memory batches."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from support.synthetic import InMemoryBatches, shard, synthetic_batches, toy_spec

from slam_core.model import build_model
from slam_core.runtime.train import rng
from slam_core.runtime.train.engines.zero import _merge
from slam_core.runtime.train.optim import build_optimizer, build_scheduler, parameter_groups, trainable_parameters
from slam_core.runtime.train.precision import PrecisionError, autocast_dtype
from slam_core.spec import TrainSpec, validate_spec


@pytest.fixture(scope="module")
def model():
    return build_model(validate_spec(toy_spec(train={"weight_decay": 0.1})))


def test_only_trainable_parameters_are_optimised_and_norms_biases_get_no_decay(model):
    decayed, plain = parameter_groups(model, 0.1)
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    in_groups = [names[id(p)] for p in decayed["params"] + plain["params"]]
    assert sorted(in_groups) == sorted(trainable_parameters(model)), "exactly the trainable parameters"
    assert not any(n.startswith("encoder.") for n in in_groups), "the frozen encoder is not optimised"
    assert all("lora_" in n or n.startswith("projector.") for n in in_groups)
    assert {names[id(p)] for p in plain["params"]} == {"projector.linear1.bias", "projector.linear2.bias"}
    assert all(p.ndim == 2 for p in decayed["params"])

    # with a trainable LLM, its RMSNorm weights join the no-decay group
    full = build_model(validate_spec(toy_spec(train={"freeze_llm": False}) | {"peft": None}))
    _, plain = parameter_groups(full, 0.1)
    plain_names = {n for n, p in full.named_parameters() if any(p is q for q in plain["params"])}
    assert "llm.model.model.norm.weight" in plain_names
    assert "llm.model.model.layers.0.input_layernorm.weight" in plain_names
    assert "llm.model.model.layers.0.self_attn.q_proj.weight" not in plain_names


def test_an_all_frozen_model_is_refused(model):
    with pytest.raises(ValueError, match="nothing to train"):
        build_optimizer([{"params": [], "weight_decay": 0.0}], TrainSpec(), torch.device("cpu"))


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_schedule_warms_up_linearly_then_decays_to_zero(schedule):
    param = torch.nn.Parameter(torch.zeros(1))
    train = TrainSpec(lr=1.0, warmup_steps=4, lr_schedule=schedule)
    optimizer = build_optimizer([{"params": [param], "weight_decay": 0.0}], train, torch.device("cpu"))
    scheduler = build_scheduler(optimizer, train, total_steps=12)
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:5] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0])
    progress = [(s - 4) / 8 for s in range(4, 12)]
    expected = (
        [1 - p for p in progress] if schedule == "linear" else [0.5 * (1 + math.cos(math.pi * p)) for p in progress]
    )
    assert lrs[4:] == pytest.approx(expected)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0)


def test_autocast_dtypes_are_checked_on_the_device(monkeypatch):
    cpu = torch.device("cpu")
    assert autocast_dtype("fp32", cpu) is None
    assert autocast_dtype("bf16", cpu) is torch.bfloat16
    assert autocast_dtype("fp16", cpu) is torch.float16  # CPU fp16 autocast exists in this torch
    monkeypatch.setattr(torch.amp, "is_autocast_available", lambda device_type: False)
    with pytest.raises(PrecisionError, match="no autocast for cpu"):
        autocast_dtype("fp16", cpu)


def test_autocast_that_silently_computes_in_another_dtype_is_refused(monkeypatch):
    class Ignoring:  # what autocast does for a dtype it does not support: warn and compute in fp32
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch, "autocast", Ignoring)
    with pytest.raises(PrecisionError, match=r"does not compute in torch\.float16"):
        autocast_dtype("fp16", torch.device("cpu"))


def test_rng_capture_restores_every_generator_and_survives_weights_only(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    state = rng.capture()
    expected = (random.random(), np.random.rand(), torch.rand(1))
    torch.save(state, tmp_path / "rng.pt")
    random.random(), np.random.rand(), torch.rand(3)
    rng.restore(torch.load(tmp_path / "rng.pt", weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected

    with rng.isolated():
        torch.rand(10), random.random()
    after = torch.rand(1)
    rng.restore(state)
    torch.rand(1)  # expected[2]
    assert torch.equal(after, torch.rand(1)), "isolated() left the generators as they were"


def test_in_memory_batches_shard_shuffle_and_resume_mid_epoch():
    batches = synthetic_batches(lambda raw: torch.randn(len(raw.waveform) // 160, 8), 16000, batches=5, batch_size=4)
    halves = [InMemoryBatches(batches, rank=r, world_size=2, shuffle=True, seed=3) for r in range(2)]
    for part in halves:
        part.set_epoch(1)
    keys = sorted(k for part in halves for b in part for k in b.keys)
    assert keys == sorted(k for b in batches for k in b.keys), "the ranks together see every sample once"
    assert shard(batches[0], 1, 2).keys == batches[0].keys[1::2]

    data = InMemoryBatches(batches, shuffle=True, seed=3)
    data.set_epoch(2)
    order = [b.keys[0] for b in data]
    data.set_epoch(3)
    assert [b.keys[0] for b in data] != order, "another epoch, another order"
    data.set_epoch(2)
    iterator = iter(data)
    next(iterator), next(iterator)
    state = data.state_dict()
    resumed = InMemoryBatches(batches, shuffle=True, seed=3)
    resumed.load_state_dict(state)
    assert [b.keys[0] for b in resumed] == order[2:]
    assert [b.keys[0] for b in resumed] == order, "after the resumed pass, iteration starts at the epoch's beginning"


def test_deepspeed_config_overrides_merge_recursively():
    base = {"zero_optimization": {"stage": 2, "overlap_comm": True}, "gradient_clipping": 1.0}
    merged = _merge(base, {"zero_optimization": {"stage": 3, "offload_optimizer": {"device": "cpu"}}, "x": 1})
    assert merged == {
        "zero_optimization": {"stage": 3, "overlap_comm": True, "offload_optimizer": {"device": "cpu"}},
        "gradient_clipping": 1.0,
        "x": 1,
    }
    assert base["zero_optimization"]["stage"] == 2, "the base is not modified"


def test_train_spec_checks_the_encoder_cache_needs_a_frozen_encoder():
    with pytest.raises(ValueError, match=r"encoder_cache_dir needs train\.freeze_encoder"):
        TrainSpec(encoder_cache_dir="cache", freeze_encoder=False)


def test_gradients_are_clipped_before_the_step_and_the_norm_reported_unclipped():
    from slam_core.runtime.train.distributed import Context
    from slam_core.runtime.train.engines import create_engine

    spec = validate_spec(toy_spec(train={"grad_clip": 1e-3}))
    model = build_model(spec)
    engine = create_engine(model, spec, Context(0, 0, 1, torch.device("cpu"), owns_group=False))
    engine.prepare(total_steps=4)
    batch = synthetic_batches(model.encoder.preprocessor(), 16000, batches=1, batch_size=2)[0]
    engine.backward(engine.forward(batch, model.text_inputs(batch.samples)).loss)
    seen = []

    def before_step(optimizer, args, kwargs):
        grads = [p.grad for p in trainable_parameters(model).values()]
        seen.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    engine.optimizer.register_step_pre_hook(before_step)
    result = engine.step()
    assert result.applied and result.grad_norm > 1e-2
    assert seen == [pytest.approx(1e-3, rel=1e-4)], "the optimizer saw gradients clipped to train.grad_clip"
    assert all(p.grad is None for p in trainable_parameters(model).values()), "and the step cleared them"


def test_without_the_data_pipeline_the_default_factory_says_so(monkeypatch):
    from slam_core.runtime.train import api

    monkeypatch.setattr(api, "DEFAULT_LOADER", "slam_core.no_such_module:build_batches")
    with pytest.raises(RuntimeError, match=r"pass batches_factory=, or install the data pipeline"):
        api.default_batches_factory(validate_spec(toy_spec()), build_model(validate_spec(toy_spec())))


def test_the_deepspeed_config_follows_the_spec_and_its_overrides():
    from slam_core.runtime.train.distributed import Context
    from slam_core.runtime.train.engines.zero import DeepSpeedEngine

    train = {
        "engine": "deepspeed", "deepspeed_stage": 3, "dtype": "bf16", "grad_accum": 4, "grad_clip": 0.5,
        "deepspeed_config": {"zero_optimization": {"offload_param": {"device": "cpu"}}},
    }  # fmt: skip
    spec = validate_spec(toy_spec(train=train, data={"batch_size": 3}))
    engine = DeepSpeedEngine(build_model(spec), spec, Context(0, 0, 1, torch.device("cpu"), owns_group=False))
    config = engine.config()
    assert config["zero_optimization"] == {"stage": 3, "offload_param": {"device": "cpu"}}
    assert config["torch_autocast"] == {"enabled": True, "dtype": "bfloat16"}
    assert (config["gradient_accumulation_steps"], config["gradient_clipping"]) == (4, 0.5)
    assert config["train_micro_batch_size_per_gpu"] == 3


def test_a_single_process_engine_refuses_a_multi_process_launch(monkeypatch):
    from slam_core.runtime.train import distributed

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="engine is 'single' but this process is one of WORLD_SIZE=2"):
        distributed.setup("single")
