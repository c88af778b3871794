"""The GPU check (docs/PERFORMANCE.md, "GPU check"): one run on one GPU machine, within a
time budget (6 minutes with the install, by default), started by scripts/gpu_check.sh.

 1. train: `python -m dlrm.train trainer.device=cuda` on 2^22 samples at batch 16384 --
    the real entry point, end to end; its summary's eval NE and samples/s;
 2. default: scripts/bench_throughput.py --device cuda at the default shapes (26 tables,
    dim 16, width 64) at batches 2048, 16384 and 65536;
 3. mlperf: the same benchmark at the MLPerf DLRM-DCNv2 shapes (embedding dim 128, the
    MLPerf Criteo-1TB table sizes capped at MLPERF_CAP rows, bottom MLP 512-256-128, top
    MLP 1024-1024-512-256-1, DCN-v2 of 3 cross layers of rank 512) at batch 65536, fp32;
 4. mlperf_tf32: the same with TF32 matmuls, if the budget has room left;
then one table of samples/s with the published single-GPU reference figures beside it.
Each step runs in its own process with a share of the budget left as its time limit; a
step that fails or runs out of time is reported and the next one still runs.

Output in --out (default $OUT, else runs/gpu_check): gpu_check.txt (the table),
gpu_check.json (everything), train_summary.json, bench_<step>.json, logs.txt: 7 files.

`--dry-run`: the same steps at tiny sizes, on the CPU with `--device cpu`: it checks every
command line, override and parser, not the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = str(REPO / "scripts" / "bench_throughput.py")

# MLPerf Training DLRM-DCNv2 (recommendation_v2/torchrec_dlrm/README.MD of mlcommons/training):
# the Criteo 1TB table sizes, capped at 40M rows, and the model's shapes.
MLPERF_CARDINALITIES = [40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956, 405282, 10,
                        2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152, 12973, 108, 36]
# 4M rows: five tables of 4M plus the rest, 24.2M rows = 11.5 GiB of fp32 at dim 128 per model copy.
# The benchmark holds three (the harness, its TrainPipelineSparseDist copy, the baseline, whose
# Adagrad state doubles it): ~47 GiB of the H200's 139, and under TorchRec's default planner cap
# of 32 GiB per device.  Every capped table is still 2 GiB, ~30x the 60 MB L2, so the look-ups
# stay HBM-bound as in the uncapped model; the table init (on the CPU, ~3G values per copy)
# is what keeps the cap from rising within the time budget.
MLPERF_CAP = 4_000_000
MLPERF_SHAPE = ["model=dcn", "model.embedding_dim=128", "model.dense_arch_layer_sizes=[512,256,128]",
                "model.over_arch_layer_sizes=[1024,1024,512,256,1]", "model.dcn_num_layers=3",
                "model.dcn_low_rank_dim=512"]

REFERENCES = [
    {"key": "nvidia_dcnv2_1xA100",
     "what": "NVIDIA DeepLearningExamples DCNv2 (TensorFlow 2): the MLPerf DCNv2 shapes (bottom 512-256-128, top "
             "1024-1024-512-256-1, 3 cross layers, projection 512, dim 128), 1-hot Criteo 1TB at frequency "
             "threshold 15 (4.2B parameters, 15.6 GiB of tables), Adam, batch 64k",
     "hardware": "1x A100 80GB (DGX A100)", "batch_size": 65536,
     "samples_per_second": {"TF32": 689_000, "AMP": 1_370_000},
     "url": "https://github.com/NVIDIA/DeepLearningExamples/blob/master/TensorFlow2/Recommendation/DLRM_and_DCNv2/"
            "doc/DCNv2.md#training-performance-nvidia-dgx-a100-8x-a100-80gb"},
    {"key": "mlperf_reference_dlrm_1xA100",
     "what": "MLCommons training reference (TorchRec dlrm_main), its one-GPU row: DLRM with the dot interaction "
             "(not DCN; same MLPs, dim 128), 1-hot Criteo 1TB, 91 GiB of tables; the DCNv2 benchmark itself is "
             "published for 8 GPUs only (command, no throughput)",
     "hardware": "1x A100 40GB (AWS p4d.24xlarge)", "batch_size": 16384,
     "samples_per_second": {"as published": 740_065},
     "url": "https://github.com/mlcommons/training/blob/master/recommendation_v2/torchrec_dlrm/README.MD"},
]


def mlperf_overrides(cap: int) -> list[str]:
    cards = [min(c, cap) for c in MLPERF_CARDINALITIES]
    # The MLPerf table sizes on the first planted world: its teacher has no per-feature
    # constraints on table sizes (the default world's parts need their own feature layout).
    return MLPERF_SHAPE + ["data=synthetic_saturating", f"data.cardinalities=[{','.join(map(str, cards))}]"]


def plan(dry: bool, device: str) -> list[dict]:
    """The steps: name, command, weight (its share of the budget), and the least time worth starting it with."""
    py = sys.executable
    threads = ["--threads", "1" if device == "cpu" else "8"]
    if dry:
        train = ["data.num_train_samples=16384", "trainer.batch_size=2048", "data.num_eval_samples=16384"]
        default = ["--quick", "--batch-sizes", "512", "2048"]
        mlperf = ["--batch-sizes", "256", "--rounds", "1", "--window-samples", "512", "--profile-steps", "2"]
        cap = 1000
    else:
        train = ["data.num_train_samples=4194304", "trainer.batch_size=16384"]
        default = ["--batch-sizes", "2048", "16384", "65536", "--rounds", "3", "--window-samples", "131072",
                   "--profile-steps", "10", "--no-dist", "--no-cold"]
        mlperf = ["--batch-sizes", "65536", "--rounds", "3", "--window-samples", "262144", "--profile-steps", "5"]
        cap = MLPERF_CAP
    shapes = ["--set", *mlperf_overrides(cap)]
    common = [py, BENCH, "--device", device, *threads]
    return [
        {"name": "train", "weight": 2, "min_s": 30,
         "cmd": [py, "-m", "dlrm.train", f"trainer.device={device}", "trainer.progress_bar=false", *train]},
        {"name": "default", "weight": 5, "min_s": 60, "cmd": [*common, *default]},
        {"name": "mlperf", "weight": 4, "min_s": 60,
         "cmd": [*common, *mlperf, "--no-overhead", "--no-dist", "--cases", "harness", "harness_pipeline", "baseline",
                 *shapes]},
        {"name": "mlperf_tf32", "weight": 2, "min_s": 50,
         "cmd": [*common, *mlperf, "--profile-steps", "0", "--no-overhead", "--no-dist", "--tf32", "--cases",
                 "harness", "harness_pipeline", *shapes]},
    ]


def run_step(step: dict, out: Path, work: Path, timeout_s: float, log) -> dict:
    cmd = list(step["cmd"])
    if step["name"] == "train":
        run_dir = work / "train_run"
        cmd += [f"hydra.run.dir={run_dir}", f"out_root={work}"]
    else:
        cmd += ["--json", str(out / f"bench_{step['name']}.json")]
    log.write(f"\n===== {step['name']}: {' '.join(cmd)}  (limit {timeout_s:.0f} s)\n")
    log.flush()
    t0 = time.perf_counter()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    res = {"name": step["name"], "rc": rc, "seconds": time.perf_counter() - t0, "cmd": cmd}
    if step["name"] == "train":
        summary = run_dir / "summary.json"
        if summary.exists():
            s = json.loads(summary.read_text())
            (out / "train_summary.json").write_text(json.dumps(s, indent=2, sort_keys=True) + "\n")
            res["summary"] = {k: s.get(k) for k in ("status", "num_train_samples", "batch_size", "eval_ne", "bayes_ne",
                                                    "eval_auc", "train_samples_per_second", "setup_seconds",
                                                    "train_seconds", "eval_seconds", "wall_seconds", "error")}
    else:
        path = out / f"bench_{step['name']}.json"
        if path.exists() and rc == 0:
            res["bench"] = json.loads(path.read_text())
    log.write(f"===== {step['name']}: rc {rc} after {res['seconds']:.0f} s\n")
    log.flush()
    return res


def _m(sps: dict, case: str):
    return (sps.get(case) or {}).get("median")


def _r(x) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def table(results: dict, dry: bool, cap: int) -> str:
    lines = []
    m = next((r["bench"]["meta"] for r in results["steps"] if r.get("bench")), None)
    where = f"{m['device_name']}, torch {m['versions']['torch']}, torchrec {m['versions']['torchrec']}" if m else "?"
    lines.append(f"== GPU check: {where}{' -- DRY RUN: tiny sizes, the numbers mean nothing' if dry else ''} ==")
    for r in results["steps"]:
        lines.append(f"  step {r['name']:<12} rc {r['rc']!s:<8} {r['seconds']:6.0f} s")
    tr = next((r for r in results["steps"] if r["name"] == "train"), None)
    s = (tr or {}).get("summary")
    if s:
        lines.append(f"1. python -m dlrm.train: {s['status']}, {s['num_train_samples']} samples, batch "
                     f"{s['batch_size']}: eval NE {s['eval_ne']:.4f} (Bayes NE {s['bayes_ne']:.4f}), "
                     f"{_r(s['train_samples_per_second'])} samples/s (train_samples_per_second), setup "
                     f"{s['setup_seconds']:.1f} s, wall {s['wall_seconds']:.1f} s")
    elif tr:
        lines.append(f"1. python -m dlrm.train: no summary (rc {tr['rc']}); see logs.txt")
    lines.append("samples/s, median over rounds (fp32 unless TF32):")
    lines.append(f"  {'shapes':<44} {'batch':>6} {'step':>9} {'pipeline':>9} {'end2end':>9} {'baseline':>9} "
                 f"{'peak GiB':>8}")
    labels = {"default": "default: 26 tables, dim 16, width 64",
              "mlperf": f"MLPerf DLRM-DCNv2, tables capped at {cap:,}",
              "mlperf_tf32": "  same, TF32 matmuls"}
    for r in results["steps"]:
        if r["name"] not in labels:
            continue
        if not r.get("bench"):
            lines.append(f"  {labels[r['name']]:<44} (no result: rc {r['rc']}; see logs.txt)")
            continue
        for b, sec in sorted(r["bench"]["step"].items(), key=lambda kv: int(kv[0])):
            sps = sec["samples_per_second"]
            mem = sec.get("cuda_max_memory_allocated_gib")
            lines.append(f"  {labels[r['name']]:<44} {b:>6} {_r(_m(sps, 'harness')):>9} "
                         f"{_r(_m(sps, 'harness_pipeline')):>9} {_r(_m(sps, 'end_to_end')):>9} "
                         f"{_r(_m(sps, 'baseline')):>9} {'-' if mem is None else f'{mem:.1f}':>8}")
    lines.append("published single-GPU references (DLRM-DCNv2 at the MLPerf shapes, or nearest):")
    for ref in REFERENCES:
        figs = ", ".join(f"{_r(v)} ({k})" for k, v in ref["samples_per_second"].items())
        lines += [f"  {figs}: {ref['hardware']}, batch {ref['batch_size']}", f"    {ref['what']}", f"    {ref['url']}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="the same steps at tiny sizes (use with --device cpu)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cuda")
    p.add_argument("--budget-s", type=float, default=330.0, help="time for all steps together")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or REPO / "runs" / "gpu_check"))
    p.add_argument("--only", nargs="+", default=None, help="run only these steps")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    steps = [s for s in plan(args.dry_run, args.device) if args.only is None or s["name"] in args.only]
    deadline = time.monotonic() + args.budget_s
    results: dict = {"dry_run": args.dry_run, "device": args.device, "budget_s": args.budget_s,
                     "mlperf_cap": 1000 if args.dry_run else MLPERF_CAP, "references": REFERENCES, "steps": []}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as work, open(args.out / "logs.txt", "w") as log:
        for i, step in enumerate(steps):
            left = deadline - time.monotonic()
            share = left * step["weight"] / sum(s["weight"] for s in steps[i:])
            if left < step["min_s"]:
                results["steps"].append({"name": step["name"], "rc": "skipped", "seconds": 0.0,
                                         "why": f"{left:.0f} s of the budget left, {step['min_s']} s needed"})
                continue
            results["steps"].append(run_step(step, args.out, Path(work), max(share, step["min_s"]), log))
            print(f"gpu_check: {step['name']} rc {results['steps'][-1]['rc']} "
                  f"({results['steps'][-1]['seconds']:.0f} s)", flush=True)
    text = table(results, args.dry_run, results["mlperf_cap"])
    (args.out / "gpu_check.txt").write_text(text + "\n")
    for r in results["steps"]:  # each benchmark's own JSON is beside it
        r.pop("bench", None)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
    print(text)
    return 0 if all(r["rc"] == 0 for r in results["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
