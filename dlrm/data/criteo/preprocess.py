"""Criteo TSV -> per-day NumPy arrays, streamed in chunks with bounded memory; resumable.

    python -m dlrm.data.criteo preprocess --raw RAW_DIR --out OUT_DIR --dataset kaggle|1tb

One task per day (`process_day`): a 1TB day file, or one seventh of Kaggle's `train.txt`
(found by seeking to a checkpoint of the line-count pass, `kaggle_tasks`).  The layout
and conventions are in `format.py`; the parser in `parse.py`; the pool in `pool.py`;
what a rerun trusts (markers, and the identity of their source file) in `resume.py`.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import rundir

from dlrm.data.criteo import parse
from dlrm.data.criteo.errors import CriteoPreprocessError, MalformedLineError
from dlrm.data.criteo.format import (ARGS_FILE, CAT_FEATURE_COUNT, DATASETS, DEFAULT_NUM_EMBEDDINGS, DOWNLOAD_URLS,
                                     FIELD_NAMES, FORMAT_VERSION, FREQ_COUNTS_FILE, INT_FEATURE_COUNT, KAGGLE_DAYS,
                                     KAGGLE_SPLIT_FILE, METADATA_FILE, TB_DAYS, day_counts_path, day_files)
from dlrm.data.criteo.npy import NpyStreamWriter, fsync_dir, tmp_name
from dlrm.data.criteo.parse import BAD_KINDS, describe_bad_line
from dlrm.data.criteo.pool import log, report, run_tasks, tune_malloc
from dlrm.data.criteo.reader import count_lines_with_checkpoints, find_raw_file, iter_line_chunks
from dlrm.data.criteo.resume import check_unchanged, identity_change, read_marker, source_identity, write_marker
from dlrm.data.criteo.threshold import MAX_FREQ_TABLE_BYTES, apply_frequency_threshold


@dataclass
class DayTask:
    day: int
    path: str  # raw TSV (plain or gzip)
    byte_offset: int = 0
    skip_lines: int = 0
    max_lines: Optional[int] = None  # None: to end of file
    first_lineno: int = 1  # 1-based line number in `path` of the task's first line
    source: Optional[dict] = None  # resume.source_identity(path) when the task was planned


def process_day(task: DayTask, out_dir: str, sizes: Sequence[int], chunk_lines: int,
                skip_bad_lines: bool, sparse_dtype: str) -> dict:
    """Parse one day's lines into its three .npy files (temp names, then rename, then marker)."""
    t0 = time.time()
    tune_malloc()
    sizes_arr = np.asarray(sizes, np.int64)
    files = day_files(out_dir, task.day)
    writers = {
        "dense": NpyStreamWriter(tmp_name(files["dense"]), np.float32, INT_FEATURE_COUNT),
        "sparse": NpyStreamWriter(tmp_name(files["sparse"]), np.dtype(sparse_dtype), CAT_FEATURE_COUNT),
        "labels": NpyStreamWriter(tmp_name(files["labels"]), np.int32, 1),
    }
    bad_counts = {k: 0 for k in BAD_KINDS}
    bad_examples: list[str] = []
    lineno = task.first_lineno
    lines = 0
    try:
        for buf, cnt in iter_line_chunks(task.path, chunk_lines, task.byte_offset, task.skip_lines,
                                         task.max_lines):
            chunk = parse.parse_chunk(buf, sizes_arr, np.dtype(sparse_dtype))
            del buf
            for b in chunk.bad:
                msg = describe_bad_line(task.path, lineno + b.index, b)
                if not skip_bad_lines:
                    raise MalformedLineError(
                        msg + "\n(pass --skip-bad-lines to skip and count malformed lines instead)",
                        task.path, lineno + b.index, "field_count" if b.field < 0 else FIELD_NAMES[b.field])
                bad_counts[b.kind] += 1
                if len(bad_examples) < 5:
                    bad_examples.append(msg)
            writers["dense"].append(chunk.dense)
            writers["sparse"].append(chunk.sparse)
            writers["labels"].append(chunk.labels)
            lineno += cnt
            lines += cnt
            report(cnt)
        check_unchanged(task.source, task.path, f"day {task.day} was being read")
        if task.max_lines is not None and lines != task.max_lines:
            raise CriteoPreprocessError(
                f"{task.path}: expected {task.max_lines} lines for day {task.day}, read {lines} "
                "(did the file change since the line count? delete "
                f"{KAGGLE_SPLIT_FILE} in the output directory to recount)")
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for part, w in writers.items():
        os.replace(w.path, files[part])
    rows = writers["labels"].rows
    marker = {
        "day": task.day, "rows": rows, "source": os.path.abspath(task.path), "source_identity": task.source,
        "source_first_line": task.first_lineno, "source_lines": lines,
        "bad_lines": bad_counts, "bad_line_examples": bad_examples,
        "sparse_dtype": sparse_dtype, "frequency_threshold_applied": 0,
        "seconds": round(time.time() - t0, 3),
    }
    fsync_dir(out_dir)
    write_marker(out_dir, task.day, marker)
    return marker


