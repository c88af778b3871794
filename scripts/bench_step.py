"""Sections 1-4 and 7 of scripts/bench_throughput.py, at one global batch size: the
training step, the baseline, generation, end to end, and the roofline.

Everything timed is the library's own: the model, optimizer and plan of
`dlrm.loop.build`, batches of `Trainable.train_batch` (rank slice, `train_arrays`,
BatchMaker), the step `dlrm.steps.train_step`, the loop's data path
`Trainable.train_batches` (blocks of batches made in the prefetch thread), and TorchRec's
TrainPipelineSparseDist over the same model and optimizer.
"""
from __future__ import annotations

import contextlib
import dataclasses
import itertools
import tempfile

import torch

import bench_common as bc
from bench_baseline import baseline_batch, build_baseline

GEN_CHUNK = 65536
# End-to-end windows are this many step windows long: the prefetch thread's first block
# (4096 samples a rank) is made before the first step, a fill that a run pays once.
E2E_WINDOWS = 4
STEP_CASES = ("harness", "harness_table_wise", "harness_pipeline", "harness_alt_threads", "harness_bf16", "baseline",
              "end_to_end", "end_to_end_alt_threads", "end_to_end_cached", "gen_chunk_batch", "gen_chunk_batch_kjt",
              "gen_chunk_65536", "gen_cached_batch_kjt")
CPU_ONLY = ("harness_alt_threads", "end_to_end_alt_threads")


def overrides_for(args, device: torch.device, batch_size: int) -> list[str]:
    """The config of every model of a section: the defaults, the batch, and --set."""
    return [f"trainer.batch_size={batch_size}", f"trainer.num_threads={args.threads}",
            f"trainer.device={device.type}", *args.set]


