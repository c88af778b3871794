"""Training-throughput benchmark of the harness (docs/PERFORMANCE.md).

    .venv/bin/python scripts/bench_throughput.py [--quick] [--json OUT.json] [--threads N]
        [--device cpu|cuda] [--batch-sizes 512 2048] [--rounds N] [--no-dist] [--no-cold]

Measures, in one run:
 1. the harness's training step (forward, backward with the fused embedding optimizer,
    dense optimizer step, zero_grad) on the model built exactly as dlrm/loop.py builds it,
    over pre-built batches, at the configured global batch (512) and 2048; also the same
    model with sharding=table_wise, through TorchRec's TrainPipelineSparseDist, and at
    another thread count;
 2. a plain-PyTorch DLRM of the same shapes (nn.EmbeddingBag per table, sparse grads,
    torch.optim.Adagrad) as the baseline: ratio harness / baseline;
 3. the synthetic world's generation throughput (train_arrays in chunks of the batch and
    of 65536, and with the BatchMaker) and its ratio to the training step;
 4. end-to-end throughput with generation in the loop (dlrm.batches.prefetch + BatchMaker
    as dlrm/loop.py does) against the pure step, and dlrm.loop.train's own figure;
 5. the fixed per-run overhead of a sweep job (dlrm.train.launch in a warm process:
    start to first step, and wall minus train time) and of a cold `python -m dlrm.train`;
 6. 2 gloo ranks against 1 rank (torchrun, table_wise, global batch split);
 7. achieved dense FLOP/s (flops_per_sample x samples/s) as a fraction of a float32
    torch.mm peak measured with the same thread count;
 and a torch.profiler summary of the harness and baseline steps (top ops by self CPU).

Every comparison runs in one process, in windows interleaved round by round, and is
reported as the median over rounds with its spread [p25..p75]: the machine is shared.
`--threads` defaults to 1: on a 2-core machine with other load, 2 OpenMP threads stall
in barriers whenever a core is taken (the "threads" rows show it); pass --threads 2 on
an idle machine.
"""
from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(SCRIPTS))

import torch  # noqa: E402

import bench_common as bc  # noqa: E402

TARGETS = {
    "harness_vs_baseline": 1.2,  # harness step / plain-PyTorch step, at least
    "end_to_end_vs_step": 0.8,  # with generation in the loop / pure step, at least
    "generation_vs_training": 10.0,  # generation (+ BatchMaker) / training step, at least
    "run_overhead_in_sweep_s": 2.0,  # start of a warm in-process run to its first step, at most
}
GEN_CHUNK = 65536


