"""Base test classes of the conformance kit (see :mod:`slam_core.testing`)."""

from __future__ import annotations

import copy
import json
import pickle
import random
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import pytest
import torch
from pydantic import BaseModel, ValidationError
from torch import nn

from slam_core import features as feature_ops
from slam_core import plugins
from slam_core.components import LLM, Encoder, PEFTMethod, Projector, PromptParts, TaskHead
from slam_core.records import API_VERSION, api_compatible, config_type_literal


class ComponentConformance:
    """Checks shared by every kind: discovery, config, schema and API version.

    Set ``component_name`` (registered type) and ``config`` (tiny settings). For a component
    not installed through an entry point, set ``factory`` and ``config_model`` instead.
    """

    kind: ClassVar[str] = ""
    contract: ClassVar[type] = object
    component_name: ClassVar[str | None] = None
    config: ClassVar[dict[str, Any]] = {}
    factory: ClassVar[Callable[..., Any] | None] = None
    config_model: ClassVar[type[BaseModel] | None] = None
    api: ClassVar[str] = API_VERSION
    seed: ClassVar[int] = 0

    # -- helpers a subclass may use or override ------------------------------------------
    def registered(self) -> plugins.RegisteredComponent:
        if self.component_name is None:
            pytest.skip("no component_name: the component is not looked up through the entry point")
        return plugins.registry().get(self.kind, self.component_name)

    def get_config_model(self) -> type[BaseModel]:
        if self.config_model is not None:
            return self.config_model
        return self.registered().spec.config

    def type_name(self) -> str:
        return self.component_name or config_type_literal(self.get_config_model()) or ""

    def make_config(self) -> BaseModel:
        return self.get_config_model().model_validate({"type": self.type_name(), **self.config})

    def get_factory(self) -> Callable[..., Any]:
        if self.factory is not None:
            return self.factory
        return self.registered().spec.load_factory()

    def factory_kwargs(self) -> dict[str, Any]:
        return {}

    def build(self, seed: int | None = None) -> Any:
        """A fresh component; parameters initialised from ``seed`` (default ``self.seed``)."""
        torch.manual_seed(self.seed if seed is None else seed)
        return self.get_factory()(self.make_config(), **self.factory_kwargs())

    # -- tests -----------------------------------------------------------------------------
    def test_discoverable_through_entry_point(self):
        entry = self.registered()
        assert entry.plugin.status is plugins.PluginStatus.OK, entry.plugin.message
        assert entry.plugin.distribution != "<unknown distribution>"
        assert entry.spec.name == self.component_name

    def test_builds_the_contract_type(self):
        component = self.build()
        assert isinstance(component, self.contract), f"{type(component).__name__} is not a {self.contract.__name__}"

    def test_config_round_trip(self):
        config = self.make_config()
        model = self.get_config_model()
        assert model.model_validate(config.model_dump()) == config
        assert model.model_validate_json(config.model_dump_json()) == config
        assert model.model_validate(json.loads(json.dumps(config.model_dump(mode="json")))) == config

    def test_config_forbids_unknown_fields(self):
        with pytest.raises(ValidationError):
            self.get_config_model().model_validate({**self.make_config().model_dump(), "no_such_setting_xyz": 1})

    def test_config_type_literal_is_the_name(self):
        assert config_type_literal(self.get_config_model()) == self.type_name()

    def test_schema_export(self):
        schema = self.get_config_model().model_json_schema()
        json.dumps(schema)
        type_schema = schema["properties"]["type"]
        assert type_schema.get("const", (type_schema.get("enum") or [None])[0]) == self.type_name()

    def test_api_version_is_compatible(self):
        api = self.registered().spec.api if self.component_name else self.api
        assert api_compatible(api), f"targets API {api}, host implements {API_VERSION}"


