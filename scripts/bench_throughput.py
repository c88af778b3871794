"""Training-throughput benchmark of the harness (docs/PERFORMANCE.md).

    .venv/bin/python scripts/bench_throughput.py [--quick] [--json OUT.json] [--threads N]
        [--device cpu|cuda] [--batch-sizes 512 2048] [--rounds N] [--no-dist] [--no-cold]
        [--no-overhead] [--set KEY=VALUE ...] [--cases NAME ...]

Measures, in one run, on the library's own functions (nothing re-typed, nothing patched):
 1. the training step `dlrm.steps.train_step` on the model, optimizer and plan of
    `dlrm.loop.build`, over batches of `Trainable.train_batch`, at the configured global
    batch (512) and 2048; also with sharding=table_wise, through TorchRec's
    TrainPipelineSparseDist, and at another thread count  (scripts/bench_step.py);
 2. a plain-PyTorch DLRM of the same shapes (nn.EmbeddingBag per table, sparse grads,
    torch.optim.Adagrad) as the baseline: ratio harness / baseline  (bench_baseline.py);
 3. the data source's generation throughput (train_arrays in chunks of the batch and of
    65536, and `train_batch`: + BatchMaker) and its ratio to the training step;
 4. end to end: `dlrm.batches.prefetch` + `train_batch` + the step, against the pure step;
 5. the fixed per-run overhead of a sweep job (`runner.job.launch` in a warm process,
    split by its summary.json) and of a cold `python -m dlrm.train`  (bench_overhead.py);
 6. 2 ranks against 1 rank (torchrun, table_wise, global batch split)  (bench_dist.py);
 7. achieved dense FLOP/s (flops_per_sample x samples/s) as a fraction of a float32
    torch.mm peak measured with the same thread count;
 and a torch.profiler summary of the harness and baseline steps  (report: bench_report.py).

Every comparison runs in one process, in windows interleaved round by round, and is
reported as the median over rounds with its spread [p25..p75]: the machine is shared.
`--threads` defaults to 1: on a 2-core machine with other load, 2 OpenMP threads stall
in barriers whenever a core is taken (the "threads" rows show it); pass --threads 2 on
an idle machine.  `--set` passes config overrides (Hydra syntax) to every model built,
e.g. other shapes; `--cases` times a subset of the step cases (the harness step always).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import bench_common as bc  # noqa: E402
from bench_dist import distributed_section, worker_main  # noqa: E402
from bench_overhead import overhead_section  # noqa: E402
from bench_report import TARGETS, evaluate_targets, render  # noqa: E402
from bench_step import STEP_CASES, step_section  # noqa: E402


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def parse_args(argv=None) -> argparse.Namespace:
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
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="config overrides for every model")
    p.add_argument("--cases", nargs="+", default=list(STEP_CASES), choices=STEP_CASES, metavar="CASE",
                   help=f"step cases to time (default all: {' '.join(STEP_CASES)})")
    p.add_argument("--no-dist", action="store_true", help="skip the torchrun 2-rank section")
    p.add_argument("--no-cold", action="store_true", help="skip the cold `python -m dlrm.train` start")
    p.add_argument("--no-overhead", action="store_true", help="skip the per-run overhead section")
    p.add_argument("--tf32", action="store_true", help="CUDA: TF32 matmuls (PyTorch's default, and training's, is fp32)")
    p.add_argument("--dist-repeats", type=int, default=2)
    p.add_argument("--dist-rounds", type=int, default=None)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads <= 0:
        args.threads = torch.get_num_threads()
    defaults = {"window_samples": (2048, 12288), "rounds": (2, 10), "dist_rounds": (2, 8), "profile_steps": (3, 20)}
    for key, (quick, full) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, quick if args.quick else full)
    if args.quick:
        args.no_dist = args.no_cold = True
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda but no CUDA device is visible")
    return args


def meta(args, device: torch.device) -> dict:
    import fbgemm_gpu
    import torchrec

    return {
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
        "overrides": list(args.set),
        "cases": list(args.cases),
        "tf32": args.tf32,
        "load_avg_start": _load(),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return worker_main(args)
    bc.quiet()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.tf32:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    t_start = time.perf_counter()
    if args.batch_sizes is None:
        from runner.compose import compose

        default_b = int(compose(args.set).trainer.batch_size)
        args.batch_sizes = [default_b] if args.quick else sorted({default_b, 2048})
    res: dict = {"meta": meta(args, device), "targets_spec": TARGETS, "step": {}, "skipped": []}
    for i, b in enumerate(args.batch_sizes):
        sec = step_section(args, device, b, profile=(i == 0 and args.profile_steps > 0))
        sec["rounds"] = args.rounds
        res["step"][str(b)] = sec
        gc.collect()  # the section's models go before the next one is built (GPU memory)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    res["profile"] = res["step"][str(args.batch_sizes[0])].get("profile", {})
    with tempfile.TemporaryDirectory(prefix="bench_throughput_") as tmp:
        if args.no_overhead:
            res["overhead"] = None
            res["skipped"].append("overhead")
        else:
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
    print(render(res), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
