"""The ranks of a training run: who this process is, and the few collectives the loop needs.

One process trains alone (rank 0 of 1, no process group). Under torchrun the environment names
the rank and world size and the process group is created here (gloo on CPU, NCCL on CUDA);
under Ray Train the group already exists. Everything above this module asks `World` rather
than torch.distributed, so the single-process path never touches a process group.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple, TypeVar

import torch
import torch.distributed as dist

T = TypeVar("T")
_CPU = torch.device("cpu")


@dataclass(frozen=True)
class World:
    """This process's place in the run: rank, world size and its device."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = _CPU
    owns_group: bool = False  # this module made the process group, so it destroys it

    @property
    def is_main(self) -> bool:
        """Rank 0 drives logging, progress, samples and the files every rank agrees on."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def shard(self, items: Sequence[T]) -> list[T]:
        """This rank's share of `items`: every size-th item from its rank (all ranks together
        hold each item once, in a fixed order every rank agrees on)."""
        return list(items[self.rank :: self.size])

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sum over ranks (float64, on the CPU-side group when possible)."""
        if not self.distributed:
            return [float(v) for v in values]
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor)
        return tensor.tolist()

    def max(self, values: Sequence[int]) -> list[int]:
        """Element-wise max over ranks."""
        if not self.distributed:
            return [int(v) for v in values]
        tensor = torch.tensor(list(values), dtype=torch.int64, device=self._comm_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [int(v) for v in tensor.tolist()]

    def max_floats(self, values: Sequence[float]) -> list[float]:
        """Element-wise max over ranks, in float64."""
        if not self.distributed:
            return [float(v) for v in values]
        tensor = torch.tensor(list(values), dtype=torch.float64, device=self._comm_device())
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.tolist()

    def sum_dicts(self, values: Mapping[str, float]) -> dict[str, float]:
        """Per-key sums over ranks of dicts whose keys may differ between ranks."""
        if not self.distributed:
            return dict(values)
        gathered = self.gather_objects(dict(values))
        keys = sorted({k for d in gathered for k in d})
        return {k: float(sum(d.get(k, 0.0) for d in gathered)) for k in keys}

    def gather_objects(self, value: T) -> list[T]:
        """`value` from every rank, in rank order (picklable objects)."""
        if not self.distributed:
            return [value]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, value)
        return out

    def broadcast(self, value: T) -> T:
        """Rank 0's `value` on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


class WorldInfo(NamedTuple):
    """This process's rank, the world size and its rank on its node."""

    rank: int
    world_size: int
    local_rank: int


def world_from_env(environ: Mapping[str, str] | None = None) -> WorldInfo:
    """(rank, world size, local rank) from torchrun's RANK / WORLD_SIZE / LOCAL_RANK.

    Unset variables mean one process alone, (0, 1, 0). With a world of several ranks RANK and
    LOCAL_RANK must be set too: every process defaulting to rank 0 would deadlock the group.
    Raises ValueError for values that are not integers or are out of range.
    """
    env = os.environ if environ is None else environ
    values: dict[str, int] = {}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        raw = env.get(name)
        if raw is None:
            continue
        try:
            values[name] = int(raw.strip())
        except ValueError:
            raise ValueError(f"{name}={raw!r} is not an integer (torchrun environment)") from None
    size = values.get("WORLD_SIZE", 1)
    if size < 1:
        raise ValueError(f"WORLD_SIZE={size} must be at least 1 (torchrun environment)")
    missing = [n for n in ("RANK", "LOCAL_RANK") if n not in values]
    if size > 1 and missing:
        raise ValueError(f"WORLD_SIZE={size} but {' and '.join(missing)} not set (torchrun environment)")
    rank, local_rank = values.get("RANK", 0), values.get("LOCAL_RANK", 0)
    if not 0 <= rank < size:
        raise ValueError(f"RANK={rank} is outside 0..{size - 1} (WORLD_SIZE={size})")
    if not 0 <= local_rank < size:
        raise ValueError(f"LOCAL_RANK={local_rank} is outside 0..{size - 1} (WORLD_SIZE={size})")
    return WorldInfo(rank, size, local_rank)


def init_world(
    *,
    launcher: str = "auto",
    backend: str = "auto",
    num_trainers: int = 1,
    device: str = "cpu",
    timeout_s: float = 3600.0,
    group_for_one: bool = False,
) -> World:
    """This process's `World`, creating the process group when torchrun started several ranks.

    `device` is the configured model device: "cuda" becomes this rank's GPU (by local rank).
    A group made by someone else (Ray Train) is used as it is. `num_trainers` is checked
    against the world size so a config meant for 8 ranks does not silently run on 1.
    `group_for_one` makes a one-rank group for a lone process (FSDP on one device).
    """
    env = world_from_env()
    if launcher == "torchrun" and "WORLD_SIZE" not in os.environ and not dist.is_initialized():
        raise ValueError(
            "distributed.launcher=torchrun but this process was not started by torchrun"
        )
    owns = False
    if dist.is_initialized():
        rank, size, local = dist.get_rank(), dist.get_world_size(), env.local_rank
    elif env.world_size > 1:
        rank, size, local = env
        chosen = _backend(backend, device)
        dist.init_process_group(chosen, timeout=timedelta(seconds=timeout_s))
        owns = True
    else:
        rank, size, local = 0, 1, 0
        if group_for_one:
            store = dist.HashStore()
            dist.init_process_group(_backend(backend, device), store=store, rank=0, world_size=1)
            owns = True
    if launcher in ("torchrun", "ray") and size != num_trainers:
        raise ValueError(
            f"distributed.num_trainers={num_trainers} but {size} rank(s) are running; "
            "make them agree (torchrun --nproc-per-node, or the Ray worker count)"
        )
    torch_device = torch.device(device)
    if torch_device.type == "cuda" and torch_device.index is None:
        torch_device = torch.device("cuda", local % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(torch_device)
    return World(rank=rank, size=size, local_rank=local, device=torch_device, owns_group=owns)


def close_world(world: World) -> None:
    """Destroy the process group if `init_world` made it (a launcher's group is the launcher's)."""
    if world.owns_group and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _backend(backend: str, device: str) -> str:
    if backend != "auto":
        return backend
    return "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
