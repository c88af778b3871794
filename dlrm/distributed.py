"""Process-group set-up: one process (a private gloo group of size 1) or torchrun's ranks."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Optional

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or ("RANK" in os.environ and "WORLD_SIZE" in os.environ)


def backend_for(device_type: str) -> str:
    """gloo on CPU, NCCL on GPU.  NCCL refuses CPU tensors, so every collective of the
    harness sends tensors on the rank's own device (`info.device`): the eval gather, the
    per-step agreement, object broadcasts.  (A mixed `cpu:gloo,cuda:nccl` group would also
    carry CPU tensors, but torch's ShardedTensor and checkpoint code key off the backend
    name, and it breaks them on CPU.)"""
    return "nccl" if device_type == "cuda" else "gloo"


def init(device_type: str, timeout_s: Optional[float] = None) -> DistInfo:
    """Initialise (once per process) and describe the process group.

    A single process gets an in-memory gloo group of size 1, so the same
    DistributedModelParallel code path serves 1 and N ranks.  Under torchrun the group
    comes from the environment; `timeout_s` bounds how long a rank waits for its peers, at
    the rendezvous and in every collective (None: torch's default, 10 min NCCL, 30 min gloo).
    """
    if device_type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA device is visible: use trainer.device=cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)  # before the group: NCCL binds each rank to its device
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        if under_torchrun():
            timeout = {} if timeout_s is None else {"timeout": timedelta(seconds=timeout_s)}
            dist.init_process_group(backend=backend_for(device_type), **timeout)
        else:
            dist.init_process_group(backend=backend_for(device_type), store=dist.HashStore(), rank=0, world_size=1)
    world_size = dist.get_world_size()
    return DistInfo(rank=dist.get_rank(), world_size=world_size, local_rank=local_rank,
                    local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", world_size)), device=device)


def world_size_hint() -> int:
    """The world size before the group exists (for validating the config first)."""
    return int(os.environ.get("WORLD_SIZE", 1)) if under_torchrun() else 1


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank (pickled, sent as a tensor on the rank's device)."""
    if info.world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=info.device)
    return box[0]


def shutdown(info: DistInfo, peers_alive: bool) -> None:
    """End this rank's part in torchrun's group before the process exits.  A gloo group left
    for interpreter exit can abort the process there ("terminate called without an active
    exception": its threads outlive the objects they use), turning a rank that is done into a
    failed one.  With `peers_alive` the ranks first meet, so that none tears its connections
    down while another still reads from them; after a lost peer there is nobody to meet."""
    if info.world_size == 1 or not dist.is_initialized():
        return
    try:
        if peers_alive:
            dist.barrier()
    except Exception:  # noqa: BLE001 -- a peer lost after the run's status was written changes nothing
        pass
    dist.destroy_process_group()


_NO_STEP = -(2 ** 62)


def agree(first_bad_step: Optional[int], flags: list[bool], info: DistInfo) -> tuple[Optional[int], list[bool]]:
    """The earliest step any rank found bad (None: no rank did), and each flag true on every
    rank when it is true on any rank: one all-reduce (MAX, the step negated) of a small
    tensor on the rank's device."""
    if info.world_size == 1:
        return first_bad_step, [bool(f) for f in flags]
    t = torch.tensor([_NO_STEP if first_bad_step is None else -int(first_bad_step), *(int(bool(f)) for f in flags)],
                     dtype=torch.int64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    values = t.tolist()
    return (None if values[0] == _NO_STEP else -values[0]), [bool(v) for v in values[1:]]
