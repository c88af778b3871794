"""The report of scripts/bench_throughput.py: the targets' verdicts and the printed tables."""
from __future__ import annotations

import bench_common as bc
from bench_step import GEN_CHUNK

TARGETS = {
    "harness_vs_baseline": 2.0,  # harness step / plain-PyTorch step, at least
    "end_to_end_vs_step": 0.9,  # with generation in the loop / pure step, at least
    "end_to_end_cached_vs_step": 0.9,  # the same, the stream read from the block cache, at least
    "generation_vs_training": 10.0,  # generation (+ BatchMaker) / training step, at least
    "fraction_of_peak": 0.40,  # dense FLOP/s / float32 matmul peak at the largest batch, at least
    "run_overhead_in_sweep_s": 2.0,  # start of a warm in-process run to its first step, at most
}
_s = bc.fmt_spread
_rate = bc.fmt_rate_spread


def _ok(value, target, at_least: bool) -> str:
    if value is None:
        return "n/a"
    return "MET" if (value >= target if at_least else value <= target) else "MISSED"


def evaluate_targets(res: dict) -> dict:
    t: dict = {}
    for key in ("harness_vs_baseline", "end_to_end_vs_step", "end_to_end_cached_vs_step", "generation_vs_training"):
        for b, sec in res["step"].items():
            v = sec["ratios"][key]["median"]
            t[f"{key}@{b}"] = {"value": v, "target": TARGETS[key], "at_least": True,
                               "verdict": _ok(v, TARGETS[key], True)}
    if res["step"]:
        b = max(res["step"], key=int)
        v = res["step"][b]["roofline"]["fraction_of_peak"]["median"]
        t[f"fraction_of_peak@{b}"] = {"value": v, "target": TARGETS["fraction_of_peak"], "at_least": True,
                                      "verdict": _ok(v, TARGETS["fraction_of_peak"], True)}
    o = res.get("overhead") or {}
    v = (o.get("in_process_warm") or {}).get("to_first_step_s")
    target = TARGETS["run_overhead_in_sweep_s"]
    t["run_overhead_in_sweep_s"] = {"value": v, "target": target, "at_least": False, "verdict": _ok(v, target, False)}
    return t


def _step_lines(b: str, sec: dict) -> list[str]:
    sps, rt = sec["samples_per_second"], sec["ratios"]
    lines = [f"== global batch {b}: {sec['rounds']} rounds x {sec['steps_per_window']} steps, model {sec['model']}, "
             f"sharding {'+'.join(sec['sharding_types'])}, {sec['flops_per_sample']} dense FLOP/sample =="]
    tw = "  same, sharding=table_wise" + (" (= the above)" if sec["sharding_types"] == ["table_wise"] else "")
    rows = [
        ("harness step (dlrm.steps.train_step)", "harness", ("x baseline", rt["harness_vs_baseline"])),
        (tw, "harness_table_wise", ("x baseline", rt["harness_table_wise_vs_baseline"])),
        ("  same, TrainPipelineSparseDist", "harness_pipeline", ("x baseline", rt["harness_pipeline_vs_baseline"])),
        (f"  same, {sec['alt_threads']} threads", "harness_alt_threads",
         ("x harness", rt["harness_alt_threads_vs_harness"])),
        ("  same, trainer.dense_precision=bf16", "harness_bf16", ("x harness", rt["harness_bf16_vs_harness"])),
        ("baseline: plain PyTorch DLRM", "baseline", None),
        ("end to end: train_batches (prefetch)+step", "end_to_end", ("x step", rt["end_to_end_vs_step"])),
        (f"  same, {sec['alt_threads']} threads", "end_to_end_alt_threads",
         ("x step", rt["end_to_end_alt_threads_vs_step"])),
        ("  same, stream from the block cache", "end_to_end_cached", ("x step", rt["end_to_end_cached_vs_step"])),
        (f"generation train_arrays, chunk {b}", "gen_chunk_batch", ("x step", rt["generation_arrays_only_vs_training"])),
        ("  + BatchMaker (train_batch: the prefetch job)", "gen_chunk_batch_kjt",
         ("x step", rt["generation_vs_training"])),
        (f"generation train_arrays, chunk {GEN_CHUNK}", "gen_chunk_65536", ("x step", rt["generation_65536_vs_training"])),
        ("block cache read + BatchMaker (a stream's 2nd run)", "gen_cached_batch_kjt",
         ("x step", rt["cached_generation_vs_training"])),
    ]
    lines.append(f"  {'case':<48} {'samples/s':>22}   {'ratio':>24}")
    for label, key, ratio in rows:
        if sps.get(key, {}).get("median") is None:
            continue
        rtxt = f"{_s(ratio[1])} {ratio[0]}" if ratio and ratio[1].get("median") is not None else ""
        lines.append(f"  {label:<48} {_rate(sps[key]):>22}   {rtxt:>24}")
    rf = sec["roofline"]
    lines.append(f"  dense FLOP/s achieved {_s(rf['dense_flops_per_second'], 1e-9)} GFLOP/s; float32 mm "
                 f"n={sec['matmul']['n']} peak {_s(rf['matmul_peak_flops_per_second'], 1e-9)} GFLOP/s; "
                 f"fraction {_s(rf['fraction_of_peak'], 100, 1)} % (baseline "
                 f"{_s(rf['baseline_fraction_of_peak'], 100, 1)} %)")
    if sec.get("cuda_max_memory_allocated_gib") is not None:
        lines.append(f"  peak CUDA memory allocated so far: {sec['cuda_max_memory_allocated_gib']:.1f} GiB")
    return lines + [""]


