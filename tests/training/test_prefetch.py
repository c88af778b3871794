"""The batches' way to the step: generated in the prefetch thread, with numpy's BLAS on one
thread so that it leaves the step's cores alone, and the same bits whatever its thread count."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from dlrm.batches import prefetch
from harness import typed

REPO = Path(__file__).resolve().parents[2]
# One training process's set-up, and numpy's BLAS threads before and after it.
_BUILD_AND_COUNT = """
import json
import numpy  # loads its BLAS, which threadpoolctl then sees
from threadpoolctl import threadpool_info
def blas(): return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
before = blas()
from dlrm import distributed
from dlrm.loop import build
from runner.compose import compose, typed
build(typed(compose(["data.num_eval_samples=4096"])), distributed.init("cpu"))
print(json.dumps({"before": before, "after": blas()}))
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs one thread on one core anyway")
def test_a_training_process_runs_numpy_blas_on_one_thread():
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", _BUILD_AND_COUNT], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300, check=True)
    counts = json.loads(out.stdout.strip().splitlines()[-1])
    assert counts["before"] and max(counts["before"]) > 1  # what OpenBLAS would otherwise run
    assert counts["after"] == [1] * len(counts["after"])


@pytest.mark.parametrize("world", ["synthetic", "synthetic_saturating", "synthetic_top"])
def test_the_stream_has_the_same_bits_on_one_and_two_blas_threads(world):
    from dlrm.data import make_source

    source = make_source(typed([f"data={world}", "data.num_eval_samples=4096"]).data, 0)
    assert any(p["user_api"] == "blas" for p in threadpool_info())

    def slices(threads: int) -> list[np.ndarray]:
        with threadpool_limits(limits=threads, user_api="blas"):
            out = []
            for start in range(12345, 12345 + 4 * 2048, 2048):
                a = source.train_arrays(start, start + 2048)
                out += [a.dense, a.sparse, a.labels]
            return out

    for one, two in zip(slices(1), slices(2)):
        np.testing.assert_array_equal(one, two)


def test_an_error_in_the_prefetch_thread_is_raised_at_its_item():
    def make(item: int) -> int:
        if item == 3:
            raise KeyError("no such sample")
        return item * 10

    got = []
    with pytest.raises(KeyError, match="no such sample"):
        for value in prefetch(iter(range(6)), make, depth=2):
            got.append(value)
    assert got == [0, 10, 20]


class _CountingSource:
    """A source that counts its train_arrays calls."""

    def __init__(self, source):
        self.source, self.calls = source, 0

    def __getattr__(self, name):
        return getattr(self.source, name)

    def train_arrays(self, start: int, stop: int):
        self.calls += 1
        return self.source.train_arrays(start, stop)


def _trainable(rank: int, world_size: int):
    import torch

    from dlrm.batches import BatchMaker
    from dlrm.data import make_source
    from dlrm.distributed import DistInfo
    from dlrm.loop import Trainable

    source = _CountingSource(make_source(typed(["data.num_eval_samples=4096"]).data, 0))
    cpu = torch.device("cpu")
    return Trainable(source=source, shape=None, model=None, optimizer=None, plan=None,
                     maker=BatchMaker(len(source.cardinalities), cpu), info=DistInfo(rank, world_size, rank, world_size, cpu))


@pytest.mark.parametrize("rank,world_size,calls", [(0, 1, 4), (1, 2, 26)])
def test_the_loop_batches_are_the_batches_one_by_one_read_a_block_at_a_time(rank, world_size, calls):
    import torch

    t = _trainable(rank, world_size)
    first, num_samples, batch = 300, 3 * 4096 + 1000, 512  # 26 global batches, the last of 188
    got = list(t.train_batches(num_samples, batch, first, depth=8))
    assert t.source.calls == calls  # 4 blocks of 8 batches on one rank; on 2, no rank's slices touch
    want = [(min(batch, num_samples - s), t.train_batch(s, min(batch, num_samples - s)))
            for s in range(first, num_samples, batch)]
    assert [n for n, _ in got] == [n for n, _ in want]
    for (_, a), (_, b) in zip(got, want):
        assert torch.equal(a.dense_features, b.dense_features) and torch.equal(a.labels, b.labels)
        assert torch.equal(a.sparse_features.values(), b.sparse_features.values())
        assert torch.equal(a.sparse_features.offsets(), b.sparse_features.offsets())
        assert a.sparse_features.keys() == b.sparse_features.keys()
