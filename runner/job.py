"""One job (the Hydra task): decide under the run dir's lock, then train, here or on ranks.

    lock  ->  decide: refuse a run dir of another config (touch nothing); skip a completed
              run; keep a failed/diverged one unless retry_failed=true; else train
          ->  validate, write config.yaml  ->  train in this process, or start torchrun's
              ranks (launcher.nproc_per_node > 1)  ->  summary.json, whatever happened.

Everything is read and decided while holding the lock, so two launchers never both
train one run, and a run another sweep completed a moment ago is not retrained.
Under a torchrun started by hand (or by SLURM), every rank runs this task: global rank 0
takes the lock and decides, the other ranks follow its decision.  A failing run never
stops a sweep: `launch` returns the outcome and never raises for a failed run.
"""
from __future__ import annotations

import logging
import signal
import traceback
from pathlib import Path
from typing import Any, NoReturn, Optional

from omegaconf import DictConfig, OmegaConf

import rundir
from dlrm.config import ConfigError, validate
from rundir import Status
from runner import naming
from runner.lock import RunLock, RunLocked

log = logging.getLogger("dlrm")


class RunDirConflict(ConfigError):
    """The run dir holds another config's run: refused, and that run is left untouched."""


def frozen_config(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def decide(cfg: DictConfig, run_dir: Path) -> Optional[Status]:
    """Under the lock: None to train (a fresh start, a resume or a retry), else the outcome."""
    path = run_dir / rundir.CONFIG_FILE
    if path.exists():
        diff = naming.result_relevant_diff(OmegaConf.load(path), OmegaConf.create(frozen_config(cfg)))
        if diff:
            raise RunDirConflict(
                f"run directory {run_dir} holds a run of a different config ({'; '.join(diff[:5])}). Resuming "
                f"would mix two runs: choose another directory (hydra.run.dir=... / sweep_name=...) or delete it."
            )
    status = rundir.run_status(run_dir)
    if status == Status.COMPLETED:
        log.info("%s: completed already, skipped", run_dir)
        return Status.SKIPPED
    if status in rundir.FAILED_STATUSES and not cfg.retry_failed:
        log.info("%s: %s before, skipped (retry with retry_failed=true)", run_dir, status)
        return Status(status)
    return None


def prepare(cfg: DictConfig, run_dir: Path, world_size: int) -> None:
    """Refuse a bad config before any work, then freeze it: the run dir is this run's now."""
    validate(cfg, world_size, cfg.trainer.device)
    rundir.check_writable(run_dir)
    rundir.atomic_write_text(run_dir / rundir.CONFIG_FILE, frozen_config(cfg))
    (run_dir / rundir.SUMMARY_FILE).unlink(missing_ok=True)  # retrying or resuming: a fresh one follows


def record_failure(cfg: Any, run_dir: Path, e: BaseException) -> Status:
    detail = str(e) if isinstance(e, (ConfigError, OSError)) else traceback.format_exc()
    log.error("%s failed: %s", run_dir, detail)
    try:
        rundir.atomic_write_json(run_dir / rundir.SUMMARY_FILE, {
            "rundir_version": rundir.RUNDIR_VERSION, "status": Status.FAILED, "run_name": run_dir.name,
            "seed": cfg.get("seed"), "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
    except OSError:
        pass  # the run dir itself is unwritable: the error above names it
    return Status.FAILED


def hand_on_preemption(e: Any) -> NoReturn:
    """Under submitit its own handler requeues the job; otherwise exit with the requeue code."""
    from dlrm.checkpoint import REQUEUE_EXIT_CODE

    handler = e.previous_handler
    if callable(handler) and handler is not signal.default_int_handler:
        handler(e.signum, None)
    raise SystemExit(REQUEUE_EXIT_CODE)


def _train(cfg: DictConfig, run_dir: Path, label: str, info: Any = None, lock: Optional[RunLock] = None) -> Status:
    """Train on this process's ranks (`info`), or start torchrun's (launcher.nproc_per_node > 1)."""
    from dlrm.checkpoint import Preempted

    nproc = int(cfg.launcher.nproc_per_node)
    try:
        if info is None and nproc > 1:
            from runner.ranks import run_with_torchrun

            return run_with_torchrun(cfg, run_dir, nproc, lock_fd=lock.fileno() if lock else None)
        from dlrm import distributed
        from dlrm.run import run

        return run(cfg, run_dir, info or distributed.init(cfg.trainer.device), label)
    except Preempted as e:
        hand_on_preemption(e)


def launch(cfg: DictConfig, run_dir: Path, label: str = "") -> Status:
    """Run one job; returns its outcome (never raises for a failed run)."""
    from dlrm.distributed import under_torchrun

    if under_torchrun():
        return _launch_rank(cfg, run_dir, label)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir) as lock:
            outcome = decide(cfg, run_dir)
            if outcome is not None:
                return outcome
            try:
                prepare(cfg, run_dir, int(cfg.launcher.nproc_per_node))
                return _train(cfg, run_dir, label, lock=lock)
            except Exception as e:
                return record_failure(cfg, run_dir, e)
    except RunLocked as e:
        log.error("%s", e)
        return Status.LOCKED
    except RunDirConflict as e:  # not this run's directory: write nothing into it
        log.error("%s", e)
        return Status.CONFLICT
    except OSError as e:  # the run dir cannot even be created or locked
        log.error("%s: %s", run_dir, e)
        return Status.FAILED


def _launch_rank(cfg: DictConfig, run_dir: Path, label: str) -> Status:
    """Every rank of a torchrun started by hand: global rank 0 owns the run dir and its lock."""
    from dlrm import distributed

    info = distributed.init(cfg.trainer.device)
    lock: Optional[RunLock] = None
    outcome: Optional[Status] = None
    if info.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = RunLock(run_dir).__enter__()
            outcome = decide(cfg, run_dir)
            if outcome is None:
                prepare(cfg, run_dir, info.world_size)
        except RunLocked as e:
            log.error("%s", e)
            outcome = Status.LOCKED
        except RunDirConflict as e:
            log.error("%s", e)
            outcome = Status.CONFLICT
        except Exception as e:
            outcome = record_failure(cfg, run_dir, e)
    outcome = distributed.broadcast_object(outcome, info)  # every rank follows rank 0
    try:
        if outcome is not None:
            return outcome
        try:
            return _train(cfg, run_dir, label, info=info)
        except Exception as e:
            if info.is_main:
                return record_failure(cfg, run_dir, e)
            log.error("rank %d: %s", info.rank, traceback.format_exc())
            return Status.FAILED
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
