"""From the sample stream to TorchRec batches: this rank's slice of each global batch,
generated ahead in a background thread, a block of batches at a time (numpy releases the
GIL in its kernels, so generation overlaps the training step)."""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torchrec.datasets.utils import Batch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from dlrm.data.source import Arrays
from dlrm.model import feature_name


def rank_slice(global_start: int, global_batch: int, rank: int, world_size: int) -> tuple[int, int]:
    """This rank's [start, stop) of the global batch starting at `global_start`.

    Concatenating the ranks' slices, rank by rank, gives the global batch: the 1-rank
    stream, whatever the world size.
    """
    local = global_batch // world_size
    start = global_start + rank * local
    return start, start + local


def global_batches(num_samples: int, batch_size: int, first_sample: int = 0) -> Iterator[tuple[int, int]]:
    """(start, size) of each global batch of one pass, from `first_sample` (for resume)."""
    for start in range(first_sample, num_samples, batch_size):
        yield start, min(batch_size, num_samples - start)


# A rank's samples generated per call of the source: the prefetch job is a block of batches.
# The generator's Python calls take the GIL in turn with the step's, and at batch 512 that
# costs the step ~15 %; a block of 4096 samples makes an eighth of the calls there.
# Larger blocks generate more slowly per sample (16384: 0.7x as fast, dlrm/data/stream_cache.py).
GENERATION_BLOCK_SAMPLES = 4096


def batch_blocks(batches: Iterator[tuple[int, int]], per_block: int) -> Iterator[list[tuple[int, int]]]:
    """The global batches (start, size) in lists of `per_block` consecutive ones (the last may be shorter)."""
    block: list[tuple[int, int]] = []
    for batch in batches:
        block.append(batch)
        if len(block) == per_block:
            yield block
            block = []
    if block:
        yield block


def contiguous_runs(slices: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """[start, stop) slices with each run of adjacent ones merged into one."""
    runs: list[list[int]] = []
    for start, stop in slices:
        if runs and runs[-1][1] == start:
            runs[-1][1] = stop
        else:
            runs.append([start, stop])
    return [(a, b) for a, b in runs]


class BatchMaker:
    """Arrays -> torchrec Batch, reusing the KJT's offsets for each batch size."""

    def __init__(self, num_sparse_features: int, device: torch.device):
        self.keys = [feature_name(f) for f in range(num_sparse_features)]
        self.device = device
        self._offsets: dict[int, torch.Tensor] = {}
        self._lengths: dict[int, torch.Tensor] = {}

    def __call__(self, arrays: Arrays) -> Batch:
        n = len(arrays)
        if n not in self._offsets:
            # One id per feature per sample: lengths are all 1, offsets 0..F*n.
            self._offsets[n] = torch.arange(len(self.keys) * n + 1, dtype=torch.int32)
            self._lengths[n] = torch.ones(len(self.keys) * n, dtype=torch.int32)
        # KJT values are feature-major: all samples of feature 0, then feature 1, ...
        values = torch.from_numpy(np.ascontiguousarray(arrays.sparse.T).reshape(-1))
        kjt = KeyedJaggedTensor(
            keys=self.keys, values=values, lengths=self._lengths[n], offsets=self._offsets[n], stride=n
        )
        batch = Batch(
            dense_features=torch.from_numpy(arrays.dense),
            sparse_features=kjt,
            labels=torch.from_numpy(arrays.labels),
        )
        return batch.to(self.device, non_blocking=True) if self.device.type != "cpu" else batch


def single_threaded_numpy_blas() -> None:
    """Run numpy's BLAS (the generators' matmuls) on one thread, for the rest of the process.

    Generation runs in the prefetch thread beside the step, on one core.  OpenBLAS's own
    threads would add nothing there (its matrices are small: generation runs at the same
    rate on one thread), and after each call they busy-wait for the next one, on the cores
    the step's torch threads run on.  The stream has the same bits either way
    (tests/training/test_prefetch.py).  Torch's own BLAS and OpenMP are not touched.
    """
    threadpool_limits(limits=1, user_api="blas")


def prefetch(items: Iterator, make: Callable, depth: int) -> Iterator:
    """Yield make(item) for each item, computed `depth` ahead in one background thread.

    An exception in the thread is re-raised in the consumer, at the item it belongs to.
    """
    if depth <= 0:
        for item in items:
            yield make(item)
        return
    q: "queue.Queue" = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def work() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((True, make(item)))
            q.put((True, done))
        except BaseException as e:  # handed to the consumer
            q.put((False, e))

    thread = threading.Thread(target=work, daemon=True, name="batch-prefetch")
    thread.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                raise value
            if value is done:
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


def eval_slices(num_eval_samples: int, eval_batch_size: int, rank: int, world_size: int) -> Iterator[tuple[int, int]]:
    """This rank's [start, stop) of each global eval batch (equal sizes on every rank)."""
    for start, size in global_batches(num_eval_samples, eval_batch_size * world_size):
        yield rank_slice(start, size, rank, world_size)

