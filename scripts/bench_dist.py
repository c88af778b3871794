"""Section 6 of scripts/bench_throughput.py: 2 ranks against 1 rank.

The benchmark re-launches itself (`--worker`) under
`python -m torch.distributed.run --standalone --nproc_per_node=N`; each rank builds the
model with `dlrm.loop.build` (sharding=table_wise), takes its part of every global batch
with `Trainable.train_batch` and steps with `dlrm.steps.train_step`; windows are fenced
by `dist.barrier()`.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

import bench_common as bc
from bench_step import overrides_for


def worker_main(args) -> int:
    """One rank under torchrun: times steps of the table_wise model, global batch split."""
    import torch.distributed as dist

    from dlrm import distributed
    from dlrm.loop import build
    from dlrm.steps import train_step
    from runner.compose import compose, typed

    bc.quiet()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    info = distributed.init(device.type)
    built = {}
    for b in args.batch_sizes:
        t = build(typed(compose(overrides_for(args, device, b) + ["sharding=table_wise"])), info)
        steps = max(2, args.window_samples // b)
        built[b] = (t, [t.train_batch(i * b, b) for i in range(steps)], steps)
    rates: dict[int, list[float]] = {b: [] for b in args.batch_sizes}
    for r in range(args.rounds + 1):
        for b, (t, batches, steps) in built.items():
            dist.barrier()
            bc.sync(info.device)
            t0 = time.perf_counter()
            for batch in batches:
                train_step(t.model, t.optimizer, batch)
            bc.sync(info.device)
            dist.barrier()
            if r:
                rates[b].append(b * steps / (time.perf_counter() - t0))
    # Profile rank 0 (every rank steps: the collectives need them all).
    b0 = args.batch_sizes[0]
    t, batches, _ = built[b0]
    it = itertools.cycle(batches)

    def step() -> None:
        train_step(t.model, t.optimizer, next(it))

    prof = None
    if info.is_main:
        prof = {**bc.profile_top(step, args.profile_steps, info.device), "batch_size": b0}
    else:
        for _ in range(args.profile_steps):
            step()
    if info.is_main:
        Path(args.worker_out).write_text(json.dumps({
            "world_size": info.world_size, "threads_per_rank": torch.get_num_threads(),
            "samples_per_second": {str(b): bc.summarize(v) for b, v in rates.items()}, "profile_rank0": prof}))
    dist.barrier()
    dist.destroy_process_group()
    return 0


def distributed_section(args, device: torch.device, tmp: Path) -> dict:
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": "fewer than 2 GPUs"}

    def launch(nproc: int, threads: int, tag: str) -> dict:
        out = tmp / f"dist_{tag}.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(bc.SCRIPTS / "bench_throughput.py"), "--worker", "--worker-out", str(out),
               "--device", device.type, "--threads", str(threads), "--rounds", str(args.dist_rounds),
               "--profile-steps", str(args.profile_steps), "--window-samples", str(args.window_samples),
               "--batch-sizes", *map(str, args.batch_sizes)]
        if args.set:
            cmd += ["--set", *args.set]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=bc.REPO, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun --nproc_per_node={nproc} failed:\n{proc.stderr[-3000:]}")
        res = json.loads(out.read_text())
        res["launch_wall_s"] = time.perf_counter() - t0
        return res

    one_threads = args.threads
    two_threads = max(1, args.threads // 2) if device.type == "cpu" else 1
    runs: dict[str, list[dict]] = {"1": [], "2": []}
    for rep in range(args.dist_repeats):  # alternate, so that both see the same load
        runs["1"].append(launch(1, one_threads, f"1_{rep}"))
        runs["2"].append(launch(2, two_threads, f"2_{rep}"))
    out: dict = {"sharding": "table_wise", "threads_per_rank": {"1": one_threads, "2": two_threads},
                 "repeats": args.dist_repeats, "samples_per_second": {}, "ratio_2_vs_1": {}}
    for b in args.batch_sizes:
        key = str(b)
        one = [run["samples_per_second"][key]["median"] for run in runs["1"]]
        two = [run["samples_per_second"][key]["median"] for run in runs["2"]]
        out["samples_per_second"][key] = {"1": bc.summarize(one), "2": bc.summarize(two)}
        out["ratio_2_vs_1"][key] = bc.summarize(bc.ratios(two, one))
    out["profile_rank0"] = {"1": runs["1"][-1]["profile_rank0"], "2": runs["2"][-1]["profile_rank0"]}
    return out
