"""Checkpoints and preemption: a killed run resumes where its last complete checkpoint was.

Layout: `checkpoint/latest/` holds one complete checkpoint -- the model and optimizer
state through `torch.distributed.checkpoint` (sharded tables and the fused optimizer's
per-row state included; every rank writes its own shards), `state.json` (samples seen,
step, time) and a COMPLETE marker written last.  A save goes to `checkpoint/tmp-<step>/`;
then the switch renames `latest` to `old-<step>` and `tmp-<step>` to `latest`, and removes
`old-<step>`.  A kill at any moment leaves at least one complete checkpoint, and restore
takes the newest complete one wherever the switch stopped (`latest`, a finished `tmp-*`,
or `old-*`), so no work is lost and a half-written one is never read.  The data stream
needs no saved state: sample i is a pure function of (seed, i), so resuming at
`samples_seen` regenerates exactly the batches that follow.

Preemption: SIGTERM (what SLURM and torchrun send) and SIGUSR2 (submitit's signal) set a
flag; the loop checkpoints at the next step boundary, marks the run `interrupted`, and the
launcher exits with REQUEUE_EXIT_CODE -- or, under submitit, hands the signal on to
submitit's own handler, which resubmits the job.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.api import CheckpointException
from torchrec.optim.keyed import KeyedOptimizerWrapper

import rundir
from dlrm.config import TrainerConfig
from dlrm.distributed import DistInfo, broadcast_object

log = logging.getLogger("dlrm")

REQUEUE_EXIT_CODE = 143  # 128 + SIGTERM: what a SLURM --requeue job conventionally exits with
PREEMPT_SIGNALS = (signal.SIGTERM, signal.SIGUSR2)
_COMPLETE = "COMPLETE"
_STATE = "state.json"
_LATEST = "latest"


class CorruptCheckpoint(RuntimeError):
    pass


class UntrustedCheckpoint(RuntimeError):
    """Restoring unpickles the checkpoint's metadata (inside torch.distributed.checkpoint):
    a checkpoint someone else could have written runs their code here.  Refused."""


# Write bits that let another user change a file's bytes in place.
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def _distrust(p: Path, uid: int, in_checkpoint: bool) -> Optional[str]:
    st = p.lstat()
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if st.st_uid != uid:
        return f"it belongs to uid {st.st_uid}, not to you (uid {uid})"
    if stat.S_ISREG(st.st_mode) and st.st_mode & _OTHERS_WRITE:
        return "others may write it (mode g+w or o+w)"
    if in_checkpoint and st.st_mode & stat.S_IWOTH:
        return "anyone may write it (mode o+w)"
    return None


def check_trusted(path: Path, run_dir: Optional[Path] = None) -> None:
    """Refuse a checkpoint that this user does not own or that others may write, before
    anything reads or moves it: the run dir and its `checkpoint/` directory (owned by you,
    no symlinks: a directory of yours holds only entries you made or that show another
    owner), the checkpoint directory and everything in it (owned by you, no symlinks, no
    file writable by group or others: its bytes are unpickled)."""
    uid = os.getuid()
    chain = [] if run_dir is None else [Path(run_dir), path.parent]
    for p, inside in [*((c, False) for c in chain), (path, True), *((q, True) for q in sorted(path.rglob("*")))]:
        why = _distrust(p, uid, inside)
        if why:
            raise UntrustedCheckpoint(
                f"checkpoint {path} is not restored: {p} cannot be trusted ({why}). Restoring unpickles "
                f"its metadata, which would run code of whoever wrote it. If you trust it, make it yours "
                f"(chown -R $USER {p}; chmod -R go-w {path}); otherwise delete it to restart the run: rm -r {path}")


def seal(path: Path) -> None:
    """Our own checkpoint's files writable by us alone (a umask of 002 would leave them g+w,
    which check_trusted refuses)."""
    for p in path.rglob("*"):
        st = p.lstat()
        if stat.S_ISREG(st.st_mode) and st.st_mode & _OTHERS_WRITE:
            os.chmod(p, st.st_mode & ~_OTHERS_WRITE)


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (disk full, a network filesystem error).  DCP
    raises CheckpointException, a BaseException that would escape every `except
    Exception` up to Hydra's job runner and stop the sweep; this is an ordinary error:
    the run ends failed with the cause, and the sweep goes on."""


class Preempted(Exception):
    """Raised in the loop after the preemption checkpoint is written."""

    def __init__(self, signum: int, previous_handler: Any):
        super().__init__(f"preempted by {signal.Signals(signum).name}: checkpoint written, run marked interrupted")
        self.signum, self.previous_handler = signum, previous_handler


def _progress_of(path: Path) -> Optional[dict]:
    """state.json of a complete checkpoint directory, or None."""
    try:
        if (path / _COMPLETE).exists():
            return json.loads((path / _STATE).read_text())
    except (OSError, json.JSONDecodeError):
        pass
    return None