# ================================================================ 1-4, 7: one batch size
def step_section(args, device: torch.device, batch_size: int, profile: bool) -> dict:
    from dlrm.batches import global_batches, prefetch, rank_slice
    from dlrm.model import flops_per_sample, param_counts

    overrides = [f"trainer.batch_size={batch_size}", f"trainer.num_threads={args.threads}",
                 f"trainer.device={device.type}"]
    cfg = bc.compose(overrides)
    h = bc.build_harness(cfg, device.type)
    source = h.source
    cases_built = {"harness": h}
    if cfg.sharding.type != "table_wise":
        cases_built["harness_table_wise"] = bc.build_harness(bc.compose(overrides + ["sharding=table_wise"]),
                                                             device.type, source=source)
    h_pipe = bc.build_harness(cfg, device.type, source=source)
    from torchrec.distributed.train_pipeline import TrainPipelineSparseDist

    pipe = TrainPipelineSparseDist(h_pipe.model, h_pipe.optimizer, h_pipe.info.device)
    base = bc.build_baseline(h.shape, cfg.trainer, device)

    steps = max(2, args.window_samples // batch_size)
    arrays = [source.train_arrays(i * batch_size, (i + 1) * batch_size) for i in range(steps)]
    kjt_batches = [h.maker(a) for a in arrays]
    base_batches = [bc.baseline_batch(a, device) for a in arrays]
    pipe_iter = itertools.cycle(kjt_batches)
    samples = steps * batch_size
    alt_threads = 2 if args.threads == 1 else 1
    depth = int(cfg.trainer.prefetch_batches)
    offset = [1 << 32]  # e2e and generation windows read fresh samples, far from the pre-built ones

    def harness_case(hh):
        def run() -> float:
            for b in kjt_batches:
                bc.harness_step(hh.model, hh.optimizer, b)
            return samples
        return run

    def pipeline_case() -> float:
        for _ in range(steps):
            pipe.progress(pipe_iter)
        return samples

    def baseline_case() -> float:
        for b in base_batches:
            base.step(b)
        return samples

    @contextlib.contextmanager
    def threads(n: int):
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(args.threads)

    def next_range(n: int) -> int:
        start = offset[0]
        offset[0] += n
        return start

    def e2e_case() -> float:
        """dlrm/loop.py's loop body: prefetch thread -> BatchMaker -> step -> loss read-out."""
        start = next_range(samples)

        def make(item):
            s, size = item
            lo, hi = rank_slice(s, size, h.info.rank, h.info.world_size)
            return size, h.maker(source.train_arrays(lo, hi))

        n = 0
        for size, batch in prefetch(global_batches(start + samples, batch_size, start), make, depth):
            loss = bc.harness_step(h.model, h.optimizer, batch)
            float(loss.detach())
            n += size
        return n

    def alt(run):
        def wrapped() -> float:
            with threads(alt_threads):
                return run()
        return wrapped

    def harness_short_case(hh):
        # Fewer steps: under load another thread count can be many times slower.
        short = kjt_batches[:max(2, steps // 4)]

        def run() -> float:
            for b in short:
                bc.harness_step(hh.model, hh.optimizer, b)
            return len(short) * batch_size
        return run

    def gen_case(chunk: int, total: int, with_maker: bool):
        def run() -> float:
            start = next_range(total)
            for s in range(start, start + total, chunk):
                a = source.train_arrays(s, s + chunk)
                if with_maker:
                    h.maker(a)
            return total
        return run

    n_mm, reps_mm = (8192, 10) if device.type == "cuda" else ((1024, 2) if args.quick else (2048, 2))
    cases = {name: harness_case(hh) for name, hh in cases_built.items()}
    cases["harness_pipeline"] = pipeline_case
    if device.type == "cpu":
        cases["harness_alt_threads"] = alt(harness_short_case(h))
    cases["baseline"] = baseline_case
    cases["end_to_end"] = e2e_case
    if device.type == "cpu":
        cases["end_to_end_alt_threads"] = alt(e2e_case)
    cases["gen_chunk_batch"] = gen_case(batch_size, samples, with_maker=False)
    cases["gen_chunk_batch_kjt"] = gen_case(batch_size, samples, with_maker=True)
    cases["gen_chunk_65536"] = gen_case(GEN_CHUNK, GEN_CHUNK, with_maker=False)
    cases["matmul"] = bc.matmul_window(n_mm, reps_mm, device)

    rates = bc.interleaved(cases, rounds=args.rounds, warmup_rounds=1, device=device)
    fps = flops_per_sample(h.shape)
    primary = "harness_pipeline" if device.type == "cuda" else "harness"
    out: dict = {
        "batch_size": batch_size,
        "steps_per_window": steps,
        "samples_per_window": samples,
        "threads": args.threads,
        "alt_threads": alt_threads if device.type == "cpu" else None,
        "primary_case": primary,
        "sharding_types": sorted({ps.sharding_type for mp in h.plan.plan.values() for ps in mp.values()}),
        "flops_per_sample": fps,
        **param_counts(h.shape),
        "samples_per_second": {k: bc.summarize(v) for k, v in rates.items() if k != "matmul"},
        "matmul": {"n": n_mm, "flops_per_second": bc.summarize(rates["matmul"])},
    }
    out["samples_per_second"].setdefault("harness_table_wise", out["samples_per_second"]["harness"])
    for k in ("harness_alt_threads", "end_to_end_alt_threads"):
        out["samples_per_second"].setdefault(k, bc.summarize([]))
    r = lambda a, b: bc.summarize(bc.ratios(rates[a], rates[b])) if a in rates and b in rates else bc.summarize([])  # noqa: E731
    out["ratios"] = {
        "harness_vs_baseline": r("harness", "baseline"),
        "harness_table_wise_vs_baseline": r("harness_table_wise" if "harness_table_wise" in rates else "harness",
                                            "baseline"),
        "harness_pipeline_vs_baseline": r("harness_pipeline", "baseline"),
        "harness_alt_threads_vs_harness": r("harness_alt_threads", "harness"),
        "end_to_end_vs_step": r("end_to_end", "harness"),
        "end_to_end_alt_threads_vs_step": r("end_to_end_alt_threads", "harness"),
        "generation_vs_training": r("gen_chunk_batch_kjt", primary),
        "generation_arrays_only_vs_training": r("gen_chunk_batch", primary),
        "generation_65536_vs_training": r("gen_chunk_65536", primary),
    }
    achieved = [x * fps for x in rates[primary]]
    out["roofline"] = {
        "dense_flops_per_second": bc.summarize(achieved),
        "matmul_peak_flops_per_second": bc.summarize(rates["matmul"]),
        "fraction_of_peak": bc.summarize(bc.ratios(achieved, rates["matmul"])),
        "baseline_fraction_of_peak": bc.summarize(bc.ratios([x * fps for x in rates["baseline"]], rates["matmul"])),
    }
    if profile:
        it_h, it_b = itertools.cycle(kjt_batches), itertools.cycle(base_batches)
        n = args.profile_steps
        out["profile"] = {
            "harness": bc.profile_top(lambda: bc.harness_step(h.model, h.optimizer, next(it_h)), n, device),
            "baseline": bc.profile_top(lambda: base.step(next(it_b)), n, device),
        }
    return out


# ======================================================================= 5: run overhead
def timed_launch(overrides: list[str], run_dir: Path) -> dict:
    """dlrm.train.launch of one run, with the time of its first step (first batch handed to
    the loop) and of entering dlrm.loop.train taken by wrapping those two functions."""
    from dlrm import loop
    from dlrm import train as train_mod

    marks: dict[str, float] = {}
    orig_train, orig_prefetch = loop.train, loop.prefetch

    def train_wrapper(*a, **k):
        marks["train_entry"] = time.perf_counter()
        return orig_train(*a, **k)

    def prefetch_wrapper(*a, **k):
        inner = orig_prefetch(*a, **k)
        try:
            for i, item in enumerate(inner):
                if i == 0:
                    marks["first_step"] = time.perf_counter()
                yield item
        finally:
            inner.close()

    cfg = bc.compose(overrides)
    loop.train, loop.prefetch = train_wrapper, prefetch_wrapper
    try:
        t0 = time.perf_counter()
        status = train_mod.launch(cfg, run_dir)
        t1 = time.perf_counter()
    finally:
        loop.train, loop.prefetch = orig_train, orig_prefetch
    s = json.loads((run_dir / "summary.json").read_text())
    if status != "completed":
        raise RuntimeError(f"benchmark run {run_dir} ended {status}: {s.get('error')}")
    train_s = float(s["train_seconds"])
    first = marks["first_step"] - t0
    return {
        "status": status,
        "num_train_samples": int(s["num_train_samples"]),
        "num_eval_samples": int(s["num_eval_samples"]),
        "wall_s": t1 - t0,
        "to_first_step_s": first,
        "before_train_s": marks["train_entry"] - t0,  # validate, init, config.yaml, env.json
        "setup_s": float(s["setup_seconds"]),  # source, model, shard, init_tables, eval batches
        "train_s": train_s,
        "after_train_s": (t1 - t0) - first - train_s,  # final eval, Bayes floor, summary
        "overhead_s": (t1 - t0) - train_s,
        "train_samples_per_second": float(s["train_samples_per_second"]),
    }


def overhead_section(args, device: torch.device, tmp: Path) -> dict:
    batch = int(bc.compose([]).trainer.batch_size)
    common = [f"trainer.num_threads={args.threads}", "trainer.progress_bar=false", f"out_root={tmp}",
              f"trainer.device={device.type}"]
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
    # The loop's own throughput on a longer run (dlrm.loop.train's train_samples_per_second).
    n = batch * (8 if args.quick else 256)
    out["loop_train"] = timed_launch(common + [f"data.num_train_samples={n}",
                                               f"data.num_eval_samples={args.small_eval}"], tmp / "loop")
    if args.no_cold:
        out["cold_subprocess"] = None
    else:
        run_dir = tmp / "cold"
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "dlrm.train", *tiny, f"hydra.run.dir={run_dir}"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"cold run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        s = json.loads((run_dir / "summary.json").read_text())
        out["cold_subprocess"] = {
            "process_wall_s": wall,
            "in_run_wall_s": float(s["wall_seconds"]),
            "startup_s": wall - float(s["wall_seconds"]),  # interpreter, imports, Hydra compose
            "train_s": float(s["train_seconds"]),
            "overhead_s": wall - float(s["train_seconds"]),
        }
    return out


# =================================================================== 6: 2 ranks vs 1 rank
def worker_main(args) -> int:
    """One rank under torchrun: times steps of the table_wise harness, global batch split."""
    import torch.distributed as dist

    bc.quiet()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {}
    harnesses = {}
    for b in args.batch_sizes:
        cfg = bc.compose([f"trainer.batch_size={b}", "sharding=table_wise", f"trainer.num_threads={args.threads}",
                          f"trainer.device={device.type}"])
        h = bc.build_harness(cfg, device.type)
        steps = max(2, args.window_samples // b)
        harnesses[b] = (h, h.batches(0, b, steps), steps)
    info = harnesses[args.batch_sizes[0]][0].info
    rates: dict[int, list[float]] = {b: [] for b in args.batch_sizes}
    for r in range(args.rounds + 1):
        for b, (h, batches, steps) in harnesses.items():
            dist.barrier()
            bc.sync(info.device)
            t0 = time.perf_counter()
            for batch in batches:
                bc.harness_step(h.model, h.optimizer, batch)
            bc.sync(info.device)
            dist.barrier()
            if r:
                rates[b].append(b * steps / (time.perf_counter() - t0))
    for b in args.batch_sizes:
        results[str(b)] = bc.summarize(rates[b])
    # Profile rank 0 (every rank steps: the collectives need them all).
    b0 = args.batch_sizes[0]
    h, batches, _ = harnesses[b0]
    it = itertools.cycle(batches)

    def step() -> None:
        bc.harness_step(h.model, h.optimizer, next(it))

    prof = None
    if info.is_main:
        prof = bc.profile_top(step, args.profile_steps, info.device)
        prof["batch_size"] = b0
    else:
        for _ in range(args.profile_steps):
            step()
    if info.is_main:
        Path(args.worker_out).write_text(json.dumps({"world_size": info.world_size, "threads_per_rank":
                                                     torch.get_num_threads(), "samples_per_second": results,
                                                     "profile_rank0": prof}))
    dist.barrier()
    dist.destroy_process_group()
    return 0


def distributed_section(args, device: torch.device, tmp: Path) -> dict:
    batch_sizes = [b for b in args.batch_sizes]
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        return {"skipped": "fewer than 2 GPUs"}

    def launch(nproc: int, threads: int, tag: str) -> dict:
        out = tmp / f"dist_{tag}.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               str(Path(__file__).resolve()), "--worker", "--worker-out", str(out), "--device", device.type,
               "--threads", str(threads), "--rounds", str(args.dist_rounds), "--profile-steps",
               str(args.profile_steps), "--window-samples",
               str(args.window_samples), "--batch-sizes", *map(str, batch_sizes)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
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
    for b in batch_sizes:
        key = str(b)
        one = [x for run in runs["1"] for x in [run["samples_per_second"][key]["median"]]]
        two = [x for run in runs["2"] for x in [run["samples_per_second"][key]["median"]]]
        out["samples_per_second"][key] = {"1": bc.summarize(one), "2": bc.summarize(two)}
        out["ratio_2_vs_1"][key] = bc.summarize(bc.ratios(two, one))
    out["profile_rank0"] = {"1": runs["1"][-1]["profile_rank0"], "2": runs["2"][-1]["profile_rank0"]}
    return out


# ================================================================================ report
def _s(x: dict, scale: float = 1.0, digits: int = 2) -> str:
    return bc.fmt_spread(x, scale, digits)


def _rate(x: dict) -> str:
    if not x or x.get("median") is None:
        return "-"
    return f"{bc.fmt_rate(x['median'])} [{bc.fmt_rate(x['p25'])}..{bc.fmt_rate(x['p75'])}]"


def _ok(value, target, at_least: bool) -> str:
    if value is None:
        return "n/a"
    return "MET" if (value >= target if at_least else value <= target) else "MISSED"


def evaluate_targets(res: dict) -> dict:
    t: dict = {}
    steps = res["step"]
    for key, target in (("harness_vs_baseline", TARGETS["harness_vs_baseline"]),
                        ("end_to_end_vs_step", TARGETS["end_to_end_vs_step"]),
                        ("generation_vs_training", TARGETS["generation_vs_training"])):
        for b, sec in steps.items():
            v = sec["ratios"][key]["median"]
            t[f"{key}@{b}"] = {"value": v, "target": target, "at_least": True, "verdict": _ok(v, target, True)}
    v = res["overhead"]["in_process_warm"]["to_first_step_s"]
    t["run_overhead_in_sweep_s"] = {"value": v, "target": TARGETS["run_overhead_in_sweep_s"], "at_least": False,
                                    "verdict": _ok(v, TARGETS["run_overhead_in_sweep_s"], False)}
    return t


def render(res: dict) -> str:
    m = res["meta"]
    lines = [f"bench_throughput: {m['device_name']}, {m['threads']} torch thread(s), {m['cpu_count']} CPUs, "
             f"torch {m['versions']['torch']}, torchrec {m['versions']['torchrec']}"
             f"{', QUICK' if m['quick'] else ''}; load avg {m['load_avg_start']} -> {m['load_avg_end']}",
             "values: median [p25..p75] over interleaved windows; ratios are per-round medians", ""]
    for b, sec in res["step"].items():
        sps, rt = sec["samples_per_second"], sec["ratios"]
        lines.append(f"== global batch {b}: {sec['rounds']} rounds x {sec['steps_per_window']} steps, "
                     f"sharding {'+'.join(sec['sharding_types'])}, {sec['flops_per_sample']} dense FLOP/sample ==")
        rows = [
            ("harness step (loop.py: fwd+bwd+step+zero_grad)", "harness", ("x baseline", rt["harness_vs_baseline"])),
            ("  same, sharding=table_wise", "harness_table_wise", ("x baseline", rt["harness_table_wise_vs_baseline"])),
            ("  same, TrainPipelineSparseDist", "harness_pipeline", ("x baseline", rt["harness_pipeline_vs_baseline"])),
            (f"  same, {sec['alt_threads']} threads", "harness_alt_threads",
             ("x harness", rt["harness_alt_threads_vs_harness"])),
            ("baseline: plain PyTorch DLRM", "baseline", None),
            ("end to end: prefetch+BatchMaker+step", "end_to_end", ("x step", rt["end_to_end_vs_step"])),
            (f"  same, {sec['alt_threads']} threads", "end_to_end_alt_threads",
             ("x step", rt["end_to_end_alt_threads_vs_step"])),
            (f"generation train_arrays, chunk {b}", "gen_chunk_batch", ("x step", rt["generation_arrays_only_vs_training"])),
            (f"  + BatchMaker (the prefetch thread's work)", "gen_chunk_batch_kjt", ("x step", rt["generation_vs_training"])),
            (f"generation train_arrays, chunk {GEN_CHUNK}", "gen_chunk_65536", ("x step", rt["generation_65536_vs_training"])),
        ]
        lines.append(f"  {'case':<48} {'samples/s':>22}   {'ratio':>24}")
        for label, key, ratio in rows:
            if sps.get(key, {}).get("median") is None:
                continue
            rtxt = f"{_s(ratio[1])} {ratio[0]}" if ratio else ""
            lines.append(f"  {label:<48} {_rate(sps[key]):>22}   {rtxt:>24}")
        rf = sec["roofline"]
        lines.append(f"  dense FLOP/s achieved {_s(rf['dense_flops_per_second'], 1e-9)} GFLOP/s; float32 mm "
                     f"n={sec['matmul']['n']} peak {_s(rf['matmul_peak_flops_per_second'], 1e-9)} GFLOP/s; "
                     f"fraction {_s(rf['fraction_of_peak'], 100, 1)} % (baseline "
                     f"{_s(rf['baseline_fraction_of_peak'], 100, 1)} %)")
        lines.append("")
    o = res["overhead"]
    lines.append("== per-run overhead (dlrm.train.launch, one batch of training) ==")
    lines.append(f"  {'run':<44} {'wall':>7} {'1st step':>9} {'before':>7} {'setup':>7} {'train':>7} {'after':>7} "
                 f"{'wall-train':>10}")
    for key, label in (("in_process_first", f"in-process, 1st of sweep, eval {o['small_eval_samples']}"),
                       ("in_process_warm", f"in-process, warm, eval {o['small_eval_samples']}"),
                       ("in_process_warm_default_eval", "in-process, warm, default eval set")):
        x = o.get(key)
        if x:
            lines.append(f"  {label:<44} {x['wall_s']:7.2f} {x['to_first_step_s']:9.2f} {x['before_train_s']:7.2f} "
                         f"{x['setup_s']:7.2f} {x['train_s']:7.2f} {x['after_train_s']:7.2f} {x['overhead_s']:10.2f}")
    c = o.get("cold_subprocess")
    if c:
        lines.append(f"  cold `python -m dlrm.train`: process {c['process_wall_s']:.2f} s = startup (interpreter, "
                     f"imports, Hydra) {c['startup_s']:.2f} s + run {c['in_run_wall_s']:.2f} s; wall-train "
                     f"{c['overhead_s']:.2f} s")
    lt = o["loop_train"]
    lines.append(f"  dlrm.loop.train on {lt['num_train_samples']} samples: {bc.fmt_rate(lt['train_samples_per_second'])} "
                 f"samples/s (train_samples_per_second of its summary)")
    lines.append("")
    d = res["distributed"]
    if d.get("skipped"):
        lines.append(f"== 2 ranks vs 1 rank: skipped ({d['skipped']}) ==")
    else:
        lines.append(f"== 2 ranks vs 1 rank (torchrun, gloo, table_wise, global batch split; threads/rank "
                     f"{d['threads_per_rank']['1']} vs {d['threads_per_rank']['2']}; {d['repeats']} alternating "
                     f"launches) ==")
        for b, v in d["samples_per_second"].items():
            lines.append(f"  batch {b:>5}: 1 rank {_rate(v['1'])}  2 ranks {_rate(v['2'])}  ratio "
                         f"{_s(d['ratio_2_vs_1'][b])}")
        for n in ("1", "2"):
            p = d["profile_rank0"][n]
            top = ", ".join(f"{r['name'][:40]} {r['self_cpu_ms_per_step']:.2f}" for r in p["top_self_cpu"][:5])
            lines.append(f"  profile rank 0 of {n}, batch {p['batch_size']}: {p['self_cpu_ms_per_step_total']:.2f} ms "
                         f"self CPU/step; top ms/step: {top}")
    lines.append("")
    first = next(iter(res["step"].values()))
    if "profile" in first:
        for who in ("harness", "baseline"):
            p = first["profile"][who]
            lines.append(f"== profile: {who} step, batch {first['batch_size']} ({p['steps']} steps, "
                         f"{p['self_cpu_ms_per_step_total']:.2f} ms self CPU per step) top ops by self CPU ==")
            for row in p["top_self_cpu"]:
                lines.append(f"  {row['self_cpu_ms_per_step']:7.3f} ms {row['self_cpu_pct']:5.1f} %  "
                             f"{row['calls_per_step']:6.1f}/step  {row['name'][:80]}")
            lines.append("")
    lines.append("== targets ==")
    for k, v in res["targets"].items():
        op = ">=" if v["at_least"] else "<="
        val = "-" if v["value"] is None else f"{v['value']:.3f}"
        lines.append(f"  {k:<36} {val:>7} (target {op} {v['target']}): {v['verdict']}")
    if res["skipped"]:
        lines.append(f"  skipped: {', '.join(res['skipped'])}")
    lines.append(f"total {res['meta']['wall_seconds']:.0f} s")
    return "\n".join(lines)


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, batch 512 only, no torchrun/cold start")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (0: torch's default)")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None, help="default: the config's, and 2048")
    p.add_argument("--rounds", type=int, default=None, help="measured rounds per batch size")
    p.add_argument("--window-samples", type=int, default=None, help="samples per timed window")
    p.add_argument("--profile-steps", type=int, default=None)
    p.add_argument("--small-eval", type=int, default=65536, help="eval samples of the overhead runs")
    p.add_argument("--no-dist", action="store_true", help="skip the torchrun 2-rank section")
    p.add_argument("--no-cold", action="store_true", help="skip the cold `python -m dlrm.train` start")
    p.add_argument("--dist-repeats", type=int, default=2)
    p.add_argument("--dist-rounds", type=int, default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads <= 0:
        args.threads = torch.get_num_threads()
    if args.window_samples is None:
        args.window_samples = 2048 if args.quick else 12288
    if args.rounds is None:
        args.rounds = 2 if args.quick else 10
    if args.dist_rounds is None:
        args.dist_rounds = 2 if args.quick else 8
    if args.profile_steps is None:
        args.profile_steps = 3 if args.quick else 20
    if args.quick:
        args.no_dist = True
        args.no_cold = True
    if args.worker:
        return worker_main(args)

    bc.quiet()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but no CUDA device is visible")
    t_start = time.perf_counter()
    load_start = _load()
    if args.batch_sizes is None:
        default_b = int(bc.compose([]).trainer.batch_size)
        args.batch_sizes = [default_b] if args.quick else sorted({default_b, 2048})

    import fbgemm_gpu
    import torchrec

    res: dict = {
        "meta": {
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "torchrec": torchrec.__version__, "fbgemm_gpu": getattr(fbgemm_gpu, "__version__", None)},
            "device": device.type,
            "device_name": torch.cuda.get_device_name(0) if device.type == "cuda" else
            f"CPU ({platform.processor() or platform.machine()})",
            "host": socket.gethostname(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "quick": args.quick,
            "batch_sizes": args.batch_sizes,
            "rounds": args.rounds,
            "window_samples": args.window_samples,
            "load_avg_start": load_start,
        },
        "targets_spec": TARGETS,
        "step": {},
        "skipped": [],
    }
    for i, b in enumerate(args.batch_sizes):
        sec = step_section(args, device, b, profile=(i == 0))
        sec["rounds"] = args.rounds
        res["step"][str(b)] = sec
    res["profile"] = res["step"][str(args.batch_sizes[0])]["profile"]
    with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp:
        res["overhead"] = overhead_section(args, device, Path(tmp))
        if args.no_cold:
            res["skipped"].append("cold_subprocess")
        if args.no_dist:
            res["distributed"] = {"skipped": "--quick/--no-dist"}
            res["skipped"].append("distributed")
        else:
            res["distributed"] = distributed_section(args, device, Path(tmp))
    res["targets"] = evaluate_targets(res)
    res["meta"]["load_avg_end"] = _load()
    res["meta"]["wall_seconds"] = time.perf_counter() - t_start
    text = render(res)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
