"""Durable .npy output: a streaming writer of not-yet-known length, temp names, fsync.

Every output file is written under a temp name (`tmp_name`), made durable and renamed,
so a killed run never leaves a file that looks finished.
"""
from __future__ import annotations

import os
import struct

import numpy as np

NPY_HEADER_LEN = 128  # fixed, so the shape can be written after streaming the rows


class NpyStreamWriter:
    """Append rows to an .npy file of not-yet-known length (fixed 128-byte v1.0 header)."""

    def __init__(self, path: str, dtype, ncols: int):
        self.path, self.dtype, self.ncols, self.rows = path, np.dtype(dtype), ncols, 0
        self.f = open(path, "wb")
        self.f.write(b"\0" * NPY_HEADER_LEN)

    def append(self, arr: np.ndarray) -> None:
        assert arr.dtype == self.dtype and arr.ndim == 2 and arr.shape[1] == self.ncols, (arr.dtype, arr.shape)
        self.f.write(np.ascontiguousarray(arr).data)
        self.rows += len(arr)

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(npy_header(self.dtype, (self.rows, self.ncols)))
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()

    def abort(self) -> None:
        """Close and delete the partial file (a killed process leaves it; the next run deletes it)."""
        self.f.close()
        try:
            os.remove(self.path)
        except OSError:
            pass


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    d = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.dtype(dtype).str, tuple(shape))
    body_len = NPY_HEADER_LEN - 10
    assert len(d) + 1 <= body_len
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body_len) + (d.ljust(body_len - 1) + "\n").encode("latin1")


def npy_rows(path: str) -> int:
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        shape, _, _ = np.lib.format.read_array_header_1_0(f)
    return int(shape[0])


def tmp_name(path: str) -> str:
    """A temp name beside `path`, unique per process (a stray worker of a killed run can
    never write into the temp file of the run that resumes it)."""
    return f"{path}.tmp.{os.getpid()}"


def save_npy_atomic(path: str, arr: np.ndarray) -> None:
    """np.save under a temp name, fsync, rename."""
    tmp = tmp_name(path)
    with open(tmp, "wb") as fh:
        np.save(fh, arr)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def fsync_dir(path: str) -> None:
    """Make the renames in directory `path` durable (rundir's atomic writes do not fsync the directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
