"""Train one run dir on this process's ranks and write its summary, whatever happens.

The caller (the app, runner/job.py) has validated the config (typed: runner/compose.py `typed`), decided under the run
dir's lock that this run is to be trained, and written config.yaml.  Here: env.json,
the training loop, then summary.json on global rank 0 -- completed, diverged, or
interrupted by a preemption signal (then `Preempted` propagates so that the launcher can
requeue).  Any other exception propagates too; the caller records it as failed.
"""
from __future__ import annotations

import time
from pathlib import Path

import rundir
from dlrm.checkpoint import Preempted, remove_checkpoints
from dlrm.config import Config
from dlrm.distributed import DistInfo
from dlrm.environment import environment
from dlrm.loop import Diverged, train
from rundir import Status


def run(cfg: Config, run_dir: Path, info: DistInfo, progress_label: str = "") -> Status:
    t0 = time.perf_counter()
    if info.is_main:
        rundir.atomic_write_json(run_dir / rundir.ENV_FILE, environment(str(info.device), info.world_size))
    seed = int(cfg.seed)
    try:
        status, fields = Status.COMPLETED, train(cfg, run_dir, info, progress_label)
    except Diverged as e:
        status, fields = Status.DIVERGED, {"world_size": info.world_size, "error": str(e), "diverged_step": e.step,
                                           "diverged_samples_seen": e.samples_seen}
    except Preempted as e:
        if info.is_main:
            rundir.write_summary(run_dir, Status.INTERRUPTED, seed, world_size=info.world_size, error=str(e))
        raise
    if info.is_main:
        rundir.write_summary(run_dir, status, seed, **fields, wall_seconds=time.perf_counter() - t0)
        if status == Status.COMPLETED:
            remove_checkpoints(run_dir)  # only now: a kill at any earlier moment still finds it
    return status
