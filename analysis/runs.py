"""Find run directories and load them into a table (the contract: rundir/contract.py).

The table is a list of dicts, one per data point: a completed run's `summary.json` fields
as written (extra fields included), normalised to contract version 2 (see `normalise`),
plus `run_dir`, `intermediate` (False) and `source_run`; and, from runs that allow it,
their intermediate eval points (analysis.points).  Everything that is not a data point --
unfinished, interrupted, failed, diverged, corrupt or invalid -- goes to a separate list
with the reason, so the report can count and list it; nothing here raises for one bad run.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import rundir
from rundir import Status

from analysis.errors import AnalysisInputError
from analysis.points import add_intermediate_points
from analysis.values import finite_number

# The Bayes floor that goes with each metric that can be fitted: of the eval set's realised
# labels (the metric is measured on them), not its expectation over labels.
FLOOR_FIELD = {"eval_ne": "bayes_ne_realised", "eval_logloss": "bayes_logloss_realised"}
# The capacity limit (unlimited data) that goes with each metric, on the same labels; NE only.
ORACLE_FIELD = {"eval_ne": "oracle_ne_realised", "eval_logloss": None}
# A run that records only the expectation over labels falls back to it.
EXPECTED_FIELD = {"bayes_ne_realised": "bayes_ne", "bayes_logloss_realised": "bayes_logloss",
                  "oracle_ne_realised": "oracle_ne"}
# Leading columns of runs.csv, in this order; every other summary field follows, sorted.
CSV_LEADING_COLUMNS = (
    "run_name", "status", "intermediate", "source_run", "model", "data", "data_id", "seed",
    rundir.data_axis().summary_field, *(a.summary_field for a in rundir.SCALING_AXES if a.kind != "data"),
    "embedding_lr", "dense_lr", "params_total", "params_embedding", "params_dense",
    "flops_per_sample", "train_flops", "eval_ne", "eval_logloss", "eval_auc", "bayes_ne", "bayes_ne_realised",
    "oracle_ne", "oracle_ne_realised",
)
# Summary fields copied into an exclusion row, so that a reader sees which point it was.
_EXCLUDED_KEYS = ("model", *(a.summary_field for a in rundir.SCALING_AXES), "seed")


@dataclass
class RunTable:
    """Data points (`points`: final evals of completed runs, then intermediate evals),
    everything else with its reason (`excluded`: one row per run dir), and the
    intermediate evals that cannot be used (`refused`: one row per run)."""

    roots: list[str]
    metric: str
    points: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [p for p in self.points if not p.get("intermediate")]

    @property
    def n_intermediate(self) -> int:
        return sum(bool(p.get("intermediate")) for p in self.points)

    def counts(self) -> dict[str, int]:
        """Run dirs per state (intermediate eval points are not run dirs)."""
        out = {str(Status.COMPLETED): len(self.finals)}
        for row in self.excluded:
            out[row["state"]] = out.get(row["state"], 0) + 1
        return out


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) holding a run marker, sorted."""
    return scan(root)[0]


def _holds_runs(path: Path) -> bool:
    """A run marker in `path` or in one of its subdirectories (a run dir or a sweep root)."""
    try:
        dirs = [path] + [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return False
    return any((d / m).exists() for d in dirs for m in rundir.RUN_MARKERS)


def scan(root: Path) -> tuple[list[Path], list[Path]]:
    """(run dirs, symbolic links to run dirs or sweep roots) under `root`, each sorted.

    Hidden directories (`.hydra`, `.git`) are not searched, nor a run's checkpoint
    folders (a checkpoint may hold a copy of the config).  A directory whose only marker
    is a config file but that has run dirs below it is a sweep root, not a run.  Links are
    not followed (one can loop, or reach a run twice); the caller lists them.
    """
    found: list[Path] = []
    links: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        is_run = any(m in filenames for m in rundir.RUN_MARKERS)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not (is_run and d.startswith(rundir.CHECKPOINT_DIR))
        )
        links += [Path(dirpath) / d for d in dirnames
                  if os.path.islink(os.path.join(dirpath, d)) and _holds_runs(Path(dirpath) / d)]
        if is_run:
            found.append(Path(dirpath))
    found_set = set(found)

    def is_container(p: Path) -> bool:
        only_config = not (p / rundir.SUMMARY_FILE).exists() and not (p / rundir.METRICS_FILE).exists()
        return only_config and any(q != p and p in q.parents for q in found_set)

    return sorted(p for p in found if not is_container(p)), sorted(links)


