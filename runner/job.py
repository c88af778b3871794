"""One job (the Hydra task): decide under the run dir's lock, then train, here or on ranks.

    lock  ->  validate (and read the data's identity): an invalid config writes nothing into a
              run dir that holds a run; its failure is recorded only in a dir that holds none
          ->  decide: refuse a run dir of another config or other data (touch nothing); skip a
              completed run; keep a failed/diverged one unless retry_failed=true; else train
          ->  take the run dir: Hydra's log and record, config.yaml, data.json
          ->  train in this process, or start torchrun's ranks (launcher.nproc_per_node > 1)
          ->  summary.json, whatever happened.

Everything is read and decided while holding the lock, so two launchers never both
train one run, and a run another sweep completed a moment ago is not retrained.
Under a torchrun started by hand (or by SLURM), every rank runs this task: global rank 0
takes the lock and decides, the other ranks follow its decision.  A failing run never
stops a sweep: `launch` returns the outcome and never raises for a failed run, whatever
the error.
"""
from __future__ import annotations

import json
import logging
import signal
import traceback
from pathlib import Path
from typing import Any, NoReturn, Optional

from omegaconf import DictConfig, OmegaConf

import rundir
from dlrm.config import ConfigError
from dlrm.validate import validate
from rundir import Status
from runner import hydra_output, naming, rank_errors
from runner.compose import typed
from runner.lock import RunLock, RunLocked

log = logging.getLogger("dlrm")


class RunDirConflict(ConfigError):
    """The run dir holds another config's run: refused, and that run is left untouched."""


