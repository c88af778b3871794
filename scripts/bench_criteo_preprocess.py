"""Benchmark Criteo preprocessing: throughput (lines/s) and peak memory (RSS).

    .venv/bin/python scripts/bench_criteo_preprocess.py [--lines 3000000] [--files 4]
        [--workers N] [--chunk-lines N] [--gzip] [--dataset 1tb|kaggle] [--keep DIR]

Generates Criteo-format TSV files of `--lines` lines in all (vectorised NumPy, in child
processes; realistic field widths: ~20% empty and a few negative integer features,
8-hex-digit categoricals with some empty), then runs `python -m dlrm.data.criteo
preprocess` on them in a child process and reports lines/s (wall, and per CPU-second,
which does not depend on what else runs on the machine) and the peak RSS of the
preprocessing: the largest single process (`ru_maxrss` from `wait4`, covering the child
and its pool workers) and, sampled from /proc while it runs, the peak of the summed RSS
of the whole process tree.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

_HEXCHARS = np.frombuffer(b"0123456789abcdef", np.uint8)


def _decimal_table(limit: int, width: int) -> np.ndarray:
    """Row v: str(v) right-aligned in `width` bytes, 0 = no byte; then rows for "-1", "-2", ""."""
    v = np.arange(limit, dtype=np.int64)
    nd = np.ones(limit, np.int64)
    for k in range(1, width):
        nd += v >= 10**k
    table = np.zeros((limit + 3, width), np.uint8)
    x = v.copy()
    for k in range(width - 1, -1, -1):
        table[:limit, k] = 48 + x % 10
        x //= 10
    table[:limit][np.arange(width)[None, :] < (width - nd)[:, None]] = 0
    table[limit, -2:] = np.frombuffer(b"-1", np.uint8)
    table[limit + 1, -2:] = np.frombuffer(b"-2", np.uint8)
    return table  # row limit + 2 stays all 0: the empty field


_DEC_LIMIT = 100_000
_DEC_TABLE = None


def generate_lines(n: int, seed: int = 0, dense_width: int = 10) -> bytes:
    """n Criteo TSV lines as bytes, built as a byte matrix (0 = no byte) and compacted.

    Integer features: log-normal counts (a few above 1e5, up to 1e9), ~20% empty, ~3%
    negative (-1/-2).  Categoricals: 8 hex digits of a hashed heavy-tailed id, one feature
    in three ~10% empty.  Label: 1 with probability 0.25.
    """
    global _DEC_TABLE
    if _DEC_TABLE is None:
        _DEC_TABLE = _decimal_table(_DEC_LIMIT, dense_width)
    rng = np.random.default_rng(seed)
    W = dense_width
    row = 2 + 13 * (W + 1) + 26 * 9
    mat = np.empty((n, row), np.uint8)
    mat[:, 0] = np.where(rng.random(n) < 0.25, ord("1"), ord("0"))
    mat[:, 1] = 9
    col = 2
    for j in range(13):
        v = np.minimum(np.floor(rng.lognormal(1.0 + 0.2 * j, 1.8, n)), 10 ** (W - 1) - 1).astype(np.int64)
        u = rng.random(n)
        idx = np.minimum(v, _DEC_LIMIT - 1)
        idx[u < 0.03] = _DEC_LIMIT + (u[u < 0.03] < 0.01)  # "-1" / "-2"
        idx[(u >= 0.03) & (u < 0.23)] = _DEC_LIMIT + 2  # empty
        mat[:, col : col + W] = _DEC_TABLE[idx]
        big = np.flatnonzero((v >= _DEC_LIMIT) & (u >= 0.23))
        for i in big:  # rare: written one by one
            txt = np.frombuffer(str(v[i]).encode(), np.uint8)
            mat[i, col : col + W] = 0
            mat[i, col + W - len(txt) : col + W] = txt
        mat[:, col + W] = 9
        col += W + 1
    for j in range(26):
        card = int(10 ** rng.uniform(1, 7))
        ids = np.minimum(rng.random(n) ** -5.0, card).astype(np.uint64)  # heavy tail, Zipf-like
        h = ((ids * np.uint64(0x9E3779B97F4A7C15) + np.uint64(j)) >> np.uint64(32)).astype(np.uint32)
        nib = (h[:, None] >> (28 - 4 * np.arange(8, dtype=np.uint32))) & 15
        chars = _HEXCHARS[nib]
        if j % 3 == 2:
            chars[rng.random(n) < 0.1] = 0  # empty categorical
        mat[:, col : col + 8] = chars
        mat[:, col + 8] = 9
        col += 9
    mat[:, col - 1] = 10
    flat = mat.reshape(-1)
    return flat[flat != 0].tobytes()


def write_file(path: str, n: int, seed: int = 0, block: int = 1 << 18, use_gzip: bool = False) -> None:
    import gzip

    opener = (lambda p: gzip.open(p, "wb", compresslevel=1)) if use_gzip else (lambda p: open(p, "wb"))
    with opener(path) as f:
        for s in range(0, n, block):
            f.write(generate_lines(min(block, n - s), seed=seed * 100003 + s))


def _tree_rss_kb(root: int) -> int:
    """Summed VmRSS of `root` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss[int(pid)] = int(line.split()[1])
                        break
            children.setdefault(ppid, []).append(int(pid))
        except (OSError, ValueError, IndexError):
            continue
    total, stack = 0, [root]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=3_000_000)
    ap.add_argument("--files", type=int, default=4,
                    help="1tb layout: split the lines over this many day files, the last one held out (min 2)")
    ap.add_argument("--dataset", choices=["1tb", "kaggle"], default="1tb")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--chunk-lines", type=int, default=None)
    ap.add_argument("--frequency-threshold", type=int, default=0)
    ap.add_argument("--gzip", action="store_true")
    ap.add_argument("--keep", default=None, help="work in this directory and keep it (default: a temp dir)")
    ap.add_argument("--_generate", nargs=3, metavar=("PATH", "LINES", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._generate:  # child mode: write one file
        path, n, seed = args._generate
        write_file(path, int(n), seed=int(seed), use_gzip=path.endswith(".gz"))
        return

    work = args.keep or tempfile.mkdtemp(prefix="criteo_bench_")
    raw, out = os.path.join(work, "raw"), os.path.join(work, "out")
    os.makedirs(raw, exist_ok=True)
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    suffix = ".gz" if args.gzip else ""
    if args.dataset == "kaggle":
        jobs = [(os.path.join(raw, "train.txt" + suffix), args.lines, 0)]
        cmd_days: list[str] = []
    else:
        files = max(args.files, 2)  # 1tb needs a held-out last day
        per = [args.lines // files + (i < args.lines % files) for i in range(files)]
        jobs = [(os.path.join(raw, f"day_{i}{suffix}"), n, i) for i, n in enumerate(per)]
        cmd_days = ["--days", *map(str, range(files))]
    # Generate in child processes, so that this process stays small: a child's peak RSS
    # as the kernel reports it includes what it inherited from its parent at fork.
    gens = []
    for path, n, seed in jobs:
        gens.append(subprocess.Popen([sys.executable, os.path.abspath(__file__), "--_generate", path, str(n),
                                      str(seed)]))
        if len(gens) >= (os.cpu_count() or 1):
            if gens.pop(0).wait() != 0:
                sys.exit("generation failed")
    if any(g.wait() != 0 for g in gens):
        sys.exit("generation failed")
    size = sum(os.path.getsize(os.path.join(raw, f)) for f in os.listdir(raw))
    print(f"generated {args.lines:,} lines in {len(jobs)} file(s) ({size / 2**20:,.0f} MiB on disk) "
          f"in {time.time() - t:.1f} s")

    cmd = [sys.executable, "-m", "dlrm.data.criteo", "preprocess", "--raw", raw, "--out", out,
           "--dataset", args.dataset, *cmd_days]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    if args.chunk_lines is not None:
        cmd += ["--chunk-lines", str(args.chunk_lines)]
    if args.frequency_threshold:
        cmd += ["--frequency-threshold", str(args.frequency_threshold)]
    print("$ " + " ".join(cmd), flush=True)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    load0 = os.getloadavg()[0]
    t = time.time()
    proc = subprocess.Popen(cmd, env=env, cwd=repo)
    peak_tree = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_tree
        while not stop.is_set():
            peak_tree = max(peak_tree, _tree_rss_kb(proc.pid))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, usage = os.wait4(proc.pid, 0)  # usage: the child and the workers it waited for
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    th.join()
    secs = time.time() - t
    if proc.returncode != 0:
        sys.exit(f"preprocessing failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    out_size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"preprocessed {args.lines:,} lines in {secs:.1f} s wall (process start and imports included): "
          f"{args.lines / secs:,.0f} lines/s")
    print(f"CPU time {cpu:.1f} s (user+sys, all processes): {args.lines / cpu:,.0f} lines per CPU-second")
    print(f"peak RSS: largest single process {usage.ru_maxrss / 2**10:,.0f} MiB (wait4 rusage of the "
          f"preprocessing process and its workers); whole process tree {peak_tree / 2**10:,.0f} MiB "
          "(summed, sampled from /proc every 50 ms)")
    print(f"output: {out_size / 2**20:,.0f} MiB in {out}")
    print(f"machine: {os.cpu_count()} CPUs, load average {load0:.1f} before -> {os.getloadavg()[0]:.1f} after "
          "(other processes compete for the CPUs when it exceeds the workers)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
