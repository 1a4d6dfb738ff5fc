"""The rules of encoders and projectors: ``forward(x, lengths) -> (y, lengths')`` with exact lengths."""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest
import torch

from slam_core import features as feature_ops
from slam_core.audio import RawAudio
from slam_core.components import Encoder, Projector
from slam_core.errors import SlamError
from slam_core.testing.modules import ModuleConformance, _to_dtype, assert_same
from slam_core.testing.rules import checks, fail, require

#: How many evenly spread lengths the unpadded sweep adds between the shortest and the longest example.
SWEEP_POINTS = 6


class SequenceConformance(ModuleConformance):
    """Encoders and projectors. Subclasses define :meth:`batch` and :meth:`single_inputs`."""

    def batch(self, module: Any, dtype: torch.dtype = torch.float32) -> tuple[Any, torch.Tensor]:
        raise NotImplementedError

    def single_inputs(self, module: Any) -> list[tuple[str, Any, torch.Tensor]]:
        """``(description, features [1, T, ...], lengths [1])`` of unpadded single inputs of many lengths."""
        raise NotImplementedError

    def example_inputs(self, module: Any, dtype: torch.dtype = torch.float32) -> Any:
        return self.batch(module, dtype)

    def run(self, module: Any, inputs: Any) -> torch.Tensor:
        output, _ = module(*inputs)
        return output

    @checks("lengths-exact")
    def test_lengths_exact(self):
        module = self.build().eval()
        features, lengths = self.batch(module)
        with torch.no_grad():
            output, out_lengths = module(features, lengths)
        expected = module.output_lengths(lengths)
        rule = "lengths-exact"
        given = f"inputs of lengths {lengths.tolist()}"
        require(
            out_lengths.tolist() == expected.tolist(),
            rule,
            lambda: (
                f"for {given} forward returned lengths {out_lengths.tolist()} but output_lengths() "
                f"says {expected.tolist()}"
            ),
        )
        shape = tuple(output.shape)
        wanted = (feature_ops.batch_size(features), int(expected.max()), module.output_dim)
        require(
            shape == wanted,
            rule,
            f"for {given} (output_lengths {expected.tolist()}, output_dim {module.output_dim}) the output is "
            f"{shape}, expected {wanted}",
        )

    @checks("frames-match-output-lengths")
    def test_frames_match_output_lengths(self):
        module = self.build().eval()
        rule = "frames-match-output-lengths"
        for description, features, lengths in self.single_inputs(module):
            expected = int(module.output_lengths(lengths)[0])
            try:
                with torch.no_grad():
                    output, out_lengths = module(features, lengths)
            except Exception as exc:
                fail(
                    rule,
                    f"on {description} ({int(lengths[0])} input frames), for which output_lengths() says "
                    f"{expected}, forward raised {type(exc).__name__}: {exc}",
                )
            if output.shape[1] != expected or out_lengths.tolist() != [expected]:
                fail(
                    rule,
                    f"{description} ({int(lengths[0])} input frames) gives {output.shape[1]} frames (returned "
                    f"lengths {out_lengths.tolist()}), but output_lengths() says {expected}",
                )

    @checks("padding-does-not-leak")
    def test_padding_does_not_leak(self):
        module = self.build().eval()
        features, lengths = self.batch(module)
        with torch.no_grad():
            batched, out_lengths = module(features, lengths)
            for index in range(feature_ops.batch_size(features)):
                alone, alone_lengths = module(*feature_ops.rows(features, lengths, slice(index, index + 1)))
                m = int(out_lengths[index])
                what = (
                    f"sample {index} ({int(lengths[index])} of {int(lengths.max())} frames) alone vs in the padded "
                    "batch"
                )
                require(
                    int(alone_lengths[0]) == m,
                    "padding-does-not-leak",
                    f"{what}: {int(alone_lengths[0])} output frames alone, {m} in the batch",
                )
                assert_same("padding-does-not-leak", batched[index, :m], alone[0, :m], what, atol=self.atol, rtol=1e-4)