def frozen_config(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def data_id_of(cfg: DictConfig) -> str:
    """The identity of the data this config trains on (the source's `data_id`): a hash of the
    planted world's spec, or of the preprocessed Criteo metadata found at data.path."""
    from dlrm.data import make_source

    lib = typed(cfg)
    return make_source(lib.data, lib.seed).data_id


def _recorded(run_dir: Path, name: str, load: Any) -> Any:
    """A run-dir file read by `load`, or None when absent; unreadable is a conflict: whose
    run the directory holds can no longer be told."""
    path = run_dir / name
    if not path.exists():
        return None
    try:
        return load(path)
    except Exception as e:
        raise RunDirConflict(
            f"run directory {run_dir} has an unreadable {name} ({type(e).__name__}: {str(e).splitlines()[0][:200]}): "
            f"whose run it holds cannot be told. Restore the file, or delete the directory to start over.") from None


def _recorded_data_id(run_dir: Path) -> Optional[str]:
    """The data the run dir's run trained on: data.json, else (a run written before it) its summary."""
    data = _recorded(run_dir, rundir.DATA_FILE, lambda p: json.loads(p.read_text()))
    if isinstance(data, dict) and data.get("data_id"):
        return str(data["data_id"])
    summary = rundir.read_summary(run_dir) or {}
    return summary.get("data_id")


def decide(cfg: DictConfig, run_dir: Path, data_id: Optional[str] = None) -> Optional[Status]:
    """Under the lock: None to train (a fresh start, a resume or a retry), else the outcome.
    `data_id`: this config's (data_id_of), when the caller has it already."""
    old = _recorded(run_dir, rundir.CONFIG_FILE, OmegaConf.load)  # old group names: naming.GROUPS_RENAMED
    if old is not None:
        diff = naming.result_relevant_diff(old, OmegaConf.create(frozen_config(cfg)))
        if diff:
            raise RunDirConflict(
                f"run directory {run_dir} holds a run of a different config ({'; '.join(diff[:5])}). Resuming "
                f"would mix two runs: choose another directory (hydra.run.dir=... / sweep_name=...) or delete it."
            )
    recorded = _recorded_data_id(run_dir)
    current = data_id if data_id is not None else (data_id_of(cfg) if recorded is not None else None)
    if recorded is not None and recorded != current:
        where = f" (data.path={cfg.data.path})" if cfg.data.get("path") else ""
        raise RunDirConflict(
            f"run directory {run_dir} holds a run on data {recorded}, but this config's data is {current}{where}. "
            f"Resuming or skipping it would mix two data sets: point data.path at the data it trained on, or "
            f"choose another directory (hydra.run.dir=... / sweep_name=...).")
    status = rundir.run_status(run_dir)
    if status == Status.COMPLETED:
        log.info("%s: completed already, skipped", run_dir)
        return Status.SKIPPED
    if status in rundir.FAILED_STATUSES and not cfg.retry_failed:
        return _kept_failed(run_dir, status)
    return None


def _kept_failed(run_dir: Path, status: str) -> Status:
    log.info("%s: %s before, skipped (retry with retry_failed=true)", run_dir, status)
    return Status(status)


def prepare(cfg: DictConfig, run_dir: Path, world_size: int, data_id: Optional[str] = None) -> None:
    """Refuse a bad config before any work, then freeze it: the run dir is this run's now."""
    validate(typed(cfg), world_size, cfg.trainer.device)
    rundir.check_writable(run_dir)
    rundir.atomic_write_text(run_dir / rundir.CONFIG_FILE, frozen_config(cfg))
    rundir.atomic_write_json(run_dir / rundir.DATA_FILE,
                             {"data": cfg.data.name, "data_id": data_id if data_id is not None else data_id_of(cfg)})
    (run_dir / rundir.SUMMARY_FILE).unlink(missing_ok=True)  # retrying or resuming: a fresh one follows


def claim(cfg: DictConfig, run_dir: Path, world_size: int) -> Optional[Status]:
    """Under the lock, before any work: validate, decide, then take the run dir (Hydra's log
    and record, the frozen config).  None: this job trains it; else the job's outcome."""
    try:
        validate(typed(cfg), world_size, cfg.trainer.device)
        data_id = data_id_of(cfg)  # Criteo's path is checked here: its files are opened
    except (ValueError, OSError) as e:
        return refuse(cfg, run_dir, e)
    outcome = decide(cfg, run_dir, data_id)
    if outcome is None:
        take(cfg, run_dir)
        try:
            prepare(cfg, run_dir, world_size, data_id)
        except (ValueError, OSError) as e:  # an unwritable run dir: named in its failure
            return record_failure(cfg, run_dir, e)
    return outcome


def take(cfg: DictConfig, run_dir: Path) -> None:
    """The run dir is this job's: its held log goes there, and Hydra's record of the job."""
    hydra_output.keep_log()
    hydra_output.save_hydra_record(cfg, run_dir)


def refuse(cfg: DictConfig, run_dir: Path, e: BaseException) -> Status:
    """An invalid config, before any work.  A run dir that holds a run (its config.yaml) is
    left as it was -- a bad relaunch value must not end a resumable or completed run; a failed
    refusal is kept unless retry_failed=true; else the refusal is the run's record."""
    if (run_dir / rundir.CONFIG_FILE).exists():
        log.error("%s: refused, and the run there is left as it was: %s", run_dir, e)
        return Status.REFUSED
    status = rundir.run_status(run_dir)
    if status in rundir.FAILED_STATUSES and not cfg.retry_failed:
        return _kept_failed(run_dir, status)
    take(cfg, run_dir)
    return record_failure(cfg, run_dir, e)


def record_failure(cfg: Any, run_dir: Path, e: BaseException) -> Status:
    detail = str(e) if isinstance(e, (ConfigError, OSError)) else traceback.format_exc()
    log.error("%s failed: %s", run_dir, detail)
    try:
        rundir.write_summary(run_dir, Status.FAILED, cfg.get("seed"), error=f"{type(e).__name__}: {e}",
                             traceback=traceback.format_exc())
    except OSError:
        pass  # the run dir itself is unwritable: the error above names it
    return Status.FAILED


def _rank0_failure(cfg: Any, run_dir: Path, e: BaseException) -> Status:
    """Global rank 0's exception under a torchrun started by hand: another rank's own error
    fails the run with that error; a lost peer leaves it resumable over its checkpoint; else
    rank 0's own error fails it."""
    from dlrm.checkpoint import newest_complete

    errors = rank_errors.recorded(run_dir)
    if errors:
        log.error("%s failed: %s", run_dir, errors[0].get("error"))
        rank_errors.failed_summary(run_dir, cfg.get("seed"), errors)
        return Status.FAILED
    checkpoint = newest_complete(run_dir / rundir.CHECKPOINT_DIR) if rank_errors.peer_lost(e) else None
    if checkpoint is None:
        return record_failure(cfg, run_dir, e)
    why = f"a peer rank was lost ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
    log.error("%s interrupted: %s", run_dir, why)
    rank_errors.interrupted_summary(run_dir, cfg.get("seed"), why, checkpoint)
    return Status.INTERRUPTED


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

        ranks = info or distributed.init(cfg.trainer.device, cfg.trainer.collective_timeout_s)
        return run(typed(cfg), run_dir, ranks, label)  # the library takes the typed config
    except Preempted as e:
        # Under a torchrun started by hand, torchrun's SIGTERM after another rank's own error
        # reads as a preemption here: that error, not the signal, is how the run ended.
        errors = rank_errors.recorded(run_dir) if info is not None and info.is_main else []
        if errors:
            log.error("%s failed: %s", run_dir, errors[0].get("error"))
            rank_errors.failed_summary(run_dir, cfg.get("seed"), errors)
            return Status.FAILED
        hand_on_preemption(e)


def launch(cfg: DictConfig, run_dir: Path, label: str = "") -> Status:
    """Run one job; returns its outcome (never raises for a failed run)."""
    from dlrm.distributed import under_torchrun

    if under_torchrun():
        return _launch_rank(cfg, run_dir, label)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir) as lock:
            outcome = claim(cfg, run_dir, int(cfg.launcher.nproc_per_node))
            if outcome is not None:
                return outcome
            try:
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
    except Exception:  # any other error is this job's outcome; the sweep goes on to its next job
        log.error("%s: %s", run_dir, traceback.format_exc())
        return Status.FAILED


