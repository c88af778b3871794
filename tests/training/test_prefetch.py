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
