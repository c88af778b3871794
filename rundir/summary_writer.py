"""summary.json, built and written in one place: whoever ends a run -- the training loop
(completed, diverged, interrupted), the app (a failure, a refusal), the launcher of a
job's ranks (a lost rank, a rank's own error) -- writes it with `write_summary`.

Every summary opens with the same identity fields (rundir_version, status, run_name, seed);
the writer adds what the ending knows (SUMMARY_FIELDS of a completed run, FAILURE_FIELDS of
one that did not complete: rundir/contract.py).  Standard library only, as all of `rundir`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rundir.contract import RUNDIR_VERSION, SUMMARY_FILE, Status
from rundir.io import atomic_write_json


def summary_of(run_dir: Path | str, status: Status, seed: Any, **fields: Any) -> dict:
    """The summary of the run in `run_dir` that ended in `status`: its identity, then `fields`."""
    return {"rundir_version": RUNDIR_VERSION, "status": Status(status), "run_name": Path(run_dir).name,
            "seed": seed, **fields}


def write_summary(run_dir: Path | str, status: Status, seed: Any, **fields: Any) -> dict:
    """Build the summary (summary_of) and write it atomically to RUN_DIR/summary.json; returns it."""
    summary = summary_of(run_dir, status, seed, **fields)
    atomic_write_json(Path(run_dir) / SUMMARY_FILE, summary)
    return summary
