"""Smoke test of the throughput benchmark: `scripts/bench_throughput.py --quick` runs every
in-process section at tiny sizes (the torchrun and cold-start sections are skipped) and
writes a JSON with every field docs/PERFORMANCE.md describes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

STEP_CASES = ["harness", "harness_table_wise", "harness_pipeline", "harness_alt_threads", "harness_bf16", "baseline",
              "end_to_end", "end_to_end_alt_threads", "end_to_end_cached", "gen_chunk_batch", "gen_chunk_batch_kjt",
              "gen_chunk_65536", "gen_cached_batch_kjt"]
RATIOS = ["harness_vs_baseline", "harness_table_wise_vs_baseline", "harness_pipeline_vs_baseline",
          "harness_alt_threads_vs_harness", "harness_bf16_vs_harness", "end_to_end_vs_step",
          "end_to_end_alt_threads_vs_step", "end_to_end_cached_vs_step", "cached_generation_vs_training",
          "generation_vs_training", "generation_arrays_only_vs_training", "generation_65536_vs_training"]
SPREAD = ["median", "min", "max", "p25", "p75", "n"]
LAUNCH = ["wall_s", "to_first_step_s", "before_train_s", "setup_s", "train_s", "after_train_s", "overhead_s",
          "train_samples_per_second"]


def _positive_spread(s: dict) -> None:
    assert set(SPREAD) <= s.keys()
    assert s["n"] >= 1 and s["median"] > 0 and s["p25"] <= s["median"] <= s["p75"]


def test_quick_benchmark_writes_every_field(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "scripts/bench_throughput.py", "--quick", "--json", str(out)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "== targets ==" in proc.stdout and "harness step" in proc.stdout
    res = json.loads(out.read_text())

    assert {"meta", "targets_spec", "step", "overhead", "distributed", "profile", "targets", "skipped"} <= res.keys()
    assert res["meta"]["quick"] is True and res["meta"]["threads"] == 1
    assert {"torch", "torchrec", "fbgemm_gpu"} <= res["meta"]["versions"].keys()

    sec = res["step"]["512"]
    assert sec["batch_size"] == 512 and sec["flops_per_sample"] > 0 and sec["params_total"] > 0
    assert set(STEP_CASES) <= sec["samples_per_second"].keys()
    for case in STEP_CASES:
        _positive_spread(sec["samples_per_second"][case])
    assert set(RATIOS) <= sec["ratios"].keys()
    for name in RATIOS:
        _positive_spread(sec["ratios"][name])
    roof = sec["roofline"]
    for key in ("dense_flops_per_second", "matmul_peak_flops_per_second", "fraction_of_peak",
                "baseline_fraction_of_peak"):
        _positive_spread(roof[key])
    assert 0 < roof["fraction_of_peak"]["median"] < 1.5

    for who in ("harness", "baseline"):
        top = res["profile"][who]["top_self_cpu"]
        assert len(top) == 10
        assert all({"name", "self_cpu_ms_per_step", "self_cpu_pct", "calls_per_step"} <= row.keys() for row in top)

    o = res["overhead"]
    for key in ("in_process_first", "in_process_warm", "loop_train"):
        assert set(LAUNCH) <= o[key].keys(), key
        assert o[key]["to_first_step_s"] > 0 and o[key]["train_s"] > 0
    assert {"in_process_warm_default_eval", "cold_subprocess"} <= o.keys()  # null in quick mode
    assert res["distributed"]["skipped"] and set(res["skipped"]) == {"cold_subprocess", "distributed"}

    assert set(res["targets"]) == {"harness_vs_baseline@512", "end_to_end_vs_step@512", "end_to_end_cached_vs_step@512",
                                   "generation_vs_training@512", "fraction_of_peak@512", "run_overhead_in_sweep_s"}
    assert all(t["verdict"] in ("MET", "MISSED") for t in res["targets"].values())


def test_gpu_check_dry_run_on_cpu(tmp_path):
    """scripts/gpu_check.sh --dry-run: the training run through `python -m dlrm.train` and the
    benchmark at the MLPerf DLRM-DCNv2 shapes (tables capped tiny), on the CPU (~20 s)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DEVICE": "cpu", "PY": sys.executable, "OUT": str(tmp_path)}
    proc = subprocess.run(["bash", "scripts/gpu_check.sh", "--dry-run", "--only", "train", "mlperf"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + (tmp_path / "logs.txt").read_text()[-3000:]
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert [(s["name"], s["rc"]) for s in res["steps"]] == [("train", 0), ("mlperf", 0)]
    train = json.loads((tmp_path / "train_summary.json").read_text())
    assert train["status"] == "completed" and 0 < train["eval_ne"] < 2
    sec = json.loads((tmp_path / "bench_mlperf.json").read_text())["step"]["256"]
    assert sec["model"] == "dcn" and sec["embedding_dim"] == 128
    for case in ("harness", "harness_pipeline", "baseline"):
        _positive_spread(sec["samples_per_second"][case])
    text = (tmp_path / "gpu_check.txt").read_text()
    assert "MLPerf DLRM-DCNv2" in text and "NVIDIA/DeepLearningExamples" in text


def test_analysis_benchmark_judges_the_median_of_its_repeats():
    """`scripts/bench_analysis.py` at a tiny bootstrap: every run dir analysed twice, the
    line names the median and the range, and a bad --repeat is refused before any work."""
    cmd = [sys.executable, "scripts/bench_analysis.py", "--bootstrap", "10", "--no-plots", "--repeat", "2",
           "--jobs", "1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = proc.stdout.strip().splitlines()[-1]
    assert "200 runs, 25 data series of 8 sizes" in line and "median of 2; wall" in line
    assert line.endswith(": OK)") or line.endswith(": SLOWER THAN TARGET)")
    bad = subprocess.run(cmd[:-4] + ["--repeat", "0"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--repeat must be >= 1" in bad.stderr