def link_exclusion(link: Path, analysed: set[str]) -> dict[str, Any]:
    """The excluded.csv row of a symbolic link: where it points, and whether that is analysed."""
    target = os.path.realpath(link)
    inside = any(p == target or p.startswith(target + os.sep) for p in analysed)
    fix = ("its target is analysed here" if inside
           else "pass its target as a SWEEP_DIR to analyse it")
    return {"run_dir": str(link), "run_name": link.name, "state": "symlink",
            "reason": f"a symbolic link to {target}, not followed (a link can loop or reach a run twice): {fix}"}


def last_progress(run_dir: Path) -> dict[str, Any]:
    """The last `step` and `samples_seen` logged in metrics.jsonl ({} when none)."""
    last: dict[str, Any] = {}
    for point in rundir.iter_points(run_dir):
        for key in ("step", "samples_seen"):
            if key in point:
                last[key] = point[key]
    return last


def _progress_text(run_dir: Path, total: Any = None) -> str:
    if not (run_dir / rundir.METRICS_FILE).exists():
        return "no metrics logged yet"
    last = last_progress(run_dir)
    if not last:
        return f"{rundir.METRICS_FILE} has no readable line"
    parts = [f"{k}={last[k]}" for k in ("step", "samples_seen") if k in last]
    text = "last logged " + ", ".join(parts)
    if total and "samples_seen" in last:
        text += f" of {total} samples"
    return text


def hidden_width(layers: Any) -> Optional[int]:
    """The hidden width of an MLP given as layer sizes: all layers but the last, when they
    are all equal (None without a hidden layer or when they differ)."""
    if not isinstance(layers, (list, tuple)) or len(layers) < 2:
        return None
    hidden = layers[:-1]
    return int(hidden[0]) if all(h == hidden[0] for h in hidden) else None


def normalise(summary: dict) -> dict:
    """A summary in the terms of contract version 2, whatever version wrote it.

    Version 1 (no `rundir_version`): `dense_arch_width` / `over_arch_width` derived from
    the hidden layers of the layer sizes, `mlp_width` kept as written.  Any version: a
    missing `data_id` falls back to the data set's name (runs of different data are never
    one series); a missing `dense_arch_output` is `relu`, the only dense arch before it."""
    record = dict(summary)
    record["rundir_version"] = summary.get("rundir_version", 1)
    for width, layers in (("dense_arch_width", "dense_arch_layer_sizes"),
                          ("over_arch_width", "over_arch_layer_sizes")):
        if record.get(width) is None:
            derived = hidden_width(summary.get(layers))
            if derived is None and layers not in summary:
                derived = summary.get("mlp_width")  # no layer sizes: the one MLP width
            record[width] = derived
    data = summary.get("data")
    record["data"] = None if data is None else str(data)
    if record.get("data_id") is None:
        record["data_id"] = record["data"]
    record.setdefault("dense_arch_output", "relu")
    record.setdefault("dense_precision", "fp32")  # summaries before the key trained in float32
    return record


