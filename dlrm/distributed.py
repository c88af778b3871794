"""Process-group set-up: one process (a private gloo group of size 1) or torchrun's ranks."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def init(device_type: str) -> DistInfo:
    """Initialise (once per process) and describe the process group.

    A single process gets an in-memory gloo group of size 1, so the same
    DistributedModelParallel code path serves 1 and N ranks.  Under torchrun the group
    comes from the environment: gloo on CPU, NCCL on GPU.
    """
    if device_type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA device is visible: use trainer.device=cpu")
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if under_torchrun():
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=dist.HashStore(), rank=0, world_size=1)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=device)


def world_size_hint() -> int:
    """The world size before the group exists (for validating the config first)."""
    return int(os.environ.get("WORLD_SIZE", 1)) if under_torchrun() else 1
