"""Section 5 of scripts/bench_throughput.py: the fixed cost of a run in a sweep.

`runner.job.launch` (a sweep's job) runs in this process with a wall clock around it;
where the time went comes from the run's own summary.json: `wall_seconds` (the whole of
`dlrm.run.run`), `setup_seconds` (entering training to the loop's first step),
`train_seconds` (the loop, evals excluded) and `eval_seconds`.  Nothing is patched.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import bench_common as bc


def launch_timing(wall_s: float, s: dict) -> dict:
    """The split of one launched run from the wall clock around it and its summary."""
    run_wall, setup, train = float(s["wall_seconds"]), float(s["setup_seconds"]), float(s["train_seconds"])
    before = wall_s - run_wall
    return {
        "num_train_samples": int(s["num_train_samples"]),
        "num_eval_samples": int(s["num_eval_samples"]),
        "wall_s": wall_s,
        "run_wall_s": run_wall,  # dlrm.run.run, the summary's wall_seconds
        "before_train_s": before,  # launch up to dlrm.run.run: lock, decide, validate, process group, config.yaml
        "setup_s": setup,  # source, model, shard, init_tables, checkpoint restore, eval batches
        "to_first_step_s": before + setup,
        "train_s": train,
        "eval_s": float(s["eval_seconds"]),
        "after_train_s": run_wall - setup - train,  # env.json, the evals, Bayes floor, summary
        "overhead_s": wall_s - train,
        "train_samples_per_second": float(s["train_samples_per_second"]),
    }


def timed_launch(overrides: list[str], run_dir: Path) -> dict:
    """One sweep job through runner.job.launch, in this process."""
    from runner.compose import compose
    from runner.job import launch

    cfg = compose(overrides)
    t0 = time.perf_counter()
    status = launch(cfg, run_dir)
    wall = time.perf_counter() - t0
    path = run_dir / "summary.json"
    s = json.loads(path.read_text()) if path.exists() else {}
    if status != "completed":
        raise RuntimeError(f"benchmark run {run_dir} ended {status}: {s.get('error')}")
    return {"status": getattr(status, "value", status), **launch_timing(wall, s)}


def overhead_section(args, device, tmp: Path) -> dict:
    from runner.compose import compose

    batch = int(compose(args.set).trainer.batch_size)
    common = [f"trainer.num_threads={args.threads}", "trainer.progress_bar=false", f"out_root={tmp}",
              f"trainer.device={device.type}", *args.set]
    tiny = common + [f"data.num_train_samples={batch}", f"data.num_eval_samples={args.small_eval}"]
    out: dict = {"batch_size": batch, "small_eval_samples": args.small_eval}
    # A sweep runs its jobs one after another in one process: the first pays for the
    # eval set, later ones find it cached (dlrm.loop._EVAL_CACHE).
    out["in_process_first"] = timed_launch(tiny, tmp / "first")
    out["in_process_warm"] = timed_launch(tiny + ["seed=1"], tmp / "warm")
    if not args.quick:
        default_eval = common + [f"data.num_train_samples={batch}"]
        timed_launch(default_eval, tmp / "default_eval_first")  # fills the eval cache
        out["in_process_warm_default_eval"] = timed_launch(default_eval + ["seed=1"], tmp / "default_eval_warm")
    else:
        out["in_process_warm_default_eval"] = None
    # The loop's own throughput on a longer run (the summary's train_samples_per_second).
    n = batch * (8 if args.quick else 256)
    out["loop_train"] = timed_launch(common + [f"data.num_train_samples={n}",
                                               f"data.num_eval_samples={args.small_eval}"], tmp / "loop")
    out["cold_subprocess"] = None if args.no_cold else cold_start(args, tiny, tmp / "cold")
    return out


def cold_start(args, overrides: list[str], run_dir: Path) -> dict:
    """`python -m dlrm.train` as a user starts it: interpreter, imports and Hydra included."""
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dlrm.train", *overrides, f"hydra.run.dir={run_dir}"],
                          cwd=bc.REPO, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"cold run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    s = json.loads((run_dir / "summary.json").read_text())
    return {
        "process_wall_s": wall,
        "in_run_wall_s": float(s["wall_seconds"]),
        "startup_s": wall - float(s["wall_seconds"]),  # interpreter, imports, Hydra compose, launch
        "train_s": float(s["train_seconds"]),
        "overhead_s": wall - float(s["train_seconds"]),
    }