def load_run(run_dir: Path, root: Path, metric: str) -> tuple[Optional[dict], Optional[dict]]:
    """(record, None) for a completed run with a usable metric, (None, exclusion) else."""
    try:
        rel = str(run_dir.relative_to(root)) if run_dir != root else run_dir.name
    except ValueError:
        rel = str(run_dir)
    name = f"{root.name}/{rel}" if rel not in ("", ".") else root.name

    def excluded(state: str, reason: str, summary: Optional[dict] = None) -> tuple[None, dict]:
        row = {"run_dir": str(run_dir), "run_name": name, "state": state, "reason": reason}
        if summary:
            row["run_name"] = str(summary.get("run_name") or name)
            for key in _EXCLUDED_KEYS:
                if key in summary:
                    row[key] = summary[key]
        return None, row

    summary_path = run_dir / rundir.SUMMARY_FILE
    if not summary_path.exists():
        return excluded("unfinished", f"no {rundir.SUMMARY_FILE} ({_progress_text(run_dir)})")
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        return excluded("corrupt", f"corrupt {rundir.SUMMARY_FILE}: {e}")
    if not isinstance(summary, dict):
        return excluded("corrupt", f"corrupt {rundir.SUMMARY_FILE}: a {type(summary).__name__}, not an object")

    status = summary.get("status")
    if status in (Status.FAILED, Status.DIVERGED):
        detail = [f"{k}={summary[k]}" for k in ("error", "diverged_step") if summary.get(k) is not None]
        return excluded(str(status), str(status) + (f" ({'; '.join(detail)})" if detail else ""), summary)
    if status == Status.INTERRUPTED:
        return excluded(str(Status.INTERRUPTED), "interrupted (resumable: a relaunch continues it; "
                        f"{_progress_text(run_dir, summary.get('num_train_samples'))})", summary)
    if status != Status.COMPLETED:
        return excluded("invalid", f"unknown status {status!r} in {rundir.SUMMARY_FILE}", summary)

    raw = summary.get(metric)
    if raw is None:
        return excluded("invalid", f"completed but {metric} is missing", summary)
    value = finite_number(raw)
    if value is None or value <= 0:
        return excluded("invalid", f"{metric} is {raw!r} (need a finite positive number)", summary)

    record = normalise(summary)
    record["run_dir"] = str(run_dir)
    record.setdefault("run_name", name)
    record["intermediate"] = False
    record["source_run"] = record["run_name"]
    record[metric] = value
    # A floor (or oracle) that is not a finite number is unknown, as for real data.
    for known in (FLOOR_FIELD.get(metric), ORACLE_FIELD.get(metric)):
        if known is not None:
            value = summary.get(known, summary.get(EXPECTED_FIELD[known]))
            record[known] = finite_number(value)
    return record, None


def load_runs(roots: list[str | Path], metric: str = "eval_ne", intermediate: bool = True) -> RunTable:
    """Load every run dir under `roots`, and (with `intermediate`) the intermediate eval
    points of the completed ones.  Raises AnalysisInputError only for the input as a
    whole: a path that does not exist, or holds no run directory at all."""
    if metric not in FLOOR_FIELD:
        raise AnalysisInputError(f"unknown metric {metric!r}; one of {sorted(FLOOR_FIELD)}")
    table = RunTable(roots=[str(r) for r in roots], metric=metric)
    seen: set[str] = set()
    linked: list[Path] = []
    for root in map(Path, roots):
        if not root.exists():
            raise AnalysisInputError(f"{root}: no such directory")
        if not root.is_dir():
            raise AnalysisInputError(f"{root}: not a directory")
        run_dirs, links = scan(root)
        if not run_dirs and not links:
            markers = rundir.RUN_MARKERS
            raise AnalysisInputError(
                f"{root}: no run directories found (a run dir holds "
                f"{', '.join(markers[:-1])} or {markers[-1]})"
            )
        for run_dir in run_dirs:
            key = os.path.realpath(run_dir)
            if key in seen:  # the same run reached through two overlapping SWEEP_DIRs
                continue
            seen.add(key)
            record, exclusion = load_run(run_dir, root, metric)
            if record is not None:
                table.points.append(record)
            else:
                table.excluded.append(exclusion)
        linked += links
    table.excluded += [link_exclusion(link, seen) for link in sorted(set(linked))]
    if intermediate:
        add_intermediate_points(table)
    return table


def require_points(table: RunTable) -> None:
    """Raise when nothing can be fitted, saying what was found instead."""
    if table.points:
        return
    counts = table.counts()
    found = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()) if n) or "nothing"
    lines = [f"no completed runs with a finite {table.metric} under {', '.join(table.roots)} "
             f"(found {found})"]
    lines += [f"  {row['run_dir']}: {row['reason']}" for row in table.excluded[:20]]
    if len(table.excluded) > 20:
        lines.append(f"  ... and {len(table.excluded) - 20} more")
    raise AnalysisInputError("\n".join(lines))


def _csv_cell(value: Any) -> Any:
    # Lists and dicts as JSON (lists stay lists, never comma-joined); None as empty.
    if value is None:
        return ""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)  # full precision: runs.csv feeds other tools
    return value


def write_rows_csv(rows: list[dict], path: Path, leading: tuple[str, ...] = CSV_LEADING_COLUMNS) -> None:
    """Rows as CSV with the union of their keys as columns (leading ones first)."""
    keys = set().union(*(r.keys() for r in rows)) if rows else set()
    columns = [c for c in leading if c in keys] + sorted(keys - set(leading))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: _csv_cell(row.get(c)) for c in columns})
