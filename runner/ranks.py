"""A job on N local ranks: `torchrun --standalone --nproc_per_node=N -m runner.worker RUN_DIR`.

The job has decided and written config.yaml under the lock it holds; the ranks read that
frozen file and global rank 0 writes the summary.  This process waits for them, and:

- hands a preemption on: SIGTERM or SIGUSR2 (submitit's signal, which torchrun would not
  pass on) to this process becomes SIGTERM to every rank, sent straight to them (torchrun's
  own handling would SIGKILL them 30 s on); the ranks checkpoint and rank 0 marks the run
  interrupted; only then is the signal handed to whoever had it before (submitit requeues
  the job) -- the ranks never race the kill.  torchrun ignores SIGUSR2, so SLURM's
  `--signal`, which reaches every process of the step, does not end it mid-checkpoint;
- takes its ranks down with it: torchrun gets SIGTERM if this process dies (Linux
  PR_SET_PDEATHSIG), and holds the run dir's lock too (the lock's file descriptor is
  inherited), so the lock is free only once the ranks are gone;
- tells a rank's own error from a lost peer (runner/rank_errors.py): a rank that raised
  leaves its error, and the run ends `failed` with it, though torchrun's SIGTERM let the
  others checkpoint; ranks that died without one (killed, a host lost) leave the run
  `interrupted` over its checkpoint, and a relaunch resumes it.
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig

import rundir
from dlrm.checkpoint import PREEMPT_SIGNALS, Preempted, newest_complete
from rundir import Status
from runner import rank_errors

log = logging.getLogger("dlrm")
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # SLURM's --signal reaches every process of the job step, torchrun included, which has no
    # handler for SIGUSR2 and would die of it while its ranks checkpoint: it ignores it (kept
    # through exec); the ranks install their own handler.
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the ranks outlive a killed launcher, as torchrun's own would


def _children(pid: int) -> list[int]:
    """The processes `pid` started (torchrun's ranks), from /proc; [] where it cannot tell."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except (OSError, ValueError):
            pass
    return out


class _Forwarder:
    """While installed: a preemption signal is recorded and sent on to the ranks as SIGTERM,
    straight to them: SIGTERM to torchrun itself would have it SIGKILL the ranks 30 s later,
    whatever their checkpoint still needs (torchrun only while its ranks are not started)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.signum, self.previous = proc, None, {}

    def __enter__(self) -> "_Forwarder":
        if threading.current_thread() is threading.main_thread():
            for sig in PREEMPT_SIGNALS:
                self.previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            log.info("%s: passing %s on to the ranks as SIGTERM", self.proc.args[-1], signal.Signals(signum).name)
        self.signum = signum
        if self.proc.poll() is not None:
            return
        ranks = _children(self.proc.pid)
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        if not ranks:
            self.proc.send_signal(signal.SIGTERM)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def run_with_torchrun(cfg: DictConfig, run_dir: Path, nproc: int, lock_fd: Optional[int] = None) -> Status:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "runner.worker", str(run_dir)]
    log.info("starting %d ranks: %s", nproc, " ".join(cmd))
    rank_errors.clear(run_dir)
    proc = subprocess.Popen(cmd, pass_fds=() if lock_fd is None else (lock_fd,), preexec_fn=_die_with_parent)
    with _Forwarder(proc) as forwarder:
        returncode = proc.wait()
    status = rundir.run_status(run_dir)
    errors = rank_errors.recorded(run_dir) if returncode != 0 and forwarder.signum is None else []
    if errors:  # a rank's own error, though the others (ended by torchrun) may have checkpointed
        rank_errors.failed_summary(run_dir, cfg.get("seed"), errors)
        log.error("%s failed: %s", run_dir, errors[0].get("error"))
        return Status.FAILED
    if status is None and returncode != 0:
        checkpoint = newest_complete(run_dir / rundir.CHECKPOINT_DIR)
        if checkpoint is None:
            raise RuntimeError(f"torchrun exited with status {returncode}; see the ranks' output above")
        rank_errors.interrupted_summary(run_dir, cfg.get("seed"),
                                        f"the ranks exited with status {returncode} before the run finished",
                                        checkpoint)
        status = Status.INTERRUPTED
    if forwarder.signum is not None and status != Status.COMPLETED:
        raise Preempted(forwarder.signum, forwarder.previous.get(forwarder.signum))
    return Status(status) if status else Status.FAILED
