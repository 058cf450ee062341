"""torch.distributed set-up for ``torchrun``: one process per device.

Without torchrun (no ``WORLD_SIZE`` above 1 in the environment) everything runs
in one process and no process group is created. Under torchrun the backend is
NCCL on GPU and gloo on CPU, each rank drives ``cuda:LOCAL_RANK`` (or the CPU).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import DataError


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    local_world_size: int = 1
    node: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        """Sum a few numbers over ranks (float64 on the rank's device)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()


    def from_main(self, compute):
        """``compute()`` run on rank 0 alone, its (picklable) result sent to every rank."""
        value = [compute() if self.is_main else None]
        if self.distributed:
            dist.broadcast_object_list(value, src=0)
        return value[0]

    def per_node(self, compute):
        """``compute()`` run once per machine (on its local rank 0), its small
        picklable result sent to that machine's other ranks: work on a local
        copy of data (hashing a folder, checking a manifest) is done once per
        copy, not once per process."""
        if not self.distributed:
            return compute()
        gathered: list = [None] * self.world_size
        dist.all_gather_object(gathered, (self.node, compute()) if self.local_rank == 0 else (None, None))
        return next(value for node, value in gathered if node == self.node)


def pick_device(preference: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` (the GPU of this rank when CUDA is present), ``cpu`` or ``cuda``."""
    if preference not in ("auto", "cpu", "cuda") and not preference.startswith("cuda:"):
        raise DataError(f"unknown device {preference!r}: use auto, cpu or cuda")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DataError("CUDA was asked for but torch sees no GPU: use --device cpu (or auto)")
        return torch.device(preference if ":" in preference else f"cuda:{local_rank}")
    return torch.device("cpu")


def setup(device: str = "auto") -> Context:
    """The context of this process; joins the torchrun process group when there is one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    node = int(os.environ.get("GROUP_RANK", "0"))  # torchrun's node rank
    dev = pick_device(device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
            dist.init_process_group("nccl", device_id=dev)
        else:
            dist.init_process_group("gloo")
    return Context(rank, world_size, local_rank, dev, local_world_size, node)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def session(device: str = "auto") -> Iterator[Context]:
    """:func:`setup` for a run, and on leaving :func:`teardown` if this call joined the process
    group: a run inside another (``produce`` inside ``baselines``) leaves its caller's group alone."""
    joined_already = dist.is_available() and dist.is_initialized()
    context = setup(device)
    try:
        yield context
    finally:
        if not joined_already:
            teardown(context)


def fail_point(kind: str, count: int) -> None:
    """Fault injection for the resume tests: ``PLADA_TRAIN_FAIL_AFTER=shards:2``
    (or ``steps:N``) makes the process exit once it has completed that many
    units in this run, as a kill would (completed work stays on disk)."""
    spec = os.environ.get("PLADA_TRAIN_FAIL_AFTER")
    if spec and spec == f"{kind}:{count}":
        raise SystemExit(f"plada-train: stopped by PLADA_TRAIN_FAIL_AFTER={spec}")


__all__ = ["Context", "pick_device", "setup", "teardown", "session", "fail_point"]
