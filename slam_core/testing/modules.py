"""The rules of ``nn.Module`` components: determinism, state dict, dtype and device moves, gradients."""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import pytest
import torch

from slam_core.testing.base import ComponentConformance
from slam_core.testing.rules import checks, require


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute difference (inf for different shapes)."""
    if a.shape != b.shape:
        return float("inf")
    return float((a.double() - b.double()).abs().max()) if a.numel() else 0.0


def assert_same(rule: str, actual: torch.Tensor, expected: torch.Tensor, what: str, atol: float, rtol: float) -> None:
    """Fail ``rule`` unless ``actual`` is ``expected`` within tolerance; the message gives shapes and the difference."""
    require(
        tuple(actual.shape) == tuple(expected.shape),
        rule,
        lambda: f"{what}: shape {tuple(actual.shape)}, expected {tuple(expected.shape)}",
    )
    both_nan = actual.isnan() & expected.isnan()
    close = torch.isclose(actual.double(), expected.double(), atol=atol, rtol=rtol) | both_nan
    require(
        bool(close.all()),
        rule,
        lambda: (
            f"{what}: {int((~close).sum())} of {close.numel()} values differ, by up to "
            f"{max_difference(actual, expected):.3g} (tolerance atol={atol:g}, rtol={rtol:g})"
        ),
    )


class ModuleConformance(ComponentConformance):
    """Checks for ``nn.Module`` components. Subclasses define :meth:`example_inputs` and :meth:`run`."""

    #: Parameters allowed to get no gradient from :meth:`run` (e.g. unused by the example).
    params_without_grad: ClassVar[frozenset[str]] = frozenset()
    atol: ClassVar[float] = 1e-5

    def example_inputs(self, module: Any, dtype: torch.dtype = torch.float32) -> Any:
        raise NotImplementedError

    def run(self, module: Any, inputs: Any) -> torch.Tensor:
        raise NotImplementedError

    @checks("eval-deterministic")
    def test_eval_deterministic(self):
        module = self.build().eval()
        inputs = self.example_inputs(module)
        with torch.no_grad():
            first, second = self.run(module, inputs), self.run(module, inputs)
        assert_same("eval-deterministic", second, first, "a second forward in eval mode", atol=0, rtol=0)

    @checks("state-dict-round-trip")
    def test_state_dict_round_trip(self):
        source = self.build(seed=self.seed).eval()
        target = self.build(seed=self.seed + 1).eval()
        target.load_state_dict(copy.deepcopy(source.state_dict()))
        inputs = self.example_inputs(source)
        with torch.no_grad():
            expected, actual = self.run(source, inputs), self.run(target, inputs)
        what = "a module built from another seed, after load_state_dict"
        assert_same("state-dict-round-trip", actual, expected, what, atol=self.atol, rtol=0)

    @checks("dtype-move")
    def test_dtype_move(self):
        module = self.build().eval()
        inputs = self.example_inputs(module)
        with torch.no_grad():
            reference = self.run(module, inputs)
            module = module.to(torch.float64)
            stale = [n for n, p in module.named_parameters() if p.is_floating_point() and p.dtype != torch.float64]
            require(not stale, "dtype-move", lambda: f"parameters left behind by .to(float64): {stale[:5]}")
            output = self.run(module, _to_dtype(inputs, torch.float64))
        require(output.dtype == torch.float64, "dtype-move", f"the float64 module returned {output.dtype}")
        assert_same("dtype-move", output.float(), reference, "the float64 output", atol=1e-4, rtol=1e-4)

    @pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    @checks("device-move")
    def test_device_move(self):
        module = self.build().eval()
        inputs = self.example_inputs(module)
        with torch.no_grad():
            reference = self.run(module, inputs)
            output = self.run(module.to("cuda"), _to_device(inputs, "cuda"))
        require(output.device.type == "cuda", "device-move", f"the moved module's output is on {output.device}")
        assert_same("device-move", output.cpu(), reference, "the CUDA output", atol=1e-3, rtol=1e-3)

    @checks("gradients-match-trainable")
    def test_gradients_match_trainable(self):
        module = self.build().train()
        frozen = {name for name, p in module.named_parameters() if not p.requires_grad}
        self.run(module, self.example_inputs(module)).float().square().mean().backward()
        rule = "gradients-match-trainable"
        for name, parameter in module.named_parameters():
            if name in frozen:
                require(parameter.grad is None, rule, f"frozen parameter {name} received a gradient")
            elif name not in self.params_without_grad:
                require(parameter.grad is not None, rule, f"trainable parameter {name} received no gradient")
                require(torch.isfinite(parameter.grad).all(), rule, f"the gradient of {name} is not finite")
                require(parameter.grad.abs().sum() > 0, rule, f"the gradient of {name} is all zeros")

    @checks("frozen-builds-no-graph")
    def test_frozen_builds_no_graph(self):
        module = self.build().train().requires_grad_(False)
        output = self.run(module, self.example_inputs(module))
        require(
            not output.requires_grad,
            "frozen-builds-no-graph",
            "the output of a module whose parameters all have requires_grad=False requires grad: something "
            "the forward uses (a tensor attribute that is not a registered parameter?) still does",
        )


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
