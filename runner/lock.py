"""One process trains a run dir at a time: an exclusive, non-blocking flock on RUN_DIR/.lock.

Two sweeps launched into one root (or twice the same sweep) therefore never train the
same run twice at once: the second finds the lock, says who holds it, and moves on.
The kernel drops the lock when its holder dies, so a killed run never leaves it stale.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from rundir import LOCK_FILE



class RunLocked(RuntimeError):
    pass


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd = None

    def __enter__(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(
                f"{self.path.parent} is being trained by {holder} (another sweep into the same root?): "
                f"skipped here; relaunch once that process has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