def kaggle_tasks(raw_path: str, out_dir: str) -> list[DayTask]:
    """Split train.txt into 7 "days" of (nearly) equal line counts, in file order."""
    identity = source_identity(raw_path)
    cache_path = os.path.join(out_dir, KAGGLE_SPLIT_FILE)
    cached = None
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            cached = json.load(f)
        changed = identity_change(cached.get("source_identity"), identity)
        if changed:
            log(f"{KAGGLE_SPLIT_FILE} does not fit: {changed}; counting the lines again")
            cached = None
    if cached is None:
        total, checkpoints = count_lines_with_checkpoints(raw_path)
        check_unchanged(identity, raw_path, "its lines were counted")
        per, extra = divmod(total, KAGGLE_DAYS)
        counts = [per + (1 if d < extra else 0) for d in range(KAGGLE_DAYS)]
        starts = np.cumsum([0] + counts[:-1]).tolist()
        cp_lines = np.array([c[0] for c in checkpoints])
        days = []
        for d in range(KAGGLE_DAYS):
            i = int(np.searchsorted(cp_lines, starts[d], side="right") - 1)
            cp_line, cp_off = checkpoints[i]
            days.append({"day": d, "start_line": int(starts[d]), "lines": int(counts[d]),
                         "byte_offset": int(cp_off), "skip_lines": int(starts[d] - cp_line)})
        cached = {"source_identity": identity, "total_lines": int(total), "days": days}
        rundir.atomic_write_json(cache_path, cached)
    if cached["total_lines"] < 2 * KAGGLE_DAYS:
        raise CriteoPreprocessError(f"{raw_path}: only {cached['total_lines']} lines; need at least "
                                    f"{2 * KAGGLE_DAYS} to split into {KAGGLE_DAYS} days")
    return [DayTask(day=d["day"], path=raw_path, byte_offset=d["byte_offset"], skip_lines=d["skip_lines"],
                    max_lines=d["lines"], first_lineno=d["start_line"] + 1, source=identity)
            for d in cached["days"]]


def _finished_days(out_dir: str, tasks: list[DayTask], train_days: list[int], threshold: int) -> dict:
    """Day -> its marker if the day is finished from the same source file, else None (redo it)."""
    done = {}
    for t in tasks:
        marker = read_marker(out_dir, t.day)
        changed = marker is not None and identity_change(marker.get("source_identity"), t.source)
        if changed:
            log(f"day {t.day}: redoing it: {changed}")
            marker = None
        elif marker is not None:
            log(f"day {t.day}: finished earlier ({marker['rows']:,} rows), skipped")
        done[t.day] = marker
    redo = {d for d, m in done.items() if m is None}
    if threshold > 0 and redo & set(train_days):
        # The id counts cover every training day: earlier counts, and days remapped with them, are stale.
        for d, m in done.items():
            if m is not None and m.get("frequency_threshold_applied"):
                log(f"day {d}: redoing it: its ids were mapped with counts of training day(s) "
                    f"{sorted(redo & set(train_days))} that are redone")
                done[d] = None
        for path in [os.path.join(out_dir, FREQ_COUNTS_FILE)] + [day_counts_path(out_dir, d) for d in redo]:
            if os.path.exists(path):
                os.remove(path)
    return done