class ModuleConformance(ComponentConformance):
    """Checks for ``nn.Module`` components: state dict, determinism, dtype moves, gradients.

    Subclasses define :meth:`example_inputs` and :meth:`run` (a forward returning a tensor).
    """

    #: Parameters allowed to get no gradient from :meth:`run` (e.g. unused by the example).
    params_without_grad: ClassVar[frozenset[str]] = frozenset()
    atol: ClassVar[float] = 1e-5

    def example_inputs(self, module: Any, dtype: torch.dtype = torch.float32) -> Any:
        raise NotImplementedError

    def run(self, module: Any, inputs: Any) -> torch.Tensor:
        raise NotImplementedError

    def test_eval_is_deterministic(self):
        module = self.build().eval()
        inputs = self.example_inputs(module)
        with torch.no_grad():
            torch.testing.assert_close(self.run(module, inputs), self.run(module, inputs), atol=0, rtol=0)

    def test_state_dict_round_trip(self):
        source = self.build(seed=self.seed).eval()
        target = self.build(seed=self.seed + 1).eval()
        target.load_state_dict(copy.deepcopy(source.state_dict()))
        inputs = self.example_inputs(source)
        with torch.no_grad():
            torch.testing.assert_close(self.run(target, inputs), self.run(source, inputs), atol=self.atol, rtol=0)

    def test_dtype_move(self):
        module = self.build().eval()
        reference_inputs = self.example_inputs(module)
        with torch.no_grad():
            reference = self.run(module, reference_inputs)
            module = module.to(torch.float64)
            assert all(p.dtype == torch.float64 for p in module.parameters() if p.is_floating_point())
            output = self.run(module, _to_dtype(reference_inputs, torch.float64))
        assert output.dtype == torch.float64
        torch.testing.assert_close(output.float(), reference, atol=1e-4, rtol=1e-4)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    def test_device_move(self):
        module = self.build().eval()
        inputs = self.example_inputs(module)
        with torch.no_grad():
            reference = self.run(module, inputs)
            output = self.run(module.to("cuda"), _to_device(inputs, "cuda"))
        assert output.device.type == "cuda"
        torch.testing.assert_close(output.cpu(), reference, atol=1e-3, rtol=1e-3)

    def test_gradients_flow_exactly_where_trainable(self):
        module = self.build().train()
        frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
        self.run(module, self.example_inputs(module)).float().square().mean().backward()
        for name, parameter in module.named_parameters():
            if name in frozen:
                assert parameter.grad is None, f"frozen parameter {name} received a gradient"
            elif name not in self.params_without_grad:
                assert parameter.grad is not None, f"trainable parameter {name} received no gradient"
                assert torch.isfinite(parameter.grad).all(), f"gradient of {name} is not finite"
                assert parameter.grad.abs().sum() > 0, f"gradient of {name} is all zeros"

    def test_frozen_module_builds_no_graph(self):
        module = self.build().train().requires_grad_(False)
        output = self.run(module, self.example_inputs(module))
        assert not output.requires_grad


