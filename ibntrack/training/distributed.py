"""Process layout of a training run: one process, or one rank of a ``torchrun`` process group.

Without a ``RANK`` environment variable a run is a single process; under ``torchrun`` it joins the
process group (NCCL on CUDA, gloo on CPU) and each rank uses ``cuda:LOCAL_RANK`` or the CPU.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist

__all__ = ["DistEnv", "barrier", "setup_distributed"]


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """Where this process sits: ``rank`` of ``world_size``, its ``device``, and whether it created the
    process group (and so must destroy it)."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes logs and checkpoints."""
        return self.rank == 0


def setup_distributed(device_name: str) -> DistEnv:
    """Single process without ``RANK``; otherwise join (or reuse) the torchrun process group.

    Args:
        device_name: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        ValueError: CUDA asked for but not available.
    """
    if device_name == "auto":
        device_name = "cuda" if torch.cuda.is_available() else "cpu"
    if device_name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device is {device_name!r} but CUDA is not available; use cpu or auto")
    if "RANK" not in os.environ:
        return DistEnv(0, 0, 1, torch.device(device_name), owns_group=False)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if device_name.startswith("cuda"):
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        owns = True
    return DistEnv(rank, local_rank, world_size, device, owns_group=owns)


def barrier(env: DistEnv) -> None:
    """Waits for every rank (a no-op in a single process)."""
    if env.world_size > 1 and dist.is_initialized():
        dist.barrier()
