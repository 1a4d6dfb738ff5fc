"""SlamModel.decode: the task head's prepare, first decoding pass, and answer choices scored by the LLM."""

from __future__ import annotations

import functools

import torch

from slam_core.components import TaskHead
from slam_core.model import build_model
from slam_core.runtime.train.testing_data import toy_spec
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
    decoded = model.decode(features, lengths, samples, **OPTIONS)
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
    decoded = model.decode(features, lengths, samples, **OPTIONS)
    plain = model.generate(features, lengths, model.text_inputs(samples, with_targets=False), **OPTIONS)
    assert model.task.first_hypotheses == [plain]
    hinted = [{**s, "hint": f"maybe {h}"} for s, h in zip(samples, plain, strict=True)]
    assert decoded == model.generate(features, lengths, model.text_inputs(hinted, with_targets=False), **OPTIONS)


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
