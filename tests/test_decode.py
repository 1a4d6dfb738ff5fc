"""The decode policy (slam_core.runtime.infer.service.decode_batch): the task head's prepare, first
decoding pass, answer choices scored by the LLM, and post-processing."""

from __future__ import annotations

import functools

import pytest
import torch
from support.synthetic import toy_spec

from slam_core.components import TaskHead
from slam_core.errors import ContractError
from slam_core.model import build_model
from slam_core.runtime.infer.service import decode_batch
from slam_core.spec import validate_spec

OPTIONS = {"max_new_tokens": 4, "do_sample": False, "num_beams": 1}


class RecordingTask(TaskHead):
    """A task head that records the hooks' calls; ``labels`` turns on answer choices."""

    metrics = ("wer",)

    def __init__(self, labels=None, first_pass=False):
        self.labels, self.first_pass = labels, first_pass
        self.prepared: list[bool] = []
        self.first_hypotheses: list[list[str]] = []

    def instruction(self, sample):
        return f"Say it. {sample.get('hint', '')}".strip()

    def target(self, sample):
        return sample["target"]

    def prepare(self, samples, *, training):
        self.prepared.append(training)
        return [dict(sample) for sample in samples]

    def choices(self, sample):
        return self.labels

    def after_first_pass(self, samples, hypotheses):
        self.first_hypotheses.append(list(hypotheses))
        return [
            {**sample, "hint": f"maybe {hypothesis}"} for sample, hypothesis in zip(samples, hypotheses, strict=True)
        ]


@functools.lru_cache(maxsize=1)
def _model():
    return build_model(validate_spec(toy_spec())).eval()


def _batch():
    generator = torch.Generator().manual_seed(3)
    features = torch.randn(3, 40, 8, generator=generator)
    lengths = torch.tensor([40, 31, 22])
    samples = [{"key": f"u{i}", "target": "x"} for i in range(3)]
    return features, lengths, samples


def test_choices_give_the_most_likely_label_by_teacher_forced_loss():
    model, labels = _model(), ["rock", "jazz", "blues", "hip hop"]
    model.task = RecordingTask(labels=labels)
    features, lengths, samples = _batch()
    decoded = decode_batch(model, features, lengths, samples, **OPTIONS)
    assert set(decoded) <= set(labels) and model.task.prepared == [False]
    for index, sample in enumerate(samples):
        alone = features[index : index + 1, : int(lengths[index])], lengths[index : index + 1]
        log_likelihoods = []
        for label in labels:
            text = model.text_inputs([{**sample, "target": label}])
            with torch.no_grad():
                output = model(*alone, text)
            log_likelihoods.append(-float(output.loss) * output.target_tokens)
        assert decoded[index] == labels[max(range(len(labels)), key=log_likelihoods.__getitem__)]


def test_a_first_pass_task_decodes_twice_and_the_second_prompt_sees_the_first_hypotheses():
    model = _model()
    model.task = RecordingTask(first_pass=True)
    features, lengths, samples = _batch()
    decoded = decode_batch(model, features, lengths, samples, **OPTIONS)
    plain = generate_postprocessed(model, features, lengths, samples)
    assert model.task.first_hypotheses == [plain]
    hinted = [{**s, "hint": f"maybe {h}"} for s, h in zip(samples, plain, strict=True)]
    assert decoded == generate_postprocessed(model, features, lengths, hinted)


def generate_postprocessed(model, features, lengths, samples):
    texts = model.generate(features, lengths, model.text_inputs(samples, with_targets=False), **OPTIONS)
    return [model.task.postprocess(text) for text in texts]


def test_generated_text_is_post_processed_by_the_task(monkeypatch):
    model = _model()
    model.task = RecordingTask()
    features, lengths, samples = _batch()
    raw = [" one ", "  two  three", "four\n"]
    ids = [[*model.llm.tokenize(text), model.llm.eos_token_id] for text in raw]
    width = max(map(len, ids))
    tokens = torch.tensor([row + [model.llm.pad_token_id] * (width - len(row)) for row in ids])
    monkeypatch.setattr(model.llm, "generate", lambda *args, **options: tokens)
    assert model.generate(features, lengths, model.text_inputs(samples, with_targets=False)) == raw
    monkeypatch.setattr(model.task, "postprocess", lambda text: f"<{text.strip()}>")
    assert decode_batch(model, features, lengths, samples) == ["<one>", "<two  three>", "<four>"]


def test_choices_for_only_some_samples_are_a_contract_error():
    model = _model()
    model.task = RecordingTask(labels=["a", "b"])
    features, lengths, samples = _batch()
    model.task.choices = lambda sample: None if sample["key"] == "u1" else ["a", "b"]
    with pytest.raises(ContractError, match="RecordingTask gave answer choices for some samples"):
        decode_batch(model, features, lengths, samples)


def test_prepare_is_told_whether_the_batch_trains():
    model = _model()
    model.task = RecordingTask()
    _, _, samples = _batch()
    model.train()
    model.text_inputs(samples)
    model.text_inputs(samples, with_targets=False)
    model.eval()
    model.text_inputs(samples)
    assert model.task.prepared == [True, False, False]