def resolve_sizes(dataset: str, num_embeddings_per_feature: Optional[Sequence[int]],
                  max_ind_range: Optional[int]) -> list[int]:
    sizes = list(num_embeddings_per_feature) if num_embeddings_per_feature else list(DEFAULT_NUM_EMBEDDINGS[dataset])
    if len(sizes) != CAT_FEATURE_COUNT:
        raise CriteoPreprocessError(f"--num-embeddings-per-feature needs {CAT_FEATURE_COUNT} sizes, got {len(sizes)}")
    if max_ind_range:
        sizes = [min(int(s), int(max_ind_range)) for s in sizes]
    if any(int(s) < 1 or int(s) > 1 << 32 for s in sizes):
        raise CriteoPreprocessError(f"table sizes must lie in [1, 2**32], got {sizes}")
    return [int(s) for s in sizes]


def preprocess(raw_dir: str, out_dir: str, dataset: str, *, chunk_lines: int = 1 << 14,
               workers: Optional[int] = None, skip_bad_lines: bool = False,
               num_embeddings_per_feature: Optional[Sequence[int]] = None,
               max_ind_range: Optional[int] = None, frequency_threshold: int = 0,
               days: Optional[Sequence[int]] = None) -> dict:
    """Preprocess a raw Criteo directory into `out_dir`; resumable.  Returns the metadata."""
    t0 = time.time()
    dataset = DATASETS.get(dataset, dataset)
    if dataset not in ("kaggle", "1tb"):
        raise CriteoPreprocessError(f"--dataset must be kaggle or 1tb, got {dataset!r}")
    if chunk_lines < 1:
        raise CriteoPreprocessError("--chunk-lines must be >= 1")
    if not 0 <= frequency_threshold <= 255:
        raise CriteoPreprocessError("--frequency-threshold must lie in [0, 255] (0 = off)")
    sizes = resolve_sizes(dataset, num_embeddings_per_feature, max_ind_range)
    if frequency_threshold > 0 and sum(sizes) > MAX_FREQ_TABLE_BYTES:
        raise CriteoPreprocessError(
            f"--frequency-threshold counts every (feature, id) in one byte each: sum of the table sizes "
            f"= {sum(sizes):,} bytes, over the {MAX_FREQ_TABLE_BYTES >> 20:,} MiB limit that keeps memory "
            "bounded; lower --max-ind-range or --num-embeddings-per-feature")
    sparse_dtype = "int32" if max(sizes) <= 2**31 else "int64"
    if not os.path.isdir(raw_dir):
        raise CriteoPreprocessError(f"raw directory {raw_dir!r} does not exist; download from {DOWNLOAD_URLS[dataset]}")

    # Which raw files make which days.
    if dataset == "kaggle":
        if days is not None:
            raise CriteoPreprocessError("--days applies to --dataset 1tb only (Kaggle is always 7 days)")
        raw = find_raw_file(raw_dir, "train.txt")
        if raw is None:
            raise CriteoPreprocessError(
                f"{raw_dir} holds no train.txt (or train.txt.gz); download the Kaggle Display Advertising "
                f"Challenge data from {DOWNLOAD_URLS['kaggle']} and extract train.txt there")
        day_list = list(range(KAGGLE_DAYS))
    else:
        day_list = sorted(set(int(d) for d in days)) if days is not None else list(range(TB_DAYS))
        if len(day_list) < 2 or any(not 0 <= d < TB_DAYS for d in day_list):
            raise CriteoPreprocessError(f"--days needs at least 2 distinct days in 0..{TB_DAYS - 1} "
                                        "(the last one is held out for eval)")
        raws = {d: find_raw_file(raw_dir, f"day_{d}") for d in day_list}
        missing = [f"day_{d}" for d, p in raws.items() if p is None]
        if missing:
            raise CriteoPreprocessError(
                f"{raw_dir} lacks {', '.join(missing)} (plain or .gz); download them from "
                f"{DOWNLOAD_URLS['1tb']}, or pick the days present with --days")

    os.makedirs(out_dir, exist_ok=True)
    args_record = {
        "format_version": FORMAT_VERSION, "dataset": dataset, "days": day_list,
        "num_embeddings_per_feature": sizes, "frequency_threshold": frequency_threshold,
        "sparse_dtype": sparse_dtype,
    }
    args_path = os.path.join(out_dir, ARGS_FILE)
    if os.path.exists(args_path):
        with open(args_path) as f:
            previous = json.load(f)
        if previous != args_record:
            diff = {k: (previous.get(k), v) for k, v in args_record.items() if previous.get(k) != v}
            raise CriteoPreprocessError(
                f"{out_dir} holds output of a preprocessing run with other settings "
                f"(setting: (before, now)): {diff}; use another --out directory or delete this one")
    else:
        rundir.atomic_write_json(args_path, args_record)

    for name in os.listdir(out_dir):  # temp files of a killed run: never finished output
        if ".tmp" in name:
            os.remove(os.path.join(out_dir, name))
    tasks = (kaggle_tasks(raw, out_dir) if dataset == "kaggle"
             else [DayTask(day=d, path=raws[d], source=source_identity(raws[d])) for d in day_list])
    train_days, eval_day = day_list[:-1], day_list[-1]
    done = _finished_days(out_dir, tasks, train_days, frequency_threshold)
    todo = [t for t in tasks if done[t.day] is None]
    if workers is None:
        workers = min(len(tasks), os.cpu_count() or 1, 8)
    total = sum(t.max_lines for t in todo) if dataset == "kaggle" else None
    t_parse = time.time()
    lines = 0
    if todo and os.path.exists(os.path.join(out_dir, METADATA_FILE)):
        os.remove(os.path.join(out_dir, METADATA_FILE))  # it says "complete"; it is again when rewritten
    if todo:
        log(f"parsing {len(todo)} day(s) with {max(1, min(workers, len(todo)))} worker(s), "
            f"{chunk_lines:,} lines per chunk")
        results = run_tasks(process_day, [(t, out_dir, sizes, chunk_lines, skip_bad_lines, sparse_dtype)
                                          for t in todo], workers, "parsing", total)
        for r in results:
            done[r["day"]] = r
            lines += r["source_lines"]
    parse_seconds = time.time() - t_parse

    if frequency_threshold > 0:
        apply_frequency_threshold(out_dir, day_list, train_days, done, sizes, frequency_threshold,
                                  chunk_lines, workers)

    bad_total = {k: sum(done[d]["bad_lines"][k] for d in day_list) for k in BAD_KINDS}
    rows_per_day = {str(d): done[d]["rows"] for d in day_list}
    eval_rows = done[eval_day]["rows"]
    metadata = {
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "days": day_list,
        "train_days": train_days,
        "eval_day": eval_day,
        "rows_per_day": rows_per_day,
        "num_train_rows": int(sum(done[d]["rows"] for d in train_days)),
        "num_eval_rows": int((eval_rows + 1) // 2),  # TorchRec's "val": first ceil(n/2) rows
        "num_test_rows": int(eval_rows // 2),
        "num_dense_features": INT_FEATURE_COUNT,
        "num_embeddings_per_feature": sizes,
        "frequency_threshold": frequency_threshold,
        "sparse_dtype": sparse_dtype,
        "bad_lines_skipped": bad_total,
        "conventions": {
            "dense": "log(1 + max(x, 0)), empty -> 0, float32",
            "sparse": "int(hex, 16) % num_embeddings_per_feature[f]; empty -> 0"
                      + (f"; ids seen < {frequency_threshold} times in train_days -> 0"
                         if frequency_threshold else ""),
            "labels": "int32 [n, 1]",
            "eval": "first ceil(n/2) rows of eval_day (TorchRec 'val'); the rest is 'test'",
        },
    }
    rundir.atomic_write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    fsync_dir(out_dir)
    secs = time.time() - t0
    if lines:
        log(f"parsed {lines:,} lines in {parse_seconds:.1f} s ({lines / max(parse_seconds, 1e-9):,.0f} lines/s)")
    if any(bad_total.values()):
        log(f"skipped malformed lines: {bad_total} (total {sum(bad_total.values()):,}); examples:")
        for d in day_list:
            for ex in done[d].get("bad_line_examples", [])[:2]:
                log("  " + ex)
    log(f"done in {secs:.1f} s: {metadata['num_train_rows']:,} training rows in days "
        f"{train_days[0]}..{train_days[-1]}, "
        f"eval = first {metadata['num_eval_rows']:,} rows of day {eval_day}; output in {out_dir}")
    return metadata