def _launch_rank(cfg: DictConfig, run_dir: Path, label: str) -> Status:
    """Every rank of a torchrun started by hand: global rank 0 owns the run dir and its lock."""
    from dlrm import distributed
    from dlrm.checkpoint import preemption_held

    info = distributed.init(cfg.trainer.device, cfg.trainer.collective_timeout_s)
    lock: Optional[RunLock] = None
    outcome: Optional[Status] = None
    if info.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            lock = RunLock(run_dir).__enter__()
            outcome = claim(cfg, run_dir, info.world_size)
            if outcome is None:
                rank_errors.clear(run_dir)  # an earlier attempt's errors are not this one's
        except RunLocked as e:
            log.error("%s", e)
            outcome = Status.LOCKED
        except RunDirConflict as e:
            log.error("%s", e)
            outcome = Status.CONFLICT
        except Exception as e:
            outcome = record_failure(cfg, run_dir, e)
    outcome = distributed.broadcast_object(outcome, info)  # every rank follows rank 0
    if outcome is None and not info.is_main:
        hydra_output.keep_log()  # rank 0 took the run dir: this rank's log goes there too
    peers_alive = False
    try:
        if outcome is not None:
            peers_alive = True
            return outcome
        # torchrun SIGTERMs the survivors as soon as a rank dies: held, so that the status
        # this rank records (rank 0's `interrupted` over a lost peer) is written whole first.
        with preemption_held():
            try:
                outcome = _train(cfg, run_dir, label, info=info)
                peers_alive = True
                return outcome
            except Exception as e:
                if info.is_main:
                    return _rank0_failure(cfg, run_dir, e)
                rank_errors.record(run_dir, info.rank, e)  # for rank 0: a lost peer leaves none
                log.error("rank %d: %s", info.rank, traceback.format_exc())
                return Status.FAILED
    finally:
        if lock is not None:
            lock.__exit__(None, None, None)
        distributed.shutdown(info, peers_alive)
