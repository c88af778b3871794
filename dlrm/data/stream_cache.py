"""A shared on-disk cache of a generated training stream: the runs of a sweep that train on one
(world, seed) stream generate it once.

The planted world's samples are a pure function of their global index, so a block of the
stream is the same bytes whoever generates it.  The first run to need a block generates it
and writes it as one `.npy` file (a temporary name, then an atomic rename: two processes
that race write the same bytes, and a reader never sees half a file); every later run, in
this process or another, maps the file instead of generating.  A block read back is
bit-identical to generating afresh (tests/training/test_stream_cache.py).

Blocks live under `<dir>/<stream_id>/`, where the stream id names the world's data_id and
the run seed, so a changed world never reads another world's samples.  The cache is bounded:
a process writes no block once the directory holds `max_bytes` (it then generates, as with
no cache); two processes that write at once can each overshoot by the blocks they have in
flight, a few MiB.  Deleting the directory is always safe.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dlrm.data.source import Arrays

# Samples per block file: ~1.1 MiB of the default world.  Generating in chunks of this size
# is as fast per sample as in batches (larger chunks' temporaries leave the cache: 16384 is
# 0.7x as fast), and a file's open and map are small against its samples.
BLOCK_SAMPLES = 4096
_FORMAT = "v1"  # the record layout below; a new layout is a new directory


def _record_dtype(num_dense: int, num_sparse: int, sparse_dtype: np.dtype) -> np.dtype:
    return np.dtype([("dense", np.float32, (num_dense,)), ("sparse", sparse_dtype, (num_sparse,)),
                     ("labels", np.float32)])


def directory_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 if it does not exist)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except FileNotFoundError:  # renamed or removed by another process meanwhile
                pass
    return total


class CachedStream:
    """A DataSource whose `train_arrays` reads `source`'s stream through the block cache;
    everything else (the eval set, the floors, data_id) is the source's own."""

    def __init__(self, source, cache_dir: str | os.PathLike, max_bytes: int, block_samples: int = BLOCK_SAMPLES):
        self.source = source
        self.root = Path(cache_dir)
        self.dir = self.root / _FORMAT / source.stream_id
        self.block_samples = int(block_samples)
        self.max_bytes = int(max_bytes)
        self._written_bytes = directory_bytes(self.root)  # this process's view of the cache's size
        cards = max(source.cardinalities) if len(source.cardinalities) else 1
        # ids are stored narrow where they fit (half the bytes), widened back on read
        self._sparse_dtype = np.dtype(np.int32 if cards <= np.iinfo(np.int32).max else np.int64)
        self._dtype = _record_dtype(source.num_dense_features, len(source.cardinalities), self._sparse_dtype)
        self._block: tuple[int, np.ndarray] | None = None  # the block last read: a batch rarely spans two
        self.blocks_generated = 0  # blocks this process generated (written or not)
        self.blocks_read = 0  # blocks read from files (this object's own included)

    def __getattr__(self, name: str):
        return getattr(self.source, name)

    # ------------------------------------------------------------------ reading
    def train_arrays(self, start: int, stop: int) -> Arrays:
        if not 0 <= start <= stop:
            raise ValueError(f"train slice [{start}, {stop}) is not a slice of the stream")
        limit = self.source.max_train_samples
        if limit is not None and stop > limit or start == stop:
            return self.source.train_arrays(start, stop)  # the source's own error names the range
        parts = []
        pos = start
        while pos < stop:
            k = pos // self.block_samples
            rec = self._records(k)
            lo = pos - k * self.block_samples
            hi = min(stop - k * self.block_samples, len(rec))
            parts.append(rec[lo:hi])
            pos = k * self.block_samples + hi
        rec = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return Arrays(dense=np.ascontiguousarray(rec["dense"]), sparse=rec["sparse"].astype(np.int64),
                      labels=np.ascontiguousarray(rec["labels"]))

    def _records(self, k: int) -> np.ndarray:
        if self._block is not None and self._block[0] == k:
            return self._block[1]
        path = self.dir / f"{k:07d}.npy"
        try:
            rec = np.load(path, mmap_mode="r")
        except (OSError, ValueError):  # not written yet, or unreadable: generated (and written) afresh
            rec = None
        if rec is None or rec.dtype != self._dtype or len(rec) != self._block_length(k):
            rec = self._generate(k, path)
        else:
            self.blocks_read += 1
        self._block = (k, rec)
        return rec

    # ------------------------------------------------------------------ writing
    def _block_length(self, k: int) -> int:
        limit = self.source.max_train_samples
        end = (k + 1) * self.block_samples
        return (end if limit is None else min(end, limit)) - k * self.block_samples

    def _generate(self, k: int, path: Path) -> np.ndarray:
        lo = k * self.block_samples
        arrays = self.source.train_arrays(lo, lo + self._block_length(k))
        rec = np.empty(len(arrays), dtype=self._dtype)
        rec["dense"], rec["sparse"], rec["labels"] = arrays.dense, arrays.sparse, arrays.labels
        self.blocks_generated += 1
        if self._written_bytes + rec.nbytes <= self.max_bytes:
            self._write(path, rec)
        return rec

    def _write(self, path: Path, rec: np.ndarray) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                np.save(f, rec)
            os.replace(tmp, path)
            self._written_bytes += rec.nbytes
        except OSError:  # a full or read-only disk: the run goes on generating, as with no cache
            self.max_bytes = 0
            tmp.unlink(missing_ok=True)
