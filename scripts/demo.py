"""The main job (`make demo`): the demo sweep on the planted world, then its analysis.

    .venv/bin/python scripts/demo.py [extra Hydra overrides, e.g. out_root=/tmp/runs]

Re-running it skips every completed run (the sweep finds its run dirs by name) and
re-analyses.  Exit status: non-zero when a run failed or the analysis could not run.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str]) -> int:
    out_root = next((a.split("=", 1)[1] for a in argv if a.startswith("out_root=")), "runs")
    sweep_dir = Path(out_root) / "demo"
    t0 = time.perf_counter()
    sweep = subprocess.run([sys.executable, "-m", "dlrm.train", "sweep=demo", *argv], cwd=REPO)
    t_sweep = time.perf_counter() - t0
    analysis_dir = sweep_dir / "analysis"
    analysis = subprocess.run([sys.executable, "-m", "analysis", str(sweep_dir), "--out", str(analysis_dir)], cwd=REPO)
    total = time.perf_counter() - t0
    print(f"\ndemo: sweep {t_sweep:.0f} s, sweep + analysis {total:.0f} s")
    print(f"run dirs: {REPO / sweep_dir if not sweep_dir.is_absolute() else sweep_dir}")
    if analysis.returncode == 0:
        report = analysis_dir / "report.md"
        print(f"report:   {REPO / report if not report.is_absolute() else report}")
    return sweep.returncode or analysis.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
