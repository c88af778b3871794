"""Benchmark: the full analysis of 200 synthetic runs, 1000 bootstrap resamples per fit.

    .venv/bin/python scripts/bench_analysis.py [--runs-dir DIR] [--bootstrap 1000] [--no-plots]

Writes 200 completed run dirs (the demo sweep of tests/analysis/synth_rundirs.py for two
architectures, four seeds) to a temporary directory, then times `python -m analysis`
end to end in this process: loading, every fit and bootstrap, extrapolation checks, the
joint law, plots and report.  Target: < 10 s on a 2-core machine.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as analysis/__main__.py does

import argparse  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "analysis"))

from synth_rundirs import demo_grid, write_sweep  # noqa: E402

from analysis.__main__ import main as analyze_main  # noqa: E402

TARGET_SECONDS = 10.0


def bench_grid():
    """25 grid points per architecture x 2 architectures x 4 seeds = 200 runs: data
    sizes 2^13..2^20 at two model sizes, 6 embedding dims and 5 MLP widths at 2^20."""
    return demo_grid(embedding_dims=(8, 16, 32, 64, 128, 256), mlp_widths=(64, 128, 256, 512, 1024))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs-dir", type=Path, default=None, help="keep the run dirs here")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or Path(tmp) / "sweep"
        summaries = write_sweep(runs_dir, seeds=(0, 1, 2, 3), grid=bench_grid())
        argv = [str(runs_dir), "--out", str(Path(tmp) / "out"), "--bootstrap", str(args.bootstrap),
                "--target-ne", "0.75"] + (["--no-plots"] if args.no_plots else [])
        t0, cpu0 = time.perf_counter(), time.process_time()
        rc = analyze_main(argv)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    verdict = "OK" if seconds < TARGET_SECONDS else "SLOWER THAN TARGET"
    # CPU seconds too: on a shared machine the wall time also counts other processes.
    print(f"bench_analysis: {len(summaries)} runs, {args.bootstrap} bootstrap resamples per fit: "
          f"{seconds:.2f} s wall, {cpu_seconds:.2f} s CPU "
          f"(target < {TARGET_SECONDS:.0f} s on 2 cores: {verdict})")
    return rc


if __name__ == "__main__":
    sys.exit(main())