class _SequenceConformance(ModuleConformance):
    """Encoders and projectors: ``forward(x, lengths) -> (y, lengths')`` with exact lengths."""

    def batch(self, module: Any, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def example_inputs(self, module: Any, dtype: torch.dtype = torch.float32) -> Any:
        return self.batch(module, dtype)

    def run(self, module: Any, inputs: Any) -> torch.Tensor:
        output, _ = module(*inputs)
        return output

    def test_output_lengths_are_exact(self):
        module = self.build().eval()
        features, lengths = self.batch(module)
        with torch.no_grad():
            output, out_lengths = module(features, lengths)
        expected = module.output_lengths(lengths)
        assert out_lengths.tolist() == expected.tolist(), "forward's lengths differ from output_lengths()"
        assert output.shape[0] == feature_ops.batch_size(features)
        assert output.shape[1] == int(expected.max()), (
            f"output has {output.shape[1]} frames, expected {int(expected.max())}"
        )
        assert output.shape[2] == module.output_dim

    def test_batch_equals_each_sample_alone(self):
        """Padding never leaks: a sample's valid frames are the same alone as in a padded batch."""
        module = self.build().eval()
        features, lengths = self.batch(module)
        with torch.no_grad():
            batched, out_lengths = module(features, lengths)
            for index in range(feature_ops.batch_size(features)):
                alone, alone_lengths = module(*feature_ops.rows(features, lengths, slice(index, index + 1)))
                m = int(out_lengths[index])
                assert int(alone_lengths[0]) == m
                torch.testing.assert_close(alone[0, :m], batched[index, :m], atol=self.atol, rtol=1e-4)


class EncoderConformance(_SequenceConformance):
    """Encoder contract. Override :meth:`raw_sample` for non-audio inputs."""

    kind = "encoder"
    contract = Encoder
    #: Raw input sizes of the example batch (samples of audio, frames of video).
    raw_sizes: ClassVar[Sequence[int]] = (4000, 2400, 1601)

    def raw_sample(self, encoder: Encoder, size: int, generator: torch.Generator) -> Any:
        return 0.1 * torch.randn(size, generator=generator)

    def batch(self, module: Any, dtype: torch.dtype = torch.float32) -> tuple[Any, torch.Tensor]:
        """Preprocessed :meth:`raw_sample` inputs padded as the data pipeline pads them (dict features too)."""
        generator = torch.Generator().manual_seed(1234)
        preprocess = module.preprocessor()
        raw = [self.raw_sample(module, size, generator) for size in self.raw_sizes]
        features = [feature_ops.as_features(preprocess(sample)) for sample in raw]
        padded, lengths = feature_ops.pad(features)
        return _to_dtype(padded, dtype), lengths

    def test_declares_its_rates_and_sizes(self):
        encoder = self.build()
        assert encoder.modality in ("audio", "video", "audio-visual")
        assert encoder.sample_rate > 0 and encoder.output_dim > 0 and encoder.frame_rate > 0

    def test_forward_equals_head_of_backbone(self):
        encoder = self.build().eval()
        features, lengths = self.batch(encoder)
        with torch.no_grad():
            whole, whole_lengths = encoder(features, lengths)
            split, split_lengths = encoder.head(*encoder.backbone(features, lengths))
        assert whole_lengths.tolist() == split_lengths.tolist()
        torch.testing.assert_close(split, whole, atol=self.atol, rtol=1e-4)

    def test_head_trains_while_the_backbone_is_frozen(self):
        encoder = self.build().train()
        heads = encoder.head_modules()
        if not heads:
            pytest.skip("this encoder has no trainable head")
        encoder.requires_grad_(False)
        for head in heads:
            head.requires_grad_(True)
        features, lengths = self.batch(encoder)
        with torch.no_grad():
            backbone_output, backbone_lengths = encoder.backbone(features, lengths)
        hidden, _ = encoder.head(backbone_output, backbone_lengths)
        hidden.float().square().mean().backward()
        for head in heads:
            for name, parameter in head.named_parameters():
                assert parameter.grad is not None and parameter.grad.abs().sum() > 0, f"head parameter {name}"

    def test_preprocessor_pickles_cheaply(self):
        encoder = self.build()
        preprocess = encoder.preprocessor()
        sample = self.raw_sample(encoder, self.raw_sizes[0], torch.Generator().manual_seed(0))
        features = preprocess(sample)
        payload = pickle.dumps(preprocess)
        weights = sum(p.numel() * p.element_size() for p in encoder.parameters())
        assert len(payload) < max(1_000_000, weights // 10), f"the preprocessor pickles to {len(payload)} bytes"
        again = feature_ops.as_features(pickle.loads(payload)(sample))
        torch.testing.assert_close(again, feature_ops.as_features(features))


class ProjectorConformance(_SequenceConformance):
    """Projector contract; ``input_dim``/``output_dim`` and ``lengths`` set the example batch."""

    kind = "projector"
    contract = Projector
    input_dim: ClassVar[int] = 12
    output_dim: ClassVar[int] = 20
    lengths: ClassVar[Sequence[int]] = (23, 9, 16, 2)

    def factory_kwargs(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim}

    def batch(self, module: Any, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(1234)
        lengths = torch.tensor(self.lengths)
        hidden = torch.randn(len(self.lengths), max(self.lengths), self.input_dim, generator=generator)
        hidden = hidden * (torch.arange(hidden.shape[1])[None, :] < lengths[:, None])[..., None]
        return hidden.to(dtype), lengths

    def test_declares_its_dims(self):
        projector = self.build()
        assert (projector.input_dim, projector.output_dim) == (self.input_dim, self.output_dim)


class LLMConformance(ModuleConformance):
    """LLM contract: embeddings, teacher-forced loss, generation, tokenizer and template."""

    kind = "llm"
    contract = LLM
    texts: ClassVar[Sequence[str]] = ("hello world", "a slightly longer sentence here")

    def example_inputs(self, module: Any, dtype: torch.dtype = torch.float32) -> Any:
        ids = [module.tokenize(text) for text in self.texts]
        width = max(len(i) for i in ids)
        input_ids = torch.full((len(ids), width), module.pad_token_id)
        mask = torch.zeros(len(ids), width, dtype=torch.long)
        for row, sequence in enumerate(ids):
            input_ids[row, : len(sequence)] = torch.tensor(sequence)
            mask[row, : len(sequence)] = 1
        return input_ids, mask

    def run(self, module: Any, inputs: Any) -> torch.Tensor:
        input_ids, mask = inputs
        return module(module.embed(input_ids), mask).logits

    def test_embed_shape_matches_hidden_size(self):
        llm = self.build()
        input_ids, _ = self.example_inputs(llm)
        assert llm.embed(input_ids).shape == (*input_ids.shape, llm.hidden_size)

    def test_loss_on_labels(self):
        llm = self.build().eval()
        input_ids, mask = self.example_inputs(llm)
        labels = input_ids.masked_fill(mask == 0, -100)
        with torch.no_grad():
            output = llm(llm.embed(input_ids), mask, labels)
        logits = output.logits[:, :-1].float()
        reference = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        torch.testing.assert_close(output.loss.float(), reference, atol=1e-4, rtol=1e-4)

    def test_tokenizer_ids(self):
        llm = self.build()
        assert isinstance(llm.eos_token_id, int) and isinstance(llm.pad_token_id, int)
        ids = llm.tokenize(self.texts[0])
        assert ids and all(isinstance(i, int) for i in ids)
        assert llm.tokenizer.decode(ids).strip() == self.texts[0]

    def test_prompt_template_keeps_the_instruction(self):
        parts = self.build().prompt_parts("Transcribe this.")
        assert isinstance(parts, PromptParts)
        assert "Transcribe this." in parts.prefix + parts.suffix

    def test_generate_returns_new_tokens(self):
        llm = self.build().eval()
        input_ids, mask = self.example_inputs(llm)
        order = torch.sort(mask, dim=1, stable=True).indices  # generate() takes left padding
        input_ids, mask = input_ids.gather(1, order), mask.gather(1, order)
        with torch.no_grad():
            tokens = llm.generate(llm.embed(input_ids), mask, max_new_tokens=3, do_sample=False)
        assert tokens.dtype == torch.long and tokens.shape[0] == input_ids.shape[0] and tokens.shape[1] <= 3


class PEFTConformance(ComponentConformance):
    """PEFT contract, applied to a small base LLM module (override :meth:`base_module`)."""

    kind = "peft"
    contract = PEFTMethod
    #: Whether the adapted model equals the base model before training (true for LoRA).
    identity_at_init: ClassVar[bool] = True

    def base_module(self) -> nn.Module:
        from slam_core.builtin import ToyLLMConfig
        from slam_core.toy import build_toy_llm

        return build_toy_llm(
            ToyLLMConfig(shape={"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48})
        ).model

    def example_ids(self) -> torch.Tensor:
        return torch.arange(3, 3 + 2 * 7).reshape(2, 7)

    def logits(self, module: nn.Module) -> torch.Tensor:
        return module(input_ids=self.example_ids()).logits

    def applied(self) -> tuple[PEFTMethod, nn.Module]:
        method = self.build()
        torch.manual_seed(self.seed)
        base = self.base_module().requires_grad_(False)
        return method, method.apply(base)

    def test_only_adapter_parameters_are_trainable(self):
        base_names = {name for name, _ in self.base_module().named_parameters()}
        _, module = self.applied()
        trainable = [name for name, p in module.named_parameters() if p.requires_grad]
        assert trainable, "apply() left no trainable parameter"
        assert not [name for name in trainable if _strip_wrappers(name) in base_names], "base weights are trainable"

    def test_identity_at_init(self):
        if not self.identity_at_init:
            pytest.skip("this method changes the output at initialisation")
        torch.manual_seed(self.seed)
        base = self.base_module().eval()
        with torch.no_grad():
            reference = self.logits(base)
            adapted = self.build().apply(base).eval()
            torch.testing.assert_close(self.logits(adapted), reference, atol=1e-6, rtol=0)

    def test_gradients_reach_adapters_only(self):
        _, module = self.applied()
        module.train()
        self.logits(module).float().square().mean().backward()
        for name, parameter in module.named_parameters():
            if parameter.requires_grad:
                assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), name
            else:
                assert parameter.grad is None, f"frozen {name} received a gradient"

    def test_save_load_round_trip(self, tmp_path):
        method, module = self.applied()
        with torch.no_grad():
            for parameter in module.parameters():
                if parameter.requires_grad:
                    parameter.copy_(torch.randn_like(parameter) * 0.1)
        module.eval()
        with torch.no_grad():
            expected = self.logits(module)
        method.save(module, tmp_path / "adapter")
        torch.manual_seed(self.seed)
        loaded = method.load(self.base_module(), tmp_path / "adapter").eval()
        with torch.no_grad():
            torch.testing.assert_close(self.logits(loaded), expected, atol=1e-6, rtol=0)


def _strip_wrappers(name: str) -> str:
    """``base_model.model.layers.0.q_proj.base_layer.weight`` -> ``layers.0.q_proj.weight``."""
    for prefix in ("base_model.model.", "base_model."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.replace(".base_layer", "")


class TaskHeadConformance(ComponentConformance):
    """TaskHead contract on one example ``sample``."""

    kind = "task"
    contract = TaskHead
    sample: ClassVar[dict[str, Any]] = {"key": "utt-1", "source": "a.wav", "target": "Hello world"}

    def test_instruction_and_target_are_text(self):
        task = self.build()
        assert isinstance(task.instruction(dict(self.sample)), str)
        target = task.target(dict(self.sample))
        assert isinstance(target, str) and target

    def test_postprocess_returns_text(self):
        task = self.build()
        assert isinstance(task.postprocess("  some   decoded text "), str)

    def test_names_its_metrics(self):
        from slam_core.runtime.metrics import get_metric

        metrics = tuple(self.build().metrics)
        assert metrics and all(isinstance(m, str) and m for m in metrics)
        for name in metrics:
            get_metric(name)  # an unknown name raises, listing the registered metrics

    @pytest.mark.parametrize("training", [True, False])
    def test_prepare_returns_new_samples_and_leaves_the_batch_alone(self, training):
        task = self.build()
        batch = [copy.deepcopy(self.sample) for _ in range(3)]
        before = copy.deepcopy(batch)
        prepared = task.prepare(batch, training=training)
        assert batch == before, "prepare changed the samples it was given"
        assert len(prepared) == len(batch)
        for sample in prepared:
            assert isinstance(task.instruction(sample), str)
            assert isinstance(task.target(sample), str)

    def test_prepare_draws_only_from_pythons_random(self):
        task = self.build()
        batches = []
        for _ in range(2):
            random.seed(1234)
            torch.manual_seed(0)
            prepared = task.prepare([copy.deepcopy(self.sample) for _ in range(4)], training=True)
            batches.append([(task.instruction(s), task.target(s)) for s in prepared])
        assert batches[0] == batches[1], "prepare is not reproducible from random.seed"

    def test_choices_are_distinct_text_and_hold_the_target(self):
        task = self.build()
        prepared = task.prepare([copy.deepcopy(self.sample)], training=False)[0]
        choices = task.choices(prepared)
        if choices is None:
            pytest.skip("this task generates free text")
        assert choices and all(isinstance(c, str) and c for c in choices) and len(set(choices)) == len(choices)
        assert task.postprocess(task.target(prepared)) in choices


def _to_dtype(value: Any, dtype: torch.dtype) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(dtype) if value.is_floating_point() else value
    if isinstance(value, (tuple, list)):
        return type(value)(_to_dtype(v, dtype) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _to_dtype(v, dtype)) for k, v in value.items())
    return value


def _to_device(value: Any, device: str) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, (tuple, list)):
        return type(value)(_to_device(v, device) for v in value)
    if isinstance(value, dict):
        return type(value)((k, _to_device(v, device)) for k, v in value.items())
    return value
