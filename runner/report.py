"""The sweep's progress and its closing table, as a Hydra callback.

on_multirun_start expands the sweep exactly as Hydra's basic sweeper will, and writes the
plan (`.sweep.json`: every run dir in launch order) into the sweep root, where each job
-- in this process, under submitit or on a cluster node -- finds its `[k/total]`.
on_job_end records each job's outcome (the task's return value); on_multirun_end waits for
the runs another launcher is training, reads every planned run's summary.json, prints one
row per run, and the outcomes decide the exit code: non-zero if any run of this sweep
failed, diverged, did not finish or was refused.
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

import rundir
from rundir import Status
from runner.runs_root import RunsRootRefused

log = logging.getLogger("dlrm.sweep")
SWEEP_PLAN_FILE = ".sweep.json"  # in the sweep root: {"runs": [run dir names, in launch order]}


class Outcomes:
    """Each job's outcome in this process, by run dir: what `python -m dlrm.train` exits with."""

    def __init__(self) -> None:
        self.by_run: dict[str, Optional[str]] = {}

    def record(self, run_dir: Path | str, status: Optional[str]) -> None:
        self.by_run[os.path.abspath(run_dir)] = None if status is None else str(status)

    def get(self, run_dir: Path | str) -> Optional[str]:
        return self.by_run.get(os.path.abspath(run_dir))

    def exit_code(self) -> int:
        not_done = {str(s) for s in rundir.NOT_DONE_STATUSES}
        return 1 if any(s is None or s in not_done for s in self.by_run.values()) else 0


OUTCOMES = Outcomes()


def record_outcome(job_return: Any) -> None:
    """A job's outcome from its JobReturn.  on_job_end calls this where the job ran; the
    sweeper calls it again in the launching process, because a parallel launcher (joblib)
    runs on_job_end in its worker processes, whose OUTCOMES this process never sees."""
    run_dir = job_return.hydra_cfg.hydra.runtime.output_dir
    status = job_return.return_value if job_return.status.name == "COMPLETED" else Status.FAILED
    OUTCOMES.record(run_dir, status)


def expected_run_dirs(config: DictConfig) -> list[Path]:
    """Every run dir of the sweep, in launch order, by expanding it as the basic sweeper does."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from runner.grids import expand
    from runner.naming import run_name

    parser = OverridesParser.create()
    sweeper = config.hydra.sweeper
    grids = [dict(g) for g in sweeper.get("grids") or []]
    jobs = expand(dict(sweeper.get("params") or {}), grids, list(config.hydra.overrides.task))
    od = config.hydra.job.config.override_dirname
    root = Path(config.hydra.sweep.dir)
    dirs = []
    for job in jobs:
        overrides = parser.parse_overrides(list(job))
        dirname = get_overrides_dirname(overrides, list(od.exclude_keys), od.item_sep, od.kv_sep)
        dirs.append(root / run_name(dirname))
    return dirs


def progress_label(run_dir: Path) -> str:
    """`[k/total] name` when the run is part of a planned sweep, else its name."""
    try:
        runs = json.loads((run_dir.parent / SWEEP_PLAN_FILE).read_text())["runs"]
        return f"[{runs.index(run_dir.name) + 1}/{len(runs)}] {run_dir.name}"
    except (OSError, ValueError, KeyError, TypeError):
        return run_dir.name


def _row(run_dir: Path, outcome: Optional[str] = None) -> dict:
    """The run's summary; a job refused here (conflict, refused) shows that, not the summary
    of the other run the directory holds."""
    if outcome in (Status.CONFLICT, Status.REFUSED):
        return {"run": run_dir.name, "status": outcome}
    return {"run": run_dir.name, **(rundir.read_summary(run_dir) or {"status": None})}


def await_final_state(run_dir: Path, poll_seconds: float = 2.0) -> None:
    """Block while another process trains the run (holds its lock): what that process leaves
    is the run's final state, which the closing table reports."""
    from runner.lock import RunLock, RunLocked

    said = False
    while True:
        try:
            with RunLock(run_dir):
                return
        except RunLocked:
            if not said:
                log.info("%s is being trained by another process: waiting for its final state", run_dir)
                said = True
            time.sleep(poll_seconds)
        except OSError:  # the run dir is gone: nothing to wait for
            return


def format_table(rows: list[dict]) -> str:
    width = max([48] + [len(r["run"]) for r in rows])  # full names: rows must stay distinguishable
    head = f"{'run':<{width}} {'status':<11} {'eval_ne':>8} {'auc':>7} {'samples/s':>10} {'wall_s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ne = f"{r['eval_ne']:.4f}" if isinstance(r.get("eval_ne"), (int, float)) else "-"
        auc = f"{r['eval_auc']:.4f}" if isinstance(r.get("eval_auc"), (int, float)) else "-"
        sps = f"{r['train_samples_per_second']:.0f}" if r.get("train_samples_per_second") else "-"
        wall = f"{r['wall_seconds']:.1f}" if r.get("wall_seconds") else "-"
        status = r.get("status") or "unfinished"
        lines.append(f"{r['run']:<{width}} {status:<11} {ne:>8} {auc:>7} {sps:>10} {wall:>7}")
        if r.get("error") and status != Status.COMPLETED:
            lines.append(f"    {str(r['error']).splitlines()[0][:150]}")
    return "\n".join(lines)


class SweepReport(Callback):
    def __init__(self) -> None:
        self.run_dirs: list[Path] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            root = Path(config.hydra.sweep.dir)
        except RunsRootRefused:  # the sweeper resolves it next and reports the refusal, once
            return
        try:
            self.run_dirs = expected_run_dirs(config)
        except Exception as e:  # a custom sweeper: fall back to scanning at the end
            log.warning("could not expand the sweep in advance (%s)", e)
            self.run_dirs = []
        if self.run_dirs:
            root.mkdir(parents=True, exist_ok=True)
            rundir.atomic_write_json(root / SWEEP_PLAN_FILE, {"runs": [d.name for d in self.run_dirs]})
        done = sum(1 for d in self.run_dirs if rundir.run_status(d) == Status.COMPLETED)
        log.info("sweep %s: %d runs, %d completed already (skipped)", root, len(self.run_dirs), done)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        record_outcome(job_return)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        dirs = self.run_dirs or sorted(p.parent for p in root.glob(f"*/{rundir.CONFIG_FILE}"))
        for d in dirs:
            if OUTCOMES.get(d) == Status.LOCKED:  # another launcher's: its outcome is its summary
                await_final_state(d)
                OUTCOMES.record(d, None)
        rows = [_row(d, OUTCOMES.get(d)) for d in dirs]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.get("status") or "unfinished"] = counts.get(r.get("status") or "unfinished", 0) + 1
        print("\n" + format_table(rows))
        print(f"\nsweep {root}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), flush=True)
        # A job that ran elsewhere (submitit, a cluster node, another launcher) counts by its
        # summary; a job this process refused to train (skipped, conflict, refused) keeps that outcome.
        launcher_only = {s.value for s in rundir.LAUNCHER_OUTCOMES}
        for d, r in zip(dirs, rows):
            if OUTCOMES.get(d) not in launcher_only:
                OUTCOMES.record(d, r.get("status"))