class EncoderConformance(SequenceConformance):
    """Encoder contract. Override :meth:`raw_sample` for non-audio inputs."""

    kind = "encoder"
    contract = Encoder
    #: Raw input sizes of the example batch (samples of audio, frames of video).
    raw_sizes: ClassVar[Sequence[int]] = (4000, 2400, 1601)

    def raw_sample(self, encoder: Encoder, size: int, generator: torch.Generator) -> Any:
        """One raw input of ``size`` samples as the data pipeline gives it (audio: a float32 NumPy
        :class:`~slam_core.audio.RawAudio` at the encoder's rate, as ``read_audio`` returns)."""
        if encoder.modality != "audio":
            raise NotImplementedError(f"override raw_sample() to give {encoder.modality} input to the kit")
        waveform = 0.1 * torch.randn(size, generator=generator)
        return RawAudio(waveform.numpy(), int(encoder.sample_rate))

    def preprocessed(self, encoder: Encoder, size: int, seed: int = 1234) -> Any:
        return feature_ops.as_features(encoder.preprocessor()(self.raw_sample(encoder, size, _generator(seed))))

    def batch(self, module: Any, dtype: torch.dtype = torch.float32) -> tuple[Any, torch.Tensor]:
        """Preprocessed :meth:`raw_sample` inputs padded as the data pipeline pads them (dict features too)."""
        generator = _generator(1234)
        preprocess = module.preprocessor()
        raw = [self.raw_sample(module, size, generator) for size in self.raw_sizes]
        padded, lengths = feature_ops.pad([feature_ops.as_features(preprocess(sample)) for sample in raw])
        return _to_dtype(padded, dtype), lengths

    def accepts(self, encoder: Encoder, size: int) -> bool:
        """Whether the preprocessor takes a raw input of ``size``; a refusal must be a :class:`SlamError`."""
        try:
            self.preprocessed(encoder, size)
        except SlamError:
            return False
        except Exception as exc:
            fail(
                "short-input-refused-clearly",
                f"the preprocessor raised {type(exc).__name__} on a raw input of {size}: {exc}; refuse input it "
                "cannot take with slam_core.errors.AudioError (VideoError for video), naming the shortest it takes",
            )
        return True

    def shortest_size(self, encoder: Encoder) -> int:
        """The shortest raw input the preprocessor accepts, searched up to ``min(raw_sizes)``."""
        low, high = 1, min(self.raw_sizes)
        if not self.accepts(encoder, high):
            fail("short-input-refused-clearly", f"the preprocessor refuses the example input of {high}")
        while low < high:
            middle = (low + high) // 2
            if self.accepts(encoder, middle):
                high = middle
            else:
                low = middle + 1
        return low

    def sweep_sizes(self, encoder: Encoder) -> tuple[list[int], int]:
        """The raw sizes run alone (the shortest legal one and its neighbours, the examples, a spread between)
        and the shortest legal one."""
        try:
            shortest = self.shortest_size(encoder)
        except AssertionError:  # reported by short-input-refused-clearly; sweep the examples only
            shortest = min(self.raw_sizes)
        longest = max(self.raw_sizes)
        spread = torch.linspace(shortest, longest, SWEEP_POINTS).round().long().tolist()
        sizes = {shortest, shortest + 1, shortest + 2, *self.raw_sizes, *spread}
        return sorted(size for size in sizes if size <= longest), shortest

    def single_inputs(self, module: Any) -> list[tuple[str, Any, torch.Tensor]]:
        sizes, shortest = self.sweep_sizes(module)
        inputs = []
        for size in sizes:
            features, lengths = feature_ops.pad([self.preprocessed(module, size)])
            note = ", the shortest the preprocessor takes" if size == shortest else ""
            inputs.append((f"one unpadded raw input of {size}{note}", features, lengths))
        return inputs

    @checks("declares-rates")
    def test_declares_rates(self):
        encoder = self.build()
        values = {name: getattr(encoder, name, None) for name in ("sample_rate", "output_dim", "frame_rate")}
        require(
            encoder.modality in ("audio", "video", "audio-visual"),
            "declares-rates",
            f"modality {encoder.modality!r} is not audio, video or audio-visual",
        )
        bad = {name: value for name, value in values.items() if not isinstance(value, (int, float)) or value <= 0}
        require(not bad, "declares-rates", f"not positive numbers: {bad}")

    @checks("preprocessor-takes-pipeline-input")
    def test_preprocessor_takes_pipeline_input(self):
        encoder = self.build()
        preprocess = encoder.preprocessor()
        rule = "preprocessor-takes-pipeline-input"
        for size in self.raw_sizes:
            raw = self.raw_sample(encoder, size, _generator(0))
            try:
                features = feature_ops.as_features(preprocess(raw))
            except Exception as exc:
                fail(rule, f"the preprocessor raised {type(exc).__name__} on {_describe(raw)}: {exc}")
            streams = features if isinstance(features, Mapping) else {"features": features}
            for key, value in streams.items():
                if not (isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] > 0):
                    shape = tuple(getattr(value, "shape", ()))
                    fail(
                        rule, f"on {_describe(raw)} the preprocessor gave {key} of shape {shape}, expected [T > 0, ...]"
                    )
            frames = {key: int(value.shape[0]) for key, value in streams.items()}
            require(len(set(frames.values())) == 1, rule, f"the streams do not share their time axis: {frames}")

    @checks("short-input-refused-clearly")
    def test_short_input_refused_clearly(self):
        encoder = self.build()
        shortest = self.shortest_size(encoder)
        for size in (shortest, shortest + 1):
            require(self.accepts(encoder, size), "short-input-refused-clearly", f"{shortest} is taken, {size} is not")

    @checks("preprocessor-pickles")
    def test_preprocessor_pickles(self):
        encoder = self.build()
        preprocess = encoder.preprocessor()
        sample = self.raw_sample(encoder, self.raw_sizes[0], _generator(0))
        features = feature_ops.as_features(preprocess(sample))
        payload = pickle.dumps(preprocess)
        weights = sum(p.numel() * p.element_size() for p in encoder.parameters())
        limit = max(1_000_000, weights // 10)
        require(
            len(payload) < limit,
            "preprocessor-pickles",
            f"the preprocessor pickles to {len(payload)} bytes (limit {limit}: it must not hold the weights)",
        )
        again = feature_ops.as_features(pickle.loads(payload)(sample))
        for key, value in _streams(again).items():
            assert_same("preprocessor-pickles", value, _streams(features)[key], f"{key} after unpickling", 1e-6, 1e-6)

    @checks("forward-equals-head-of-backbone")
    def test_forward_equals_head_of_backbone(self):
        encoder = self.build().eval()
        features, lengths = self.batch(encoder)
        with torch.no_grad():
            whole, whole_lengths = encoder(features, lengths)
            split, split_lengths = encoder.head(*encoder.backbone(features, lengths))
        require(
            whole_lengths.tolist() == split_lengths.tolist(),
            "forward-equals-head-of-backbone",
            f"forward's lengths {whole_lengths.tolist()}, head(backbone)'s {split_lengths.tolist()}",
        )
        assert_same("forward-equals-head-of-backbone", split, whole, "head(*backbone(x))", self.atol, 1e-4)

    @checks("head-trains-with-frozen-backbone")
    def test_head_trains_with_frozen_backbone(self):
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
        require(hidden.requires_grad, "head-trains-with-frozen-backbone", "the head's output requires no gradient")
        hidden.float().square().mean().backward()
        for head in heads:
            for name, parameter in head.named_parameters():
                require(
                    parameter.grad is not None and bool(parameter.grad.abs().sum() > 0),
                    "head-trains-with-frozen-backbone",
                    f"head parameter {name} of {type(head).__name__} got no (or an all-zero) gradient",
                )


class ProjectorConformance(SequenceConformance):
    """Projector contract; ``input_dim``/``output_dim`` and ``lengths`` set the example batch."""

    kind = "projector"
    contract = Projector
    input_dim: ClassVar[int] = 12
    output_dim: ClassVar[int] = 20
    lengths: ClassVar[Sequence[int]] = (23, 9, 16, 2)

    def factory_kwargs(self) -> dict[str, Any]:
        return {"input_dim": self.input_dim, "output_dim": self.output_dim}

    def batch(self, module: Any, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        generator = _generator(1234)
        lengths = torch.tensor(self.lengths)
        hidden = torch.randn(len(self.lengths), max(self.lengths), self.input_dim, generator=generator)
        hidden = hidden * (torch.arange(hidden.shape[1])[None, :] < lengths[:, None])[..., None]
        return hidden.to(dtype), lengths

    def single_inputs(self, module: Any) -> list[tuple[str, Any, torch.Tensor]]:
        generator = _generator(99)
        return [
            (f"one unpadded input of {n} frames", torch.randn(1, n, self.input_dim, generator=generator), lengths)
            for n in range(1, max(self.lengths) + 1)
            for lengths in [torch.tensor([n])]
        ]

    @checks("declares-dims")
    def test_declares_dims(self):
        projector = self.build()
        declared = (getattr(projector, "input_dim", None), getattr(projector, "output_dim", None))
        require(
            declared == (self.input_dim, self.output_dim),
            "declares-dims",
            f"the factory got input_dim={self.input_dim}, output_dim={self.output_dim}; the projector declares "
            f"input_dim={declared[0]}, output_dim={declared[1]}",
        )


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _streams(features: Any) -> dict[str, torch.Tensor]:
    return dict(features) if isinstance(features, Mapping) else {"features": features}


def _describe(raw: Any) -> str:
    if isinstance(raw, RawAudio):
        return f"RawAudio({len(raw.waveform)} samples at {raw.sample_rate} Hz)"
    return f"a {type(raw).__name__}"
