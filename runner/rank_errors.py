"""What a rank's exception means for its run: its own error, or a peer it lost.

Under torchrun an exception on one rank is one of two things.  Its own error (a bug, a
value that fails late, a full disk) ends the run `failed` with that error, whichever rank
met it: a relaunch must not resume into it.  A lost peer (a rank killed, a host gone: the
collectives fail on a closed connection, or time out) says nothing against the run, which
stays resumable from its newest complete checkpoint.

Only global rank 0 writes the summary, and torchrun ends the other ranks (SIGTERM) as soon
as one fails, so each rank leaves its own error in `error.rank<N>.json` before it exits,
for whoever writes the summary: the launcher under launcher=torchrun (runner/ranks.py),
global rank 0 under a torchrun started by hand (runner/job.py).  A lost peer leaves none.
"""
from __future__ import annotations

import json
import traceback
from pathlib import Path
from typing import Any, Optional

import rundir

# What gloo, NCCL and the c10d store say when the other end of a collective is gone.
PEER_LOST_MESSAGES = ("connection closed by peer", "connection reset by peer", "broken pipe",
                      "connection refused", "timed out", "timeout", "communicator was aborted",
                      "socket closed", "read error", "recvbytes", "sendbytes")


def _chain(e: BaseException):
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def peer_lost(e: BaseException) -> bool:
    """Whether the exception (or one it was raised from) is a collective that lost its peer."""
    import torch.distributed as dist

    lost_types = tuple(t for t in (getattr(dist, "DistNetworkError", None), getattr(dist, "DistStoreError", None))
                       if t is not None)
    for err in _chain(e):
        if lost_types and isinstance(err, lost_types):
            return True
        if any(m in str(err).lower() for m in PEER_LOST_MESSAGES):
            return True
    return False


def _path(run_dir: Path, rank: int) -> Path:
    return Path(run_dir) / rundir.RANK_ERROR_FILE.format(rank=rank)


def record(run_dir: Path, rank: int, e: BaseException) -> bool:
    """Leave this rank's own error for the summary's writer; a lost peer leaves nothing.
    True when an error was recorded."""
    if peer_lost(e):
        return False
    try:
        rundir.atomic_write_json(_path(run_dir, rank), {
            "rank": rank, "error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()})
    except OSError:
        return False  # the run dir itself is unwritable: the rank's log has the error
    return True


def recorded(run_dir: Path) -> list[dict[str, Any]]:
    """Every rank's recorded error, by rank."""
    out = []
    for p in sorted(Path(run_dir).glob(rundir.RANK_ERROR_FILE.format(rank="*"))):
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            out.append({"rank": p.name, "error": f"an unreadable {p.name}", "traceback": ""})
    return sorted(out, key=lambda r: str(r.get("rank")))


def clear(run_dir: Path) -> None:
    """Before a run (re)starts: errors of an earlier attempt are not this one's."""
    for p in Path(run_dir).glob(rundir.RANK_ERROR_FILE.format(rank="*")):
        p.unlink(missing_ok=True)


def failed_summary(run_dir: Path, seed: Any, errors: list[dict[str, Any]]) -> None:
    """The run's summary after a rank's own error: `failed`, with the first error and every rank's."""
    first = errors[0]
    rundir.write_summary(run_dir, rundir.Status.FAILED, seed, error=f"rank {first.get('rank')}: {first.get('error')}",
                         traceback=first.get("traceback", ""),
                         rank_errors=[{"rank": r.get("rank"), "error": r.get("error")} for r in errors])


def interrupted_summary(run_dir: Path, seed: Any, why: str, checkpoint: Optional[Path]) -> None:
    rundir.write_summary(run_dir, rundir.Status.INTERRUPTED, seed, error=f"{why}; a relaunch resumes it from {checkpoint}")
