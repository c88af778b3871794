"""The sweep's progress and its closing table, as a Hydra callback.

on_multirun_start expands the sweep exactly as Hydra's basic sweeper will (so it knows
the total and every run's directory); each job prints `[k/total]`; on_multirun_end
reads every run's summary.json -- wherever the job ran (in this process, torchrun,
submitit) -- prints one row per run, and sets the exit code: non-zero if any run of
this sweep failed, diverged or did not finish.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("dlrm.sweep")
_BAD = {"failed", "diverged", "interrupted", "locked", "conflict", None}
_statuses: dict[str, Optional[str]] = {}


def record_status(run_dir: Path, status: str) -> None:
    """Called by the task function in this process (single runs and in-process sweeps)."""
    _statuses[str(run_dir)] = status


def exit_code() -> int:
    return 1 if any(s in _BAD for s in _statuses.values()) else 0


def expected_run_dirs(config: DictConfig) -> list[Path]:
    """Every run dir of the sweep, in launch order, by expanding it as the basic sweeper does."""
    from hydra._internal.config_loader_impl import get_overrides_dirname
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeps.grids import expand
    from sweeps.naming import run_name

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


def _row(run_dir: Path) -> dict:
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        summary = {"status": None}
    return {"run": run_dir.name, **summary}


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
        if r.get("error") and status != "completed":
            lines.append(f"    {str(r['error']).splitlines()[0][:150]}")
    return "\n".join(lines)


class SweepReport(Callback):
    def __init__(self) -> None:
        self.run_dirs: list[Path] = []

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self.run_dirs = expected_run_dirs(config)
        except Exception as e:  # a custom sweeper: fall back to scanning at the end
            log.warning("could not expand the sweep in advance (%s)", e)
            self.run_dirs = []
        done = sum(1 for d in self.run_dirs if _row(d).get("status") == "completed")
        os.environ["DLRM_SWEEP_TOTAL"] = str(len(self.run_dirs) or "?")
        log.info("sweep %s: %d runs, %d completed already (skipped)", config.hydra.sweep.dir,
                 len(self.run_dirs), done)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        dirs = self.run_dirs or sorted(p.parent for p in root.glob("*/config.yaml"))
        rows = [_row(d) for d in dirs]
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.get("status") or "unfinished"] = counts.get(r.get("status") or "unfinished", 0) + 1
        print("\n" + format_table(rows))
        print(f"\nsweep {root}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())), flush=True)
        for r in rows:
            _statuses[str(root / r["run"])] = r.get("status")
