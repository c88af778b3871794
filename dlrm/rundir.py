"""The run directory: the contract between training and analysis (DESIGN.md).

Every file a reader looks at is written atomically (a temp file in the same directory,
fsync, rename), so a killed run never leaves a half-written `summary.json` or
`config.yaml`; `metrics.jsonl` is appended and flushed line by line, and a reader
ignores a torn last line.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
ENV_FILE = "env.json"
CHECKPOINT_DIR = "checkpoint"

STATUS_COMPLETED = "completed"
STATUS_FAILED = "failed"
STATUS_DIVERGED = "diverged"
STATUS_INTERRUPTED = "interrupted"  # SIGTERM: checkpointed, to be requeued


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: Path, text: str) -> None:
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


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
    if hasattr(x, "item"):  # numpy / torch scalars
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_summary(run_dir: Path) -> Optional[dict]:
    """The run's summary, or None when it has none (unfinished) or it is unreadable."""
    try:
        return json.loads((Path(run_dir) / SUMMARY_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def run_status(run_dir: Path) -> Optional[str]:
    summary = read_summary(run_dir)
    return None if summary is None else summary.get("status")


def check_writable(run_dir: Path) -> None:
    """Fail before training, naming the path, when the run dir cannot be written."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise OSError(f"run directory {run_dir} is not writable ({e.strerror}): choose another with hydra.run.dir=PATH or free the disk") from e


class MetricsLog:
    """metrics.jsonl: one JSON object per log or eval point, flushed as written."""

    def __init__(self, run_dir: Path, truncate_after_samples: Optional[int] = None):
        self.path = Path(run_dir) / METRICS_FILE
        if truncate_after_samples is not None and self.path.exists():
            self._truncate(truncate_after_samples)
        self._file = open(self.path, "a")

    def _truncate(self, samples_seen: int) -> None:
        """On resume: drop points logged after the checkpoint, so no point appears twice."""
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                point = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn line from a kill
            if point.get("samples_seen", 0) <= samples_seen:
                kept.append(line)
        atomic_write_text(self.path, "".join(k + "\n" for k in kept))

    def write(self, point: dict) -> None:
        self._file.write(json.dumps(point, default=_json_default) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str, world_size: int) -> dict:
    import torch

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("torchrec", "fbgemm_gpu", "hydra", "numpy"):
        try:
            versions[module] = getattr(__import__(module), "__version__", "unknown")
        except ImportError:
            versions[module] = None
    return {
        "versions": versions,
        "git_commit": _git_commit(),
        "device": device,
        "cuda_device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "world_size": world_size,
        "host": socket.gethostname(),
        "num_threads": torch.get_num_threads(),
    }
