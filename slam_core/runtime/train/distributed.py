"""The process group: set up from torchrun's environment, small collectives, teardown."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """Where this process sits: its rank, the world size and its device."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool  # this module created the process group (and destroys it)
    added_env: tuple[str, ...] = ()  # variables setup() put in the environment (teardown removes them)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()


def setup(engine: str) -> Context:
    """Join (or create) the process group an engine needs; ``single`` needs none.

    Under torchrun the environment names the rank and world; a multi-process engine started
    without it runs as a world of one (DeepSpeed's ZeRO is still useful on one GPU).
    """
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if engine == "single":
        if env_world > 1:
            raise RuntimeError(
                f"train.engine is 'single' but this process is one of WORLD_SIZE={env_world}; "
                "set train.engine to ddp, fsdp2 or deepspeed to train on several processes"
            )
        return Context(0, 0, 1, _device(0), owns_group=False)
    owns = not dist.is_initialized()
    added: dict[str, str] = {}
    if owns:
        if "RANK" not in os.environ:
            added = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
            if "MASTER_PORT" not in os.environ:
                added["MASTER_PORT"] = str(free_port())
        elif "LOCAL_RANK" not in os.environ:
            added = {"LOCAL_RANK": os.environ["RANK"]}
        os.environ.update(added)
        local_rank = int(os.environ["LOCAL_RANK"])
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    return Context(rank, local_rank, world, _device(local_rank), owns_group=owns, added_env=tuple(added))


def teardown(context: Context) -> None:
    """Destroy the process group if :func:`setup` created it (after a barrier)."""
    if context.owns_group and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    for name in context.added_env:
        os.environ.pop(name, None)


def free_port() -> int:
    """A TCP port free on this host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _device(local_rank: int) -> torch.device:
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def all_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum over all ranks (the values themselves without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tensor.tolist()


def all_gather(value: Any) -> list[Any]:
    """Every rank's ``value`` (picklable), in rank order."""
    if not (dist.is_available() and dist.is_initialized()):
        return [value]
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def broadcast(value: Any) -> Any:
    """Rank 0's ``value`` on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