def _overhead_lines(o: dict) -> list[str]:
    lines = ["== per-run overhead (runner.job.launch in this process, one batch of training) ==",
             f"  {'run':<44} {'wall':>7} {'1st step':>9} {'before':>7} {'setup':>7} {'train':>7} {'after':>7} "
             f"{'wall-train':>10}"]
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
    return lines + [""]


def _dist_lines(d: dict) -> list[str]:
    if d.get("skipped"):
        return [f"== 2 ranks vs 1 rank: skipped ({d['skipped']}) ==", ""]
    lines = [f"== 2 ranks vs 1 rank (torchrun, table_wise, global batch split; threads/rank "
             f"{d['threads_per_rank']['1']} vs {d['threads_per_rank']['2']}; {d['repeats']} alternating launches) =="]
    for b, v in d["samples_per_second"].items():
        lines.append(f"  batch {b:>5}: 1 rank {_rate(v['1'])}  2 ranks {_rate(v['2'])}  ratio "
                     f"{_s(d['ratio_2_vs_1'][b])}")
    for n in ("1", "2"):
        p = d["profile_rank0"][n]
        top = ", ".join(f"{r['name'][:40]} {r['self_cpu_ms_per_step']:.2f}" for r in p["top_self_cpu"][:5])
        lines.append(f"  profile rank 0 of {n}, batch {p['batch_size']}: {p['self_cpu_ms_per_step_total']:.2f} ms "
                     f"self CPU/step; top ms/step: {top}")
    return lines + [""]


def _profile_lines(first: dict) -> list[str]:
    lines = []
    for who, p in first.get("profile", {}).items():
        lines.append(f"== profile: {who} step, batch {first['batch_size']} ({p['steps']} steps, "
                     f"{p['self_cpu_ms_per_step_total']:.2f} ms self CPU per step) top ops by self CPU ==")
        for row in p["top_self_cpu"]:
            lines.append(f"  {row['self_cpu_ms_per_step']:7.3f} ms {row['self_cpu_pct']:5.1f} %  "
                         f"{row['calls_per_step']:6.1f}/step  {row['name'][:80]}")
        for row in p.get("top_self_device", []):
            lines.append(f"  device {row['self_device_ms_per_step']:7.3f} ms {row['self_device_pct']:5.1f} %  "
                         f"{row['name'][:80]}")
        lines.append("")
    return lines


def render(res: dict) -> str:
    m = res["meta"]
    lines = [f"bench_throughput: {m['device_name']}, {m['threads']} torch thread(s), {m['cpu_count']} CPUs, "
             f"torch {m['versions']['torch']}, torchrec {m['versions']['torchrec']}"
             f"{', QUICK' if m['quick'] else ''}; load avg {m['load_avg_start']} -> {m['load_avg_end']}",
             "values: median [p25..p75] over interleaved windows; ratios are per-round medians"]
    if m.get("tf32"):
        lines.append("TF32 matmuls on")
    if m.get("overrides"):
        lines.append(f"config overrides: {' '.join(m['overrides'])}")
    lines.append("")
    for b, sec in res["step"].items():
        lines += _step_lines(b, sec)
    if res.get("overhead"):
        lines += _overhead_lines(res["overhead"])
    lines += _dist_lines(res["distributed"])
    lines += _profile_lines(next(iter(res["step"].values())))
    lines.append("== targets ==")
    for k, v in res["targets"].items():
        op = ">=" if v["at_least"] else "<="
        val = "-" if v["value"] is None else f"{v['value']:.3f}"
        lines.append(f"  {k:<36} {val:>7} (target {op} {v['target']}): {v['verdict']}")
    if res["skipped"]:
        lines.append(f"  skipped: {', '.join(res['skipped'])}")
    lines.append(f"total {m['wall_seconds']:.0f} s")
    return "\n".join(lines)
