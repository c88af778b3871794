"""The frequency threshold: ids seen fewer than T times in the training days map to 0.

One counting task per training day (a saturating uint8 counter per (feature, id)),
merged into `freq_counts.npy`, then one remapping task per day.  Resumable: the merged
counts and each day's `frequency_threshold_applied` (in its marker) say what is done.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from dlrm.data.criteo.format import CAT_FEATURE_COUNT, FREQ_COUNTS_FILE, day_counts_path, day_files
from dlrm.data.criteo.npy import NpyStreamWriter, save_npy_atomic, tmp_name
from dlrm.data.criteo.pool import report, run_tasks, tune_malloc
from dlrm.data.criteo.resume import read_marker, write_marker

MAX_FREQ_TABLE_BYTES = 1 << 30  # sum(sizes) one-byte counters


def feature_offsets(sizes: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, np.int64))])


def count_day(out_dir: str, day: int, sizes: Sequence[int], threshold: int, chunk_rows: int) -> int:
    """Write day_{day}_counts.npy: uint8 [sum(sizes)], per (feature, id) min(count, T).

    Memory: sum(sizes) bytes (~204 MB for the 1TB default sizes, ~45 MB for Kaggle) plus
    a chunk of rows and its sort; the sparse file is read through mmap.
    """
    tune_malloc()
    offs = feature_offsets(sizes)
    counts = np.zeros(int(offs[-1]), np.uint8)
    sp = np.load(day_files(out_dir, day)["sparse"], mmap_mode="r")
    for s in range(0, len(sp), chunk_rows):
        block = np.array(sp[s : s + chunk_rows])
        for f in range(CAT_FEATURE_COUNT):
            ids = block[:, f]
            size = int(sizes[f])
            view = counts[offs[f] : offs[f + 1]]
            if size <= 4 * len(ids):
                c = np.bincount(ids, minlength=size)
                view[:] = np.minimum(view + np.minimum(c, threshold), threshold)
            else:
                u, c = np.unique(ids, return_counts=True)
                view[u] = np.minimum(view[u] + np.minimum(c, threshold), threshold)
        report(len(block))
    del sp
    save_npy_atomic(day_counts_path(out_dir, day), counts)
    return day


def apply_threshold_day(out_dir: str, day: int, sizes: Sequence[int], threshold: int, chunk_rows: int) -> int:
    """Rewrite day_{day}_sparse.npy with ids seen < T times in training -> 0. Idempotent."""
    counts = np.load(os.path.join(out_dir, FREQ_COUNTS_FILE), mmap_mode="r")
    offs = feature_offsets(sizes)[:-1]
    files = day_files(out_dir, day)
    sp = np.load(files["sparse"], mmap_mode="r")
    w = NpyStreamWriter(tmp_name(files["sparse"]), sp.dtype, CAT_FEATURE_COUNT)
    try:
        for s in range(0, len(sp), chunk_rows):
            block = np.array(sp[s : s + chunk_rows])
            rare = counts[(block.astype(np.int64) + offs)] < threshold
            block[rare] = 0
            w.append(block)
            report(len(block))
        w.close()
    except BaseException:
        w.abort()
        raise
    del sp
    os.replace(w.path, files["sparse"])
    marker = read_marker(out_dir, day)
    assert marker is not None
    marker["frequency_threshold_applied"] = threshold
    write_marker(out_dir, day, marker)
    return day


def apply_frequency_threshold(out_dir: str, day_list: list[int], train_days: list[int], done: dict,
                              sizes: list[int], threshold: int, chunk_lines: int, workers: int) -> None:
    """Count ids over the training days (one task per day), merge, then remap every day."""
    counts_path = os.path.join(out_dir, FREQ_COUNTS_FILE)
    count_rows = 1 << 20
    if not os.path.exists(counts_path):
        todo = [d for d in train_days if not os.path.exists(day_counts_path(out_dir, d))]
        if todo:
            # each counting worker holds sum(sizes) bytes plus a chunk; keep them under ~3 GiB
            per_worker = sum(sizes) + count_rows * CAT_FEATURE_COUNT * 16
            n = max(1, min(workers, (3 << 30) // per_worker))
            run_tasks(count_day, [(out_dir, d, sizes, threshold, count_rows) for d in todo], n,
                      f"counting ids for frequency threshold {threshold}",
                      sum(done[d]["rows"] for d in todo), unit="rows")
        counts = np.zeros(sum(sizes), np.uint8)
        for d in train_days:
            c = np.load(day_counts_path(out_dir, d), mmap_mode="r")
            np.minimum(counts.astype(np.uint16) + c, threshold, out=counts, casting="unsafe")
            del c
        save_npy_atomic(counts_path, counts)
        del counts
        for d in train_days:
            os.remove(day_counts_path(out_dir, d))
    pending = [d for d in day_list if done[d].get("frequency_threshold_applied") != threshold]
    if pending:
        run_tasks(apply_threshold_day, [(out_dir, d, sizes, threshold, max(chunk_lines, 1 << 16))
                                        for d in pending], workers,
                  f"mapping ids seen < {threshold} times to 0", sum(done[d]["rows"] for d in pending),
                  unit="rows")
        for d in pending:
            done[d] = read_marker(out_dir, d)
