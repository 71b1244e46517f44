"""torchrun / DDP helpers: the same training script runs as one process or as many.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them this is a single process and none of
torch.distributed is touched.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..device import resolve_device


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job; only the main process logs and writes files."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    owns_process_group: bool = False  # we joined it here, so we leave it; a caller's group is left alone

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes (nccl on GPUs, gloo on CPUs), or run alone."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    owns = False
    if world_size > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world_size)
        owns = True
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank, device=dev, owns_process_group=owns)


def barrier(ctx: DistContext) -> None:
    """Wait for every process (a no-op when alone)."""
    if ctx.is_distributed and dist.is_initialized():
        dist.barrier()


def shutdown_distributed(ctx: DistContext, *, wait: bool = True) -> None:
    """Leave the process group we joined, after a barrier when every rank got here normally.

    After an error there is no barrier: the other ranks may never arrive, and waiting would hang.
    """
    if ctx.owns_process_group and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """True on every rank when `flag` is true on at least one: a decision all processes take together."""
    if not (ctx.is_distributed and dist.is_initialized()):
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