def step_section(args, device: torch.device, batch_size: int, profile: bool) -> dict:
    from dlrm import distributed
    from dlrm.loop import build
    from dlrm.steps import train_step
    from dlrm.model import flops_per_sample, param_counts
    from dlrm.sharding import sharding_types_used
    from runner.compose import compose, typed

    wanted = [c for c in STEP_CASES if c in args.cases and not (device.type == "cuda" and c in CPU_ONLY)]
    info = distributed.init(device.type)
    overrides = overrides_for(args, device, batch_size)
    cfg = typed(compose(overrides))
    t = build(cfg, info)
    built = {"harness": t}
    # On one rank sharding=auto plans table-wise already: a second copy would time the same model.
    if "harness_table_wise" in wanted and sharding_types_used(t.plan) != ["table_wise"]:
        built["harness_table_wise"] = build(typed(compose(overrides + ["sharding=table_wise"])), info, t.source)
    pipe = None
    if "harness_pipeline" in wanted:
        from torchrec.distributed.train_pipeline import TrainPipelineSparseDist

        tp = build(cfg, info, t.source)
        pipe = TrainPipelineSparseDist(tp.model, tp.optimizer, tp.info.device)
    if "harness_bf16" in wanted:  # the dense part under bf16 autocast (trainer.dense_precision)
        built["harness_bf16"] = build(typed(compose(overrides + ["trainer.dense_precision=bf16"])), info, t.source)
    base = build_baseline(t.shape, cfg.trainer, device) if "baseline" in wanted else None

    steps = max(2, args.window_samples // batch_size)
    samples = steps * batch_size
    batches = [t.train_batch(i * batch_size, batch_size) for i in range(steps)]
    base_batches = [baseline_batch(b, t.shape.num_sparse_features) for b in batches] if base else []
    pipe_iter = itertools.cycle(batches)
    alt_threads = 2 if args.threads == 1 else 1
    depth = int(cfg.trainer.prefetch_batches)
    offset = [1 << 32]  # e2e and generation windows read fresh samples, far from the pre-built ones

    def next_range(n: int) -> int:
        start = offset[0]
        offset[0] += n
        return start

    def steps_case(tt, window: list):
        def run() -> float:
            for b in window:
                train_step(tt.model, tt.optimizer, b)
            return len(window) * batch_size
        return run

    def pipeline_case() -> float:
        for _ in range(steps):
            pipe.progress(pipe_iter)
        return samples

    def baseline_case() -> float:
        for b in base_batches:
            base.step(b)
        return samples

    e2e_samples = E2E_WINDOWS * samples

    def e2e(source_of, start: int) -> float:
        """The loop's data path and step: the prefetch thread's blocks of batches
        (Trainable.train_batches) -> step -> loss read-out."""
        n = 0
        for size, batch in source_of.train_batches(start + e2e_samples, batch_size, start, depth):
            float(train_step(t.model, t.optimizer, batch))
            n += size
        return n

    def e2e_case() -> float:
        return e2e(t, next_range(e2e_samples))

    # A run whose (world, seed) stream another run of the sweep generated: its batches come
    # from the block cache (trainer.stream_cache_dir), filled once here, before the timing.
    cache_dir = tempfile.TemporaryDirectory(prefix="bench_stream_cache_")
    cached_window = next_range(e2e_samples)
    tc = None

    def read_cached(n: int) -> float:
        for s in range(cached_window, cached_window + n, batch_size):
            tc.train_batch(s, batch_size)
        return n

    def cached_gen_case() -> float:
        return read_cached(samples)

    if {"gen_cached_batch_kjt", "end_to_end_cached"} & set(wanted):
        from dlrm.data.stream_cache import CachedStream

        tc = dataclasses.replace(t, source=CachedStream(t.source, cache_dir.name, max_bytes=2 ** 34))
        read_cached(e2e_samples)  # the first pass writes the blocks; the timed windows read them

    def e2e_cached_case() -> float:
        return e2e(tc, cached_window)

    def gen_case(chunk: int, total: int, with_maker: bool):
        def run() -> float:
            start = next_range(total)
            for s in range(start, start + total, chunk):
                t.train_batch(s, chunk) if with_maker else t.source.train_arrays(s, s + chunk)
            return total
        return run

    @contextlib.contextmanager
    def threads(n: int):
        torch.set_num_threads(n)
        try:
            yield
        finally:
            torch.set_num_threads(args.threads)

    def alt(run):
        def wrapped() -> float:
            with threads(alt_threads):
                return run()
        return wrapped

    makers = {
        "harness_pipeline": lambda: pipeline_case,
        # Fewer steps: under load another thread count can be many times slower.
        "harness_alt_threads": lambda: alt(steps_case(t, batches[:max(2, steps // 4)])),
        "baseline": lambda: baseline_case,
        "end_to_end": lambda: e2e_case,
        "end_to_end_alt_threads": lambda: alt(e2e_case),
        "end_to_end_cached": lambda: e2e_cached_case,
        "gen_cached_batch_kjt": lambda: cached_gen_case,
        "gen_chunk_batch": lambda: gen_case(batch_size, samples, with_maker=False),
        "gen_chunk_batch_kjt": lambda: gen_case(batch_size, samples, with_maker=True),
        "gen_chunk_65536": lambda: gen_case(GEN_CHUNK, GEN_CHUNK, with_maker=False),
    }
    cases = {name: steps_case(tt, batches) for name, tt in built.items()}
    cases.update({name: makers[name]() for name in wanted if name in makers})
    n_mm, reps_mm = (8192, 10) if device.type == "cuda" else ((1024, 2) if args.quick else (2048, 2))
    cases["matmul"] = bc.matmul_window(n_mm, reps_mm, device)

    rates = bc.interleaved(cases, rounds=args.rounds, warmup_rounds=1, device=device)
    cache_dir.cleanup()
    fps = flops_per_sample(t.shape)
    primary = "harness_pipeline" if device.type == "cuda" and pipe is not None else "harness"
    out: dict = {
        "batch_size": batch_size,
        "steps_per_window": steps,
        "samples_per_window": samples,
        "threads": args.threads,
        "alt_threads": alt_threads if device.type == "cpu" else None,
        "primary_case": primary,
        "model": t.shape.name,
        "embedding_dim": t.shape.embedding_dim,
        "sharding_types": sharding_types_used(t.plan),
        "flops_per_sample": fps,
        **param_counts(t.shape),
        "samples_per_second": {k: bc.summarize(v) for k, v in rates.items() if k != "matmul"},
        "matmul": {"n": n_mm, "flops_per_second": bc.summarize(rates["matmul"])},
    }
    sps = out["samples_per_second"]
    sps.setdefault("harness_table_wise", sps["harness"])
    for k in STEP_CASES:
        sps.setdefault(k, bc.summarize([]))
    tw = "harness_table_wise" if "harness_table_wise" in rates else "harness"

    def r(a: str, b: str) -> dict:
        return bc.summarize(bc.ratios(rates[a], rates[b]) if a in rates and b in rates else [])

    out["ratios"] = {
        "harness_vs_baseline": r("harness", "baseline"),
        "harness_table_wise_vs_baseline": r(tw, "baseline"),
        "harness_pipeline_vs_baseline": r("harness_pipeline", "baseline"),
        "harness_alt_threads_vs_harness": r("harness_alt_threads", "harness"),
        "harness_bf16_vs_harness": r("harness_bf16", "harness"),
        "end_to_end_cached_vs_step": r("end_to_end_cached", "harness"),
        "cached_generation_vs_training": r("gen_cached_batch_kjt", primary),
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
        "baseline_fraction_of_peak": bc.summarize(
            bc.ratios([x * fps for x in rates.get("baseline", [])], rates["matmul"])),
    }
    if profile:
        it_h, it_b = itertools.cycle(batches), itertools.cycle(base_batches)
        n = args.profile_steps
        out["profile"] = {"harness": bc.profile_top(lambda: train_step(t.model, t.optimizer, next(it_h)), n, device)}
        if base:
            out["profile"]["baseline"] = bc.profile_top(lambda: base.step(next(it_b)), n, device)
    if device.type == "cuda":
        out["cuda_max_memory_allocated_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return out
