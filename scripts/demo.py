"""The main job (`make demo`): the demo sweep on the planted world, then its analysis.

    .venv/bin/python scripts/demo.py [extra Hydra overrides, e.g. out_root=/tmp/runs]

Re-running it skips every completed run (the sweep finds its run dirs by name) and
re-analyses.  `data.world_seed=K` draws other worlds (the same design, other teachers): their
runs go to a sweep of their own, `demo_world_K`, so that each report is of one draw.  Exit
status: non-zero when a run failed or the analysis could not run.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def value_of(argv: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"{key}=")), None)


def main(argv: list[str]) -> int:
    world_seed = value_of(argv, "data.world_seed")
    if world_seed is not None and value_of(argv, "sweep_name") is None:
        argv = [*argv, f"sweep_name=demo_world_{world_seed}"]
    out_root = value_of(argv, "out_root") or "runs"
    sweep_dir = Path(out_root) / (value_of(argv, "sweep_name") or "demo")
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
