"""A job on N local ranks: `torchrun --standalone --nproc_per_node=N -m runner.worker RUN_DIR`.

The job has decided and written config.yaml under the lock it holds; the ranks read that
frozen file, global rank 0 writes the summary.  This process waits for them.
"""
from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from omegaconf import DictConfig

import rundir
from rundir import Status

log = logging.getLogger("dlrm")


def run_with_torchrun(cfg: DictConfig, run_dir: Path, nproc: int) -> Status:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "runner.worker", str(run_dir)]
    log.info("starting %d ranks: %s", nproc, " ".join(cmd))
    proc = subprocess.run(cmd)
    status = rundir.run_status(run_dir)
    if proc.returncode != 0 and status is None:
        raise RuntimeError(f"torchrun exited with status {proc.returncode}; see the ranks' output above")
    return Status(status) if status else Status.FAILED
