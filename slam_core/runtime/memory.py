"""Training-step memory measured on fake tensors: live storage bytes, attributed to the component that made them.

``torch.distributed._tools.mem_tracker.MemTracker`` would do this, but (torch 2.14) it registers a
gradient hook on every parameter and so fails on a model with frozen ones; this tracker counts live
storages the same way (a weak reference per storage) and attributes each one to the outermost
component (``encoder``, ``projector``, ``llm``) whose forward or backward made it, via
``torch.utils.module_tracker.ModuleTracker``.
"""

from __future__ import annotations

import weakref
from collections import Counter
from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.module_tracker import ModuleTracker

#: Where bytes made outside every component go (the splice, the loss, the optimizer step).
OUTSIDE = "other"


@dataclass(frozen=True)
class StepMemory:
    """Bytes of one training step: what was live before it, at its peak, and that peak per component."""

    before: int
    peak: int
    #: Bytes made during the step and live at its peak, by component (``other``: outside every component,
    #: e.g. the splice, the loss, the optimizer step).
    at_peak: dict[str, int]
    #: Bytes made in each component's forward and still live when the forward ended (kept for backward).
    saved: dict[str, int]


class LiveMemory(TorchDispatchMode):
    """Counts the bytes of every live storage an op returned inside it, and their peak."""

    def __init__(self, components: tuple[str, ...]):
        super().__init__()
        self.components = components
        self.modules = ModuleTracker()
        self.live: dict[int, tuple[int, str]] = {}  # id(storage) -> (bytes, component)
        self.refs: dict[int, weakref.ref] = {}
        self.current = self.peak = 0
        self.at_peak: dict[str, int] = {}
        self.by_component: Counter[str] = Counter()

    def track(self, tensor: torch.Tensor, component: str | None = None) -> None:
        """Count ``tensor``'s storage (once) as live until it is freed."""
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self.live:
            return
        size, owner = storage.nbytes(), component or self.component()
        self.live[key] = (size, owner)
        self.refs[key] = weakref.ref(storage, lambda _, key=key: self.free(key))
        self.current += size
        self.by_component[owner] += size
        if self.current > self.peak:
            self.peak, self.at_peak = self.current, dict(self.by_component)

    def free(self, key: int) -> None:
        size, owner = self.live.pop(key)
        self.refs.pop(key, None)
        self.current -= size
        self.by_component[owner] -= size

    def component(self) -> str:
        """The component whose forward or backward is running now (ModuleTracker names ``SlamModel.llm...``)."""
        active = {parent.split(".")[1] for parent in self.modules.parents if parent.count(".") >= 1}
        return next((name for name in self.components if name in active), OUTSIDE)

    def __enter__(self):
        self.modules.__enter__()
        return super().__enter__()

    def __exit__(self, *args):
        super().__exit__(*args)
        self.modules.__exit__(*args)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = _run(func, args, kwargs or {})
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor):
                self.track(value)
        return result


def measure_step(model, spec, batch, text) -> StepMemory:
    """Run one training step of ``model`` (built on the meta device) on fake tensors and measure its memory.

    Nothing is allocated at model size: every parameter, activation, gradient and optimizer state is
    a :class:`~torch._subclasses.fake_tensor.FakeTensor` with a shape and no data.
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    from slam_core.runtime.train.distributed import Context
    from slam_core.runtime.train.probe import train_engine, train_step

    components = tuple(name for name in ("encoder", "projector", "llm") if getattr(model, name, None) is not None)
    saved: dict[str, int] = {}
    with FakeTensorMode(allow_non_fake_inputs=True):
        _fake_weights(model)
        # Module.to swaps each parameter, which a fake one refuses; they are on the CPU already
        model.to = lambda *args, **kwargs: model
        try:
            engine = train_engine(model, spec, Context(0, 0, 1, torch.device("cpu"), owns_group=False), 1)
        finally:
            del model.to
        tracker = LiveMemory(components)
        for tensor in [*model.parameters(), *model.buffers()]:
            tracker.track(tensor, "weights")
        before = tracker.current

        def keep_saved() -> None:
            saved.update((name, size) for name, size in tracker.by_component.items() if name != "weights")

        with tracker:
            train_step(engine, batch, text, after_forward=keep_saved)
    at_peak = {name: size for name, size in tracker.at_peak.items() if name != "weights"}
    return StepMemory(before, tracker.peak, at_peak, saved)


def _fake_weights(model: torch.nn.Module) -> None:
    """Replace every meta parameter and buffer of ``model`` by a fake CPU tensor of its shape and dtype."""
    for module in model.modules():
        for name, param in module._parameters.items():
            if param is not None:
                fake = torch.empty_like(param, device="cpu")
                module._parameters[name] = torch.nn.Parameter(fake, requires_grad=param.requires_grad)
        for name, buffer in module._buffers.items():
            if buffer is not None:
                module._buffers[name] = torch.empty_like(buffer, device="cpu")


#: A factory op (no tensor input) whose output has at most this many elements runs for real.
SMALL = 1 << 16


def _run(func, args, kwargs):
    """Run ``func`` on fake tensors, except where every tensor it reads is real (lengths, token ids and
    what is computed from them): those run for real, so code may read their values."""
    from torch._subclasses.fake_tensor import FakeTensor, unset_fake_temporarily

    tensors = [value for value in tree_flatten((args, kwargs))[0] if isinstance(value, torch.Tensor)]
    if any(isinstance(value, FakeTensor) for value in tensors):
        if func is torch.ops.aten._local_scalar_dense.default:  # a fake value read (the gradient norm): 0
            return _zero(args[0].dtype)
        if func in _INDEXING:
            args = (args[0], _long_indices(args[1]), *args[2:])
        return func(*args, **kwargs)
    if not tensors:
        result = func(*args, **kwargs)
        outputs = [value for value in tree_flatten(result)[0] if isinstance(value, torch.Tensor)]
        if any(value.numel() > SMALL for value in outputs):
            return result
    with unset_fake_temporarily():
        return func(*args, **kwargs)


_INDEXING = {torch.ops.aten.index.Tensor, torch.ops.aten.index_put.default, torch.ops.aten.index_put_.default}


def _long_indices(indices: list) -> list:
    """A real boolean mask turned into integer indices (a fake one cannot tell how many rows it picks)."""
    from torch._subclasses.fake_tensor import FakeTensor, unset_fake_temporarily

    out = []
    for index in indices:
        if isinstance(index, torch.Tensor) and index.dtype == torch.bool and not isinstance(index, FakeTensor):
            with unset_fake_temporarily():
                out.extend(index.nonzero().unbind(1))
        else:
            out.append(index)
    return out


def _zero(dtype: torch.dtype) -> bool | int | float:
    if dtype == torch.bool:
        return False
    return 0.0 if dtype.is_floating_point or dtype.is_complex else 0
