"""Independent jobs (one series' fits, one joint law, one plot) on the machine's cores.

The series of an analysis are fitted independently and every bootstrap is seeded from
the series itself, so the results do not depend on how the jobs are spread: forked
worker processes run `task(i)` for job indices and send back what it returns.  With one
core, few jobs, or no `fork` (not Linux/macOS), everything runs in this process.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Optional, Sequence

# The function the forked workers call (set before the pool forks; never pickled).
_TASK: Optional[Callable[[int], Any]] = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """DLRM_ANALYSIS_JOBS if set, else every core this process may use."""
    env = os.environ.get("DLRM_ANALYSIS_JOBS")
    if env:
        return max(1, int(env))
    return available_cores()


def _call(i: int) -> Any:
    return _TASK(i)


def run_jobs(task: Callable[[int], Any], n: int, jobs: int, order: Optional[Sequence[int]] = None,
             min_jobs_to_fork: int = 4) -> list[Any]:
    """[task(0), ..., task(n - 1)], computed on up to `jobs` processes; `order` is the
    order to start them in (largest first balances the load)."""
    global _TASK
    order = list(range(n)) if order is None else list(order)
    if jobs <= 1 or n < min_jobs_to_fork or "fork" not in multiprocessing.get_all_start_methods():
        return [task(i) for i in range(n)]
    _TASK = task
    try:
        with ProcessPoolExecutor(max_workers=min(jobs, n), mp_context=multiprocessing.get_context("fork")) as pool:
            futures = {i: pool.submit(_call, i) for i in order}
            return [futures[i].result() for i in range(n)]
    finally:
        _TASK = None
