"""Find run directories and load them into a table (DESIGN.md, "The run directory").

The table is a list of dicts, one per usable run: the run's `summary.json` fields as
written (extra fields included), plus `run_dir`.  Everything that is not a data point --
unfinished, failed, diverged, corrupt or invalid -- goes to a separate list with the
reason, so the report can count and list it; nothing here raises for one bad run.
"""
from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from analysis.errors import AnalysisInputError

RUN_MARKERS = ("config.yaml", "summary.json", "metrics.jsonl")
TERMINAL_STATUSES = ("completed", "failed", "diverged")
# The Bayes floor that goes with each metric that can be fitted.
FLOOR_FIELD = {"eval_ne": "bayes_ne", "eval_logloss": "bayes_logloss"}
# Leading columns of runs.csv, in this order; every other summary field follows, sorted.
CSV_LEADING_COLUMNS = (
    "run_name", "status", "model", "data", "seed", "num_train_samples", "embedding_dim",
    "mlp_width", "mlp_depth", "params_total", "params_embedding", "params_dense",
    "flops_per_sample", "train_flops", "eval_ne", "eval_logloss", "eval_auc", "bayes_ne",
)
# A metrics.jsonl can grow large; the progress of an unfinished run needs only its end.
_METRICS_TAIL_BYTES = 64 * 1024


@dataclass
class RunTable:
    """Usable runs (`points`) and everything else with its reason (`excluded`)."""

    roots: list[str]
    metric: str
    points: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"completed": len(self.points)}
        for row in self.excluded:
            out[row["state"]] = out.get(row["state"], 0) + 1
        return out


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under `root` (itself included) holding a run marker, sorted.

    Hidden directories (`.hydra`, `.git`) are not searched, nor a run's `checkpoint*`
    folders (a checkpoint may hold a copy of the config).  A directory whose only marker
    is a `config.yaml` but that has run dirs below it is a sweep root, not a run.
    """
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        is_run = any(m in filenames for m in RUN_MARKERS)
        dirnames[:] = sorted(
            d for d in dirnames
            if not d.startswith(".") and not (is_run and d.startswith("checkpoint"))
        )
        if is_run:
            found.append(Path(dirpath))
    found_set = set(found)

    def is_container(p: Path) -> bool:
        only_config = not (p / "summary.json").exists() and not (p / "metrics.jsonl").exists()
        return only_config and any(q != p and p in q.parents for q in found_set)

    return sorted(p for p in found if not is_container(p))


def _finite_number(value: Any) -> Optional[float]:
    """`value` as a float when it is a finite number (bools and strings are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _data_name(value: Any) -> Optional[str]:
    """The data set's name: summaries may store a name or the whole data config."""
    if value is None:
        return None
    if isinstance(value, dict):
        for key in ("name", "_target_", "source"):
            if isinstance(value.get(key), str):
                return value[key]
        return json.dumps(value, sort_keys=True)
    return str(value)


def _progress(run_dir: Path) -> str:
    """A short description of how far an unfinished run got, from its metrics.jsonl."""
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return "no metrics logged yet"
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _METRICS_TAIL_BYTES))
        lines = f.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):  # the last line may be half written: skip what fails
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict):
            parts = [f"{k}={rec[k]}" for k in ("step", "samples_seen") if k in rec]
            return "last logged " + ", ".join(parts) if parts else "metrics logged"
    return "metrics.jsonl has no readable line"


def load_run(run_dir: Path, root: Path, metric: str) -> tuple[Optional[dict], Optional[dict]]:
    """(record, None) for a usable run, (None, exclusion) for anything else."""
    try:
        rel = str(run_dir.relative_to(root)) if run_dir != root else run_dir.name
    except ValueError:
        rel = str(run_dir)
    name = f"{root.name}/{rel}" if rel not in ("", ".") else root.name

    def excluded(state: str, reason: str, summary: Optional[dict] = None) -> tuple[None, dict]:
        row = {"run_dir": str(run_dir), "run_name": name, "state": state, "reason": reason}
        if summary:
            row["run_name"] = str(summary.get("run_name") or name)
            for key in ("model", "num_train_samples", "embedding_dim", "mlp_width", "seed"):
                if key in summary:
                    row[key] = summary[key]
        return None, row

    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        return excluded("unfinished", f"no summary.json ({_progress(run_dir)})")
    try:
        summary = json.loads(summary_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as e:
        return excluded("corrupt", f"corrupt summary.json: {e}")
    if not isinstance(summary, dict):
        return excluded("corrupt", f"corrupt summary.json: a {type(summary).__name__}, not an object")

    status = summary.get("status")
    if status in ("failed", "diverged"):
        detail = [f"{k}={summary[k]}" for k in ("error", "diverged_step") if summary.get(k) is not None]
        return excluded(status, status + (f" ({'; '.join(detail)})" if detail else ""), summary)
    if status != "completed":
        return excluded("invalid", f"unknown status {status!r} in summary.json", summary)

    raw = summary.get(metric)
    if raw is None:
        return excluded("invalid", f"completed but {metric} is missing", summary)
    value = _finite_number(raw)
    if value is None or value <= 0:
        return excluded("invalid", f"{metric} is {raw!r} (need a finite positive number)", summary)

    record = dict(summary)
    record["run_dir"] = str(run_dir)
    record.setdefault("run_name", name)
    record["data"] = _data_name(summary.get("data"))
    record[metric] = value
    # A floor that is not a finite number is unknown, as for real data.
    floor_field = FLOOR_FIELD.get(metric)
    if floor_field is not None:
        record[floor_field] = _finite_number(summary.get(floor_field))
    return record, None


def load_runs(roots: list[str | Path], metric: str = "eval_ne") -> RunTable:
    """Load every run dir under `roots`.  Raises AnalysisInputError only for the input
    as a whole: a path that does not exist, or holds no run directory at all."""
    if metric not in FLOOR_FIELD:
        raise AnalysisInputError(f"unknown metric {metric!r}; one of {sorted(FLOOR_FIELD)}")
    table = RunTable(roots=[str(r) for r in roots], metric=metric)
    seen: set[str] = set()
    for root in map(Path, roots):
        if not root.exists():
            raise AnalysisInputError(f"{root}: no such directory")
        if not root.is_dir():
            raise AnalysisInputError(f"{root}: not a directory")
        run_dirs = find_run_dirs(root)
        if not run_dirs:
            raise AnalysisInputError(
                f"{root}: no run directories found (a run dir holds "
                f"{', '.join(RUN_MARKERS[:-1])} or {RUN_MARKERS[-1]})"
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