def newest_complete(root: Path) -> Optional[Path]:
    """The complete checkpoint with the most samples seen, wherever a switch stopped."""
    found = [(p, _progress_of(p)) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    found = [(p, s) for p, s in found if s is not None]
    if not found:
        return None
    return max(found, key=lambda ps: (int(ps[1].get("samples_seen", -1)), ps[0].name == _LATEST))[0]


@contextmanager
def preemption_held() -> Iterator[None]:
    """A preemption signal that arrives inside is acted on only at the end, so that what is
    written inside (a rank's last summary) is whole first.  torchrun SIGTERMs the survivors
    the moment one rank dies, and their default action would end rank 0 half-way through
    recording that loss.  Inside, a Checkpointer takes the signals over as usual and hands
    them back here; at the end a held signal goes to whoever had it before, or, where that
    was the default action, ends the process with 128 + the signal, as the signal would."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: held.append(signum)) for sig in PREEMPT_SIGNALS}
    propagating = True
    try:
        yield
        propagating = False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held):
            handler = previous.get(signum)
            if callable(handler):
                handler(signum, None)
            elif handler != signal.SIG_IGN and not propagating:
                raise SystemExit(128 + signum)


class Checkpointer:
    def __init__(self, run_dir: Path, info: DistInfo, trainer_cfg: TrainerConfig):
        self.root = Path(run_dir) / rundir.CHECKPOINT_DIR
        self.run_dir = Path(run_dir)
        self.info = info
        self.every_samples: Optional[int] = trainer_cfg.checkpoint_every_samples
        minutes = trainer_cfg.checkpoint_every_minutes
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
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in PREEMPT_SIGNALS:
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signum

    def preempt_requested(self) -> bool:
        return self._signal is not None

    def raise_preempted(self) -> None:
        signum = self._signal or signal.SIGTERM
        raise Preempted(signum, self._previous.get(signum))

    def close(self) -> None:
        """Hand the preemption signals back to whoever had them (idempotent)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    # ---------------------------------------------------------------- save
    def due_by_samples(self, samples_seen: int) -> bool:
        """Due by the sample interval alone: the same answer on every rank."""
        return bool(self.every_samples) and samples_seen - self._last_save_samples >= self.every_samples

    def due(self, samples_seen: int) -> bool:
        """This rank's view: an interval has passed (the loop makes the ranks agree)."""
        if self.every_samples and samples_seen - self._last_save_samples >= self.every_samples:
            return True
        return self.every_seconds is not None and time.monotonic() - self._last_save_time >= self.every_seconds

    @staticmethod
    def _state(model, optimizer) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    def save(self, model, optimizer, progress: dict) -> None:
        t0 = time.perf_counter()
        tmp = self.root / f"tmp-{progress['step']}"
        if self.info.is_main:
            self.root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
        self._barrier()
        try:
            dcp.save(self._state(model, optimizer), checkpoint_id=str(tmp))
        except CheckpointException as e:
            causes = "; ".join(f"rank {r}: {type(f[0]).__name__}: {f[0]}" if isinstance(f, tuple) else f"rank {r}: {f}"
                               for r, f in e.failures.items())
            raise CheckpointWriteError(f"writing checkpoint {tmp} failed ({causes or e.args[0]})") from e
        if self.info.is_main:
            rundir.atomic_write_json(tmp / _STATE, {**progress})
            seal(tmp)  # every rank's shards are written: dcp.save returns after the last
            rundir.atomic_write_text(tmp / _COMPLETE, "ok\n")
            seal(tmp)
            self._switch_to(tmp, progress["step"])
            for stale in self.root.iterdir():  # earlier attempts, never complete or superseded now
                if stale.name != _LATEST:
                    shutil.rmtree(stale, ignore_errors=True)
        self._barrier()
        self._last_save_time = time.monotonic()
        self._last_save_samples = progress["samples_seen"]
        self.seconds_spent += time.perf_counter() - t0
        self.saves += 1

    def _switch_to(self, complete: Path, step: int) -> None:
        """Make `complete` the `latest` checkpoint: two renames, each leaving a complete one."""
        latest = self.root / _LATEST
        if complete == latest:
            return
        if latest.exists():
            latest.rename(self.root / f"old-{step}")
        complete.rename(latest)

    def _barrier(self) -> None:
        if self.info.world_size > 1:
            dist.barrier()

    # ------------------------------------------------------------- restore
    def restore(self, model, optimizer) -> dict:
        """Load the newest complete checkpoint into model and optimizer; {} when there is none."""
        found = None
        if self.info.is_main:  # rank 0 finds it and puts it in place; every rank then reads it
            found = newest_complete(self.root)
            if found is not None:
                check_trusted(found, self.run_dir)  # before a switch moves it
            if found is not None and found.name != _LATEST:
                log.info("checkpoint %s is the newest complete one (a switch was cut short): using it", found)
                self._switch_to(found, int(_progress_of(found)["step"]))
        if not broadcast_object(found is not None, self.info):
            return {}
        latest = self.root / _LATEST
        check_trusted(latest, self.run_dir)
        try:
            progress = json.loads((latest / _STATE).read_text())
            for _, opt in optimizer.optimizers:  # lazy optimizer state (Adam's) must exist to be loaded into
                if isinstance(opt, KeyedOptimizerWrapper):
                    opt.init_state()
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


def remove_checkpoints(run_dir: Path) -> None:
    """After summary.json says completed: the checkpoint is no longer needed (run dirs stay
    small).  Removed only then, so a kill at any earlier moment still finds it."""
    shutil.rmtree(Path(run_dir) / rundir.CHECKPOINT_DIR, ignore_errors=True)
