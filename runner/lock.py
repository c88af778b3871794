"""One process trains a run dir at a time: an exclusive, non-blocking flock on RUN_DIR/.lock.

Two sweeps launched into one root (or twice the same sweep) therefore never train the
same run twice at once: the second finds the lock, says who holds it, and moves on.
The kernel drops the lock when its holder dies, so a killed run never leaves it stale.

Some filesystems have no flock (Lustre without its flock mount option, some NFS: the call
fails with ENOSYS or ENOLCK).  There the lock is a file created exclusively
(RUN_DIR/.lock.owner: host, pid, time), kept fresh by a heartbeat, and taken over when
it is stale: its process is gone (same host), its holder was an earlier run of this same
SLURM job (a requeued job has the same SLURM_JOB_ID and a higher SLURM_RESTART_COUNT: the
job it replaces is over, wherever it ran), or its heartbeat is older than
STALE_AFTER_SECONDS (another host).  Without the SLURM rule a job requeued onto another node
within that window would find its own run locked by its dead predecessor and skip it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Optional

from rundir import LOCK_FILE

OWNER_FILE = LOCK_FILE + ".owner"  # the fallback lock, where flock is not available
HEARTBEAT_SECONDS = 30.0
STALE_AFTER_SECONDS = 300.0  # 10 missed heartbeats: its holder is gone
_NO_FLOCK = (errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP)


class RunLocked(RuntimeError):
    pass


def _slurm_job() -> dict:
    """This process's SLURM job and how often it was requeued ({} outside SLURM)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        return {}
    try:
        restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0"))
    except ValueError:
        restarts = 0
    return {"slurm_job_id": job, "slurm_restart_count": restarts}


def _earlier_run_of_this_job(owner: dict) -> bool:
    """The owner was this SLURM job before a requeue: the same job id, fewer restarts."""
    mine = _slurm_job()
    if not mine or owner.get("slurm_job_id") != mine["slurm_job_id"]:
        return False
    try:
        return int(owner.get("slurm_restart_count", 0)) < mine["slurm_restart_count"]
    except (TypeError, ValueError):
        return False


def _locked_message(run_dir: Path, holder: str) -> str:
    return (f"{run_dir} is being trained by {holder} (another sweep into the same root?): "
            f"skipped here; relaunch once that process has finished")


def _open_no_follow(path: Path, flags: int) -> int:
    """Open a lock file without following a symlink: the lock truncates and writes its file,
    and a link planted in the run dir would turn that on the link's target."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise RunLocked(f"{path} is a symbolic link: the run is not trained while its lock could write "
                        f"elsewhere; remove the link (rm {path}) and relaunch") from None


class RunLock:
    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.owner_path = Path(run_dir) / OWNER_FILE
        self._fd: Optional[int] = None
        self._stop: Optional[threading.Event] = None

    def __enter__(self) -> "RunLock":
        fd = _open_no_follow(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(_locked_message(self.path.parent, holder)) from None
        except OSError as e:
            os.close(fd)
            if e.errno not in _NO_FLOCK:
                raise
            self._take_owner_file()
            return self
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    # ------------------------------------------------------- the fallback lock file
    def _owner(self) -> dict:
        return {"host": socket.gethostname(), "pid": os.getpid(), "time": time.time(), **_slurm_job()}

    def _stale(self, owner: dict) -> bool:
        try:
            age = time.time() - self.owner_path.stat().st_mtime
        except FileNotFoundError:
            return True
        if _earlier_run_of_this_job(owner):
            return True
        if owner.get("host") == socket.gethostname():
            try:
                os.kill(int(owner.get("pid", -1)), 0)
                return False
            except ProcessLookupError:
                return True
            except (PermissionError, ValueError):
                pass
        return age > STALE_AFTER_SECONDS

    def _take_owner_file(self) -> None:
        for _ in range(2):  # once more after removing a stale owner
            try:
                fd = _open_no_follow(self.owner_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                try:
                    owner = json.loads(self.owner_path.read_text())
                except (OSError, ValueError):
                    owner = {}
                if not self._stale(owner):
                    holder = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"
                    raise RunLocked(_locked_message(self.path.parent, holder)) from None
                self.owner_path.unlink(missing_ok=True)  # its holder is gone
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(self._owner(), f)
            self._stop = threading.Event()
            threading.Thread(target=self._heartbeat, daemon=True, name="run-lock-heartbeat").start()
            return
        raise RunLocked(_locked_message(self.path.parent, "another process (it took over a stale lock first)"))

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                os.utime(self.owner_path)
            except OSError:
                return

    def fileno(self) -> Optional[int]:
        """The locked descriptor: a child that inherits it holds the lock as long as it lives
        (None under the fallback lock file, which a child cannot inherit)."""
        return self._fd

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            # Closing (not LOCK_UN) frees the lock only when no child holds the descriptor.
            os.close(self._fd)
            self._fd = None
        if self._stop is not None:
            self._stop.set()
            self._stop = None
            self.owner_path.unlink(missing_ok=True)
