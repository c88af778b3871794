"""Benchmark: the full analysis of 200 synthetic run dirs, 1000 bootstrap resamples per fit.

    .venv/bin/python scripts/bench_analysis.py [--runs-dir DIR] [--bootstrap 1000] [--no-plots]
                                               [--shape schemes|v1] [--jobs J] [--repeat 3]

The default shape (`--shape schemes`): 200 run dirs in 25 series of 8 data sizes -- one base
model and each scaling scheme of the paper (embedding dim, bottom-MLP width, top-MLP width)
over 8 more values sharing it, every config at 8 data sizes 2^13..2^20, one seed, contract
version 2 (tests/synthetic_runs.py).  `--shape v1`: run dirs of contract version 1, a grid
of embedding dims and MLP widths for two architectures, four seeds.  Times `python -m
analysis` end to end in this process: loading, every fit and bootstrap, the rolling
extrapolation checks, the joint laws, plots and report, `--repeat` times over the same run
dirs (the verdict is on the median).  Target: < 10 s on a 2-core machine.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as analysis/__main__.py does

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# The repo's packages first; then tests/, because the synthetic run-dir writer
# (tests/synthetic_runs.py) is a test fixture and lives with the tests.
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from analysis.__main__ import main as analyze_main  # noqa: E402
from synthetic_runs import Config, SchemeWorld, demo_grid, write_sweep, write_v2_grid_sweep  # noqa: E402

TARGET_SECONDS = 10.0
SIZES = [2 ** e for e in range(13, 21)]


def scheme_configs() -> list[Config]:
    """The base model plus 8 values of each scheme around it: 25 configs."""
    base = Config(emb=16, w_bottom=64, w_top=64)
    configs = [base]
    configs += [Config(emb=e, w_bottom=64, w_top=64) for e in (2, 4, 6, 8, 12, 24, 32, 48)]
    configs += [Config(emb=16, w_bottom=w, w_top=64) for w in (8, 12, 16, 24, 32, 96, 128, 256)]
    configs += [Config(emb=16, w_bottom=64, w_top=w) for w in (8, 12, 16, 24, 32, 96, 128, 256)]
    return configs


def write_shape(runs_dir: Path, shape: str) -> int:
    if shape == "v1":
        grid = demo_grid(embedding_dims=(8, 16, 32, 64, 128, 256), mlp_widths=(64, 128, 256, 512, 1024))
        return len(write_sweep(runs_dir, seeds=(0, 1, 2, 3), grid=grid))
    return len(write_v2_grid_sweep(runs_dir, SchemeWorld(), configs=scheme_configs(), sizes=SIZES))


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the fit workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs-dir", type=Path, default=None, help="keep the run dirs here")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--shape", choices=("schemes", "v1"), default="schemes")
    p.add_argument("--jobs", type=int, default=None, help="processes (default: every core)")
    p.add_argument("--repeat", type=int, default=3,
                   help="analyses of the same run dirs; the verdict is on the median (shared machines are noisy)")
    args = p.parse_args()
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or Path(tmp) / "sweep"
        n_runs = write_shape(runs_dir, args.shape)
        out = Path(tmp) / "out"
        argv = [str(runs_dir), "--out", str(out), "--bootstrap", str(args.bootstrap),
                "--target-ne", "0.75"] + (["--no-plots"] if args.no_plots else []) \
            + (["--jobs", str(args.jobs)] if args.jobs else [])
        walls, cpus = [], []
        for _ in range(args.repeat):
            t0, cpu0 = time.perf_counter(), _cpu()
            rc = analyze_main(argv)
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu() - cpu0)
            if rc != 0:
                break
        seconds, cpu_seconds = statistics.median(walls), statistics.median(cpus)
        fits = json.loads((out / "fits.json").read_text()) if rc == 0 else []
        data_series = [f for f in fits if f["axis"] == "data"]
    verdict = "OK" if seconds < TARGET_SECONDS else "SLOWER THAN TARGET"
    # CPU seconds too: on a shared machine the wall time also counts other processes.
    print(f"bench_analysis [{args.shape}]: {n_runs} runs, {len(data_series)} data series of "
          f"{max((f['n_distinct_x'] for f in data_series), default=0)} sizes, {len(fits)} fitted series "
          f"({sum(f['determined'] for f in fits)} determined), {args.bootstrap} bootstrap resamples per fit: "
          f"{seconds:.2f} s wall, {cpu_seconds:.2f} s CPU in all processes "
          f"(median of {len(walls)}; wall {min(walls):.2f}-{max(walls):.2f} s) "
          f"(target < {TARGET_SECONDS:.0f} s on 2 cores: {verdict})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
