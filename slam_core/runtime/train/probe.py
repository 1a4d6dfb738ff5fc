"""One training step at fixed shapes: a batch of noise clips and exact-length targets, run through an engine.

Shared by ``slam inspect``'s memory estimate (on fake tensors) and the step benchmarks (on real ones).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from slam_core.features import pad
from slam_core.model import SlamModel, TextInputs
from slam_core.runtime.data.batch import Batch
from slam_core.runtime.train.distributed import Context
from slam_core.runtime.train.engines import Engine, create_engine
from slam_core.spec import PipelineSpec


def fixed_batch(model: SlamModel, batch: int, seconds: float, target_tokens: int, seed: int = 0):
    """``(Batch, TextInputs)``: ``batch`` noise clips of ``seconds`` and targets of exactly ``target_tokens`` tokens."""
    rng = np.random.default_rng(seed)
    rate = model.encoder.sample_rate
    preprocess = model.preprocessor()
    clips = [(0.1 * rng.standard_normal(int(rate * seconds))).astype(np.float32) for _ in range(batch)]
    features, lengths = pad([torch.as_tensor(preprocess(torch.from_numpy(clip))) for clip in clips])
    samples = [{"key": f"clip{index}"} for index in range(batch)]
    prompt = model.text_inputs(samples, with_targets=False)
    vocab = model.llm.model.get_input_embeddings().num_embeddings
    low, high = 3, min(vocab, len(model.llm.tokenizer))  # past the special tokens, inside the tokenizer
    targets = [[*rng.integers(low, high, size=target_tokens - 1).tolist(), model.llm.eos_token_id] for _ in clips]
    text = TextInputs(prompt.prefix_ids, prompt.suffix_ids, targets)
    return Batch([s["key"] for s in samples], features, lengths, samples), text


def train_engine(model: SlamModel, spec: PipelineSpec, context: Context, steps: int) -> Engine:
    """The framework's engine for ``spec.train.engine``, prepared for ``steps`` optimizer steps."""
    engine = create_engine(model, spec, context)
    engine.prepare(total_steps=max(steps, 1))
    engine.train(True)
    return engine


def train_step(
    engine: Engine, batch: Batch, text: TextInputs, after_forward: Callable[[], None] | None = None
) -> torch.Tensor:
    """One optimizer step on one micro-batch, as the trainer runs it; returns the (detached) loss.
    ``after_forward`` runs between the forward and the backward pass (to look at what is saved)."""
    with engine.micro_step(sync=True):
        out = engine.forward(batch, text)
        if after_forward is not None:
            after_forward()
        engine.backward(out.loss)
    engine.step()
    return out.loss.detach()
