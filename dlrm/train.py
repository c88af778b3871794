"""`python -m dlrm.train` -- the Hydra app: one run, or with -m / sweep=NAME a sweep.

The task function owns the run directory's life cycle:
  skip (completed; or failed/diverged unless retry_failed=true)  ->  validate the config
  ->  freeze config.yaml (refusing a run dir that holds a different config)  ->  train here,
  or under torchrun on N ranks  ->  summary.json, always, whatever happened.
A failing run never stops a sweep: it is recorded and the next job runs; the sweep
report (sweeps/report.py) prints every run's status and sets the exit code.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dlrm import rundir
from dlrm.config import ConfigError, validate
from dlrm.runlock import RunLock, RunLocked
from sweeps import naming

log = logging.getLogger("dlrm")
naming.register_resolvers()
# TorchRec 1.8 / torch 2.13 deprecation chatter that says nothing about this run.
for _category in (FutureWarning, DeprecationWarning):
    warnings.filterwarnings("ignore", category=_category)
warnings.filterwarnings("ignore", message=".*an autograd kernel was not registered.*")
warnings.filterwarnings("ignore", message=".*is_fx_tracing.*")


class RunDirConflict(ConfigError):
    """The run dir holds another config's run: refused, and that run is left untouched."""


def _frozen_config(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(cfg, resolve=True)


def freeze_config(cfg: DictConfig, run_dir: Path) -> None:
    """Write config.yaml once; a run dir that holds a different config is refused, not mixed."""
    path = run_dir / rundir.CONFIG_FILE
    text = _frozen_config(cfg)
    if path.exists():
        existing = OmegaConf.create(path.read_text())
        diff = naming.result_relevant_diff(existing, OmegaConf.create(text))
        if diff:
            raise RunDirConflict(
                f"run directory {run_dir} holds a run of a different config ({'; '.join(diff[:5])}). Resuming "
                f"would mix two runs: choose another directory (hydra.run.dir=... / sweep_name=...) or delete it."
            )
    rundir.atomic_write_text(path, text)


def _finish(run_dir: Path, summary: dict) -> None:
    rundir.atomic_write_json(run_dir / rundir.SUMMARY_FILE, summary)


def run_in_process(cfg: DictConfig, run_dir: Path, progress_label: str = "", freeze: bool = True) -> str:
    """Train this run on this process's ranks (1, or torchrun's N) and write its summary.

    `freeze=False` for ranks started by `run_with_torchrun`: the Hydra job wrote
    config.yaml once and the ranks only read it.
    """
    from dlrm import distributed  # torch and torchrec load here, once there is work to do
    from dlrm.checkpoint import Preempted, remove_checkpoints
    from dlrm.loop import Diverged, train

    t0 = time.perf_counter()
    validate(cfg, distributed.world_size_hint(), cfg.trainer.device)
    info = distributed.init(cfg.trainer.device)
    if info.is_main:
        rundir.check_writable(run_dir)
        if freeze:
            freeze_config(cfg, run_dir)
        rundir.atomic_write_json(run_dir / rundir.ENV_FILE, rundir.environment(str(info.device), info.world_size))
    base = {"run_name": run_dir.name, "seed": int(cfg.seed), "world_size": info.world_size}
    try:
        summary = train(cfg, run_dir, info, progress_label)
        summary["status"] = rundir.STATUS_COMPLETED
    except Diverged as e:
        summary = {**base, "status": rundir.STATUS_DIVERGED, "error": str(e), "diverged_step": e.step,
                   "diverged_samples_seen": e.samples_seen}
    except Preempted as e:
        if info.is_main:
            _finish(run_dir, {**base, "status": rundir.STATUS_INTERRUPTED, "error": str(e)})
        _hand_on_preemption(e)  # exits: requeued by submitit, or with REQUEUE_EXIT_CODE
    summary["wall_seconds"] = time.perf_counter() - t0
    if info.is_main:
        _finish(run_dir, summary)
        if summary["status"] == rundir.STATUS_COMPLETED:
            remove_checkpoints(run_dir)
    return summary["status"]


def _hand_on_preemption(e: Any) -> NoReturn:
    """Under submitit its own handler requeues the job; otherwise exit with the requeue code."""
    import signal as _signal

    from dlrm.checkpoint import REQUEUE_EXIT_CODE

    handler = e.previous_handler
    if callable(handler) and handler not in (_signal.default_int_handler,):
        handler(e.signum, None)
    raise SystemExit(REQUEUE_EXIT_CODE)


def run_with_torchrun(cfg: DictConfig, run_dir: Path, nproc: int) -> str:
    """Freeze the config once, start N ranks that read it, and wait for them."""
    import subprocess

    validate(cfg, nproc, cfg.trainer.device)
    rundir.check_writable(run_dir)
    freeze_config(cfg, run_dir)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "dlrm.worker", str(run_dir)]
    log.info("starting %d ranks: %s", nproc, " ".join(cmd))
    proc = subprocess.run(cmd)
    status = rundir.run_status(run_dir)
    if proc.returncode != 0 and status is None:
        raise RuntimeError(f"torchrun exited with status {proc.returncode}; see the ranks' output above")
    return status or rundir.STATUS_FAILED


def launch(cfg: DictConfig, run_dir: Path, progress_label: str = "") -> str:
    """Run one job (the Hydra task): never raises for a failed run, returns its status."""
    status = rundir.run_status(run_dir)
    if status == rundir.STATUS_COMPLETED:
        log.info("%s: completed already, skipped", run_dir)
        return "skipped"
    if status in (rundir.STATUS_FAILED, rundir.STATUS_DIVERGED) and not cfg.retry_failed:
        log.info("%s: %s before, skipped (retry with retry_failed=true)", run_dir, status)
        return status
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(run_dir):
            if status is not None:  # retrying, or resuming an interrupted run: a fresh summary follows
                (run_dir / rundir.SUMMARY_FILE).unlink(missing_ok=True)
            nproc = int(cfg.launcher.nproc_per_node)
            from dlrm.distributed import under_torchrun

            if nproc > 1 and not under_torchrun():
                return run_with_torchrun(cfg, run_dir, nproc)
            return run_in_process(cfg, run_dir, progress_label)
    except RunLocked as e:
        log.error("%s", e)
        return "locked"
    except RunDirConflict as e:  # not this run's directory: write nothing into it
        log.error("%s", e)
        return "conflict"
    except Exception as e:
        detail = str(e) if isinstance(e, (ConfigError, OSError)) else traceback.format_exc()
        log.error("%s failed: %s", run_dir, detail)
        try:
            rundir.atomic_write_json(run_dir / rundir.SUMMARY_FILE, {
                "status": rundir.STATUS_FAILED, "run_name": run_dir.name, "seed": cfg.get("seed"),
                "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
        except OSError:
            pass  # the run dir itself is unwritable: the error above names it
        return rundir.STATUS_FAILED


@hydra.main(config_path="../configs", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    label = run_dir.name
    total = os.environ.get("DLRM_SWEEP_TOTAL")
    if total and hc.mode.name == "MULTIRUN":
        label = f"[{hc.job.num + 1}/{total}] {run_dir.name}"
        log.info("run %s", label)
    status = launch(cfg, run_dir, label)
    from sweeps.report import record_status

    record_status(run_dir, status)
    return status


def cli() -> None:
    main()
    from sweeps.report import exit_code

    sys.exit(exit_code())


if __name__ == "__main__":
    cli()
