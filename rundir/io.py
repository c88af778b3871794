"""Reading and writing run-dir files safely.

Every file a reader looks at is written atomically (a temp file in the same directory,
fsync, rename), so a killed run never leaves a half-written `summary.json` or
`config.yaml`; `metrics.jsonl` is appended and flushed line by line, and a reader skips a
torn last line.  This is the project's one atomic-write helper (the Criteo preprocessor
uses it too).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional

from rundir.contract import METRICS_FILE, SUMMARY_FILE

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: Path | str, text: str) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide run dirs from colleagues
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json(obj: Any, indent: Optional[int] = 2) -> str:
    """JSON with numpy/torch scalars as numbers; sorted keys so that files diff well."""
    return json.dumps(obj, indent=indent, sort_keys=indent is not None, default=_json_default)


def atomic_write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, to_json(obj) + "\n")


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):  # numpy / torch scalars
        return x.item()
    if hasattr(x, "tolist"):  # small numpy arrays
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_summary(run_dir: Path | str) -> Optional[dict]:
    """The run's summary, or None when it has none (unfinished) or it is unreadable."""
    try:
        summary = json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return summary if isinstance(summary, dict) else None


def run_status(run_dir: Path | str) -> Optional[str]:
    summary = read_summary(run_dir)
    return None if summary is None else summary.get("status")


def iter_points(run_dir: Path | str) -> Iterator[dict]:
    """Every readable point of metrics.jsonl, in order (a torn line from a kill is skipped)."""
    path = Path(run_dir) / METRICS_FILE
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with f:
        for line in f:
            try:
                point = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(point, dict):
                yield point


def check_writable(run_dir: Path | str) -> None:
    """Fail before training, naming the path, when the run dir cannot be written."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.unlink(missing_ok=True)  # a leftover, or a planted link: unlinking never follows it
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        os.write(fd, b"ok")
        os.close(fd)
        probe.unlink()
    except OSError as e:
        raise OSError(f"run directory {run_dir} is not writable ({e.strerror}): choose another with "
                      f"hydra.run.dir=PATH or free the disk") from e


class MetricsLog:
    """metrics.jsonl: one JSON object per log or eval point, flushed as written."""

    def __init__(self, run_dir: Path | str, truncate_after_samples: Optional[int] = None):
        self.path = Path(run_dir) / METRICS_FILE
        if truncate_after_samples is not None and self.path.exists():
            self._truncate(truncate_after_samples)
        # Appending never follows a symlink: a link in the run dir must not grow its target.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o666 & ~_UMASK)
        self._file = os.fdopen(fd, "a")

    def _truncate(self, samples_seen: int) -> None:
        """On resume: drop points logged after the checkpoint, so no point appears twice."""
        kept = [p for p in iter_points(self.path.parent) if p.get("samples_seen", 0) <= samples_seen]
        atomic_write_text(self.path, "".join(to_json(p, indent=None) + "\n" for p in kept))

    def write(self, point: dict) -> None:
        self._file.write(to_json(point, indent=None) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
