"""Checkpoints and preemption: a killed run resumes where its last complete checkpoint was.

Layout: `checkpoint/latest/` holds one complete checkpoint -- the model and optimizer
state through `torch.distributed.checkpoint` (sharded tables and the fused optimizer's
per-row state included; every rank writes its own shards) and `state.json` (samples
seen, step, time).  A checkpoint is written into `checkpoint/tmp-<n>/` and only renamed
to `latest` after every rank finished and the COMPLETE marker is in place, so a kill
mid-write leaves at most a `tmp-*` directory, which is never read and is deleted on the
next save.  The data stream needs no saved state: sample i is a pure function of
(seed, i), so resuming at `samples_seen` regenerates exactly the batches that follow.

Preemption: SIGTERM (what SLURM sends) and SIGUSR2 (submitit's signal) set a flag; the
loop checkpoints at the next step boundary, marks the run `interrupted`, and exits with
REQUEUE_EXIT_CODE -- or, under submitit, hands the signal on to submitit's own handler,
which resubmits the job; the resubmitted job resumes from the checkpoint.
"""
from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException

from dlrm import rundir
from dlrm.distributed import DistInfo

log = logging.getLogger("dlrm")

REQUEUE_EXIT_CODE = 143  # 128 + SIGTERM: what a SLURM --requeue job conventionally exits with
_COMPLETE = "COMPLETE"
_STATE = "state.json"
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)


class CorruptCheckpoint(RuntimeError):
    pass


class Preempted(Exception):
    """Raised in the loop after the preemption checkpoint is written."""

    def __init__(self, signum: int, previous_handler: Any):
        super().__init__(f"preempted by {signal.Signals(signum).name}: checkpoint written, run marked interrupted")
        self.signum, self.previous_handler = signum, previous_handler


class Checkpointer:
    def __init__(self, run_dir: Path, info: DistInfo, trainer_cfg: Any):
        self.root = Path(run_dir) / rundir.CHECKPOINT_DIR
        self.info = info
        self.every_samples: Optional[int] = trainer_cfg.get("checkpoint_every_samples")
        minutes = trainer_cfg.get("checkpoint_every_minutes")
        self.every_seconds: Optional[float] = None if minutes is None else float(minutes) * 60.0
        self._last_save_time = time.monotonic()
        self._last_save_samples = 0
        self._signal: Optional[int] = None
        self._previous: dict[int, Any] = {}
        self.seconds_spent = 0.0
        self.saves = 0
        self._install_handlers()

    # -------------------------------------------------------------- signals
    def _install_handlers(self) -> None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in PREEMPT_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    # ---------------------------------------------------------------- save
    def _state(self, model, optimizer) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    def maybe_save(self, model, optimizer, progress: dict) -> None:
        """Save when an interval has passed or a preemption signal arrived (then raise Preempted)."""
        preempt = self._preempt_requested()
        due = preempt
        if self.every_samples and progress["samples_seen"] - self._last_save_samples >= self.every_samples:
            due = True
        if self.every_seconds is not None and time.monotonic() - self._last_save_time >= self.every_seconds:
            due = True
        if self.info.world_size > 1:  # every rank must agree: saving is collective
            flag = torch.tensor([int(due), int(preempt)])
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            due, preempt = bool(flag[0]), bool(flag[1])
        if not due:
            return
        self.save(model, optimizer, progress)
        if preempt:
            signum = self._signal or signal.SIGTERM
            raise Preempted(signum, self._previous.get(signum))

    def _preempt_requested(self) -> bool:
        return self._signal is not None

    def save(self, model, optimizer, progress: dict) -> None:
        t0 = time.perf_counter()
        tmp = self.root / f"tmp-{progress['step']}"
        if self.info.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            for stale in self.root.glob("tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
        self._barrier()
        dcp.save(self._state(model, optimizer), checkpoint_id=str(tmp))
        if self.info.is_main:
            rundir.atomic_write_json(tmp / _STATE, {**progress})
            (tmp / _COMPLETE).write_text("ok\n")
            latest = self.root / "latest"
            old = self.root / f"old-{progress['step']}"
            if latest.exists():
                latest.rename(old)
            tmp.rename(latest)  # the switch: one rename
            shutil.rmtree(old, ignore_errors=True)
        self._barrier()
        self._last_save_time = time.monotonic()
        self._last_save_samples = progress["samples_seen"]
        self.seconds_spent += time.perf_counter() - t0
        self.saves += 1

    def _barrier(self) -> None:
        if self.info.world_size > 1:
            dist.barrier()

    # ------------------------------------------------------------- restore
    def restore(self, model, optimizer) -> dict:
        """Load the last complete checkpoint into model and optimizer; {} when there is none."""
        latest = self.root / "latest"
        if not (latest / _COMPLETE).exists():
            return {}
        try:
            progress = json.loads((latest / _STATE).read_text())
            state = self._state(model, optimizer)
            dcp.load(state, checkpoint_id=str(latest))
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        except (Exception, CheckpointException) as e:  # DCP's exception is a BaseException
            raise CorruptCheckpoint(
                f"checkpoint {latest} is unreadable ({type(e).__name__}: {e}). Delete it to restart the run "
                f"from scratch: rm -r {latest}"
            ) from e
        self._last_save_samples = int(progress["samples_seen"])
        log.info("resumed from %s at %d samples (step %d)", latest, progress["samples_seen"], progress["step"])
        return progress

    def close(self) -> None:
        """Hand the preemption signals back to whoever had them (idempotent)."""
        self._restore_handlers()




def remove_checkpoints(run_dir: Path) -> None:
    """After summary.json says completed: the checkpoint is no longer needed (run dirs stay
    small).  Removed only then, so a kill at any earlier moment still finds it."""
    shutil.rmtree(Path(run_dir) / rundir.CHECKPOINT_DIR, ignore_errors=True)
