"""What a rerun trusts of earlier work: completion markers, and the identity of their source.

A day counts as finished only if its marker exists, the three arrays have the marker's
row count, and the raw file it was read from is still the same one (`source_identity`:
size, mtime_ns and a hash of its first and last 64 KiB, cheap even for an 11 GB file).
So a run killed while `train.txt` was still being extracted, or a day file downloaded
again, is redone rather than mixed with output of the old file.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Optional

import rundir

from dlrm.data.criteo.errors import CriteoPreprocessError
from dlrm.data.criteo.format import day_files, marker_path
from dlrm.data.criteo.npy import npy_rows

SAMPLE_BYTES = 64 << 10  # hashed at each end of a raw file
_COMPARED = ("size", "mtime_ns", "head_tail_sha256")


def source_identity(path: str) -> dict:
    """The identity of a raw file: size, mtime_ns and a SHA-256 of its first and last 64 KiB."""
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read(SAMPLE_BYTES))
        if st.st_size > SAMPLE_BYTES:
            f.seek(max(SAMPLE_BYTES, st.st_size - SAMPLE_BYTES))
            h.update(f.read(SAMPLE_BYTES))
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_tail_sha256": h.hexdigest()}


def _when(ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns // 10**9)) + f".{ns % 10**9:09d}"


def identity_change(recorded: Optional[dict], current: dict) -> Optional[str]:
    """None if `recorded` is the identity `current`; otherwise what differs, as a phrase."""
    path = current["path"]
    if not isinstance(recorded, dict) or any(k not in recorded for k in _COMPARED):
        return f"no identity of {path} is recorded (an older version wrote it)"
    diffs = []
    if recorded["size"] != current["size"]:
        diffs.append(f"size {recorded['size']:,} -> {current['size']:,} bytes")
    if recorded["mtime_ns"] != current["mtime_ns"]:
        diffs.append(f"modified {_when(recorded['mtime_ns'])} -> {_when(current['mtime_ns'])}")
    if recorded["head_tail_sha256"] != current["head_tail_sha256"]:
        diffs.append(f"its first and last {SAMPLE_BYTES >> 10} KiB differ")
    return f"{path} changed ({'; '.join(diffs)})" if diffs else None


def check_unchanged(recorded: dict, path: str, during: str) -> None:
    """Raise if the file at `path` is no longer the one `recorded` (e.g. still being extracted)."""
    changed = identity_change(recorded, source_identity(path))
    if changed:
        raise CriteoPreprocessError(f"{changed} while {during}: is it still being written or extracted? "
                                    "Rerun the same command once it is complete")


def read_marker(out_dir: str, day: int) -> Optional[dict]:
    """The day's completion marker if the day is finished and consistent, else None."""
    try:
        with open(marker_path(out_dir, day)) as f:
            marker = json.load(f)
        files = day_files(out_dir, day)
        if all(npy_rows(p) == marker["rows"] for p in files.values()):
            return marker
    except (OSError, ValueError, KeyError):
        pass
    return None


def write_marker(out_dir: str, day: int, marker: dict) -> None:
    rundir.atomic_write_json(marker_path(out_dir, day), marker)
