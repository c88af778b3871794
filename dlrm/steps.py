"""The stream of training steps: plain (one batch, one step) or TorchRec's pipeline.

Both yield, for each step taken, its global batch size and its loss (detached), and call
`before_step(samples_after)` before each step, where the learning rate is set: the step's
zero_grad hands it to the fused embedding kernels before their in-backward update.

`TrainPipelineSparseDist` overlaps the next batches' host-to-device copy and input
all-to-all with the current step.  It pays on GPUs; on CPU there are no streams to
overlap (measured 0.94-1.06x, docs/PERFORMANCE.md), so `trainer.pipeline=auto` uses it on
CUDA only.  It trains the same batches in the same order with the same step, so its
result equals the plain loop's (tests/app/test_distributed.py).
"""
from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterator

import torch

from dlrm.config import TrainerConfig

StepFn = Callable[[int], None]


def train_step(model, optimizer, batch, poison_update: bool = False) -> torch.Tensor:
    """One step.  zero_grad first: it also hands the current (warmed-up) learning rate to
    the fused embedding kernels, which apply their update inside backward -- set after
    the step, the first update after a start or a resume would use a stale rate.
    `poison_update` (fault injection) makes this step's update, not its loss, NaN."""
    optimizer.zero_grad()
    loss, _ = model(batch)
    (loss * float("nan") if poison_update else loss).backward()
    optimizer.step()
    return loss.detach()


def use_pipeline(trainer_cfg: TrainerConfig, device_type: str) -> bool:
    choice = trainer_cfg.pipeline
    return device_type == "cuda" if choice == "auto" else bool(choice)


def plain_steps(t: Any, items: Iterator, before_step: StepFn, samples_seen: int, step: int = 0,
                poisons_update: Callable[[int], bool] = lambda step: False) -> Iterator[tuple[int, torch.Tensor]]:
    """`step`: the steps taken before (a resume); `poisons_update(step)` (fault injection,
    dlrm/faults.py): whether that 0-based step's update is made NaN."""
    for size, batch in items:
        before_step(samples_seen + size)
        loss = train_step(t.model, t.optimizer, batch, poison_update=poisons_update(step))
        samples_seen += size
        step += 1
        yield size, loss


class PipelinedSteps:
    """Steps through TrainPipelineSparseDist; `pause()` before using the model directly
    (an eval), the next step re-attaches it."""

    def __init__(self, t: Any, items: Iterator, before_step: StepFn, samples_seen: int, batch_size: int,
                 num_train_samples: int):
        from torchrec.distributed.train_pipeline import TrainPipelineSparseDist

        self.pipe = TrainPipelineSparseDist(t.model, t.optimizer, t.info.device)
        self._sizes: deque[int] = deque()
        self._items = items
        self._before_step = before_step
        self._samples_seen, self._batch_size, self._n = samples_seen, batch_size, num_train_samples

    def _batches(self) -> Iterator:
        for size, batch in self._items:
            self._sizes.append(size)
            yield batch

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor]]:
        it = self._batches()
        while True:
            # Global batches are all full but the last: the step's end is known before the
            # pipeline pulls its batch.
            self._before_step(min(self._samples_seen + self._batch_size, self._n))
            try:
                output = self.pipe.progress(it)
            except StopIteration:
                return
            size = self._sizes.popleft()
            self._samples_seen += size
            yield size, output[0].detach()

    def pause(self) -> None:
        self.pipe.detach()
