"""Timing helpers of scripts/bench_throughput.py: interleaved timing windows, a matmul
peak, a torch.profiler summary and the number formats of the report.

Timing on a shared machine: every case that is compared with another runs in the same
process, in windows interleaved round by round (the order rotates each round), so that
a burst of load from another process hits all cases alike; ratios are taken per round
and summarised by their median, with the spread printed beside it.

The model, its batches and its step are never built here: they are the library's own
(`dlrm.loop.build`, `Trainable.train_batch`, `dlrm.steps.train_step`), composed from the
real config tree (`runner.compose.compose`, typed by `runner.compose.typed` as the library takes it).
"""
from __future__ import annotations

import logging
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
for _p in (str(REPO), str(SCRIPTS)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def quiet() -> None:
    """TorchRec / FBGEMM log every table at WARNING and torch 2.13 warns about deprecations."""
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    logging.basicConfig(level=logging.ERROR)
    for name in ("torchrec", "fbgemm_gpu", "torch", "root", "dlrm"):
        logging.getLogger(name).setLevel(logging.ERROR)


# ------------------------------------------------------------------------------- timing
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def summarize(values: Sequence[float]) -> dict:
    """Median and spread of repeated measurements."""
    v = sorted(float(x) for x in values)
    if not v:
        return {"median": None, "min": None, "max": None, "p25": None, "p75": None, "n": 0}
    q = statistics.quantiles(v, n=4, method="inclusive") if len(v) >= 2 else [v[0]] * 3
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "p25": q[0], "p75": q[2], "n": len(v)}


def interleaved(cases: dict[str, Callable[[], float]], rounds: int, warmup_rounds: int,
                device: torch.device) -> dict[str, list[float]]:
    """Run each case's window once per round, in an order rotated every round.

    A case is a callable that runs one window and returns the work it did (samples,
    FLOPs); the result is work per second of each measured window.
    """
    names = list(cases)
    rates: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup_rounds + rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            sync(device)
            t0 = time.perf_counter()
            work = cases[name]()
            sync(device)
            dt = time.perf_counter() - t0
            if r >= warmup_rounds:
                rates[name].append(work / dt)
    return rates


def ratios(num: Sequence[float], den: Sequence[float]) -> list[float]:
    """Per-round ratios (the two windows of one round saw about the same machine load)."""
    return [a / b for a, b in zip(num, den)]


def matmul_window(n: int, reps: int, device: torch.device) -> Callable[[], float]:
    """A window of `reps` float32 n x n torch.mm: returns its FLOPs."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)

    def run() -> float:
        for _ in range(reps):
            torch.mm(a, b, out=out)
        return 2.0 * n ** 3 * reps

    return run


# ----------------------------------------------------------------------------- profile
def profile_top(step: Callable[[], Any], steps: int, device: torch.device, k: int = 10) -> dict:
    """Top-k ops by self CPU time over `steps` calls of `step` (plus CUDA time on a GPU)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        sync(device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:k]
    top = [{"name": e.key, "self_cpu_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
            "self_cpu_pct": 100.0 * e.self_cpu_time_total / total, "calls_per_step": e.count / steps}
           for e in rows]
    out = {"steps": steps, "self_cpu_ms_per_step_total": total / 1e3 / steps, "top_self_cpu": top}
    if device.type == "cuda":
        dev_attr = "self_device_time_total" if hasattr(events[0], "self_device_time_total") else "self_cuda_time_total"
        gtotal = sum(getattr(e, dev_attr, 0.0) for e in events) or 1.0
        grows = sorted(events, key=lambda e: getattr(e, dev_attr, 0.0), reverse=True)[:k]
        out["self_device_ms_per_step_total"] = gtotal / 1e3 / steps
        out["top_self_device"] = [{"name": e.key, "self_device_ms_per_step": getattr(e, dev_attr) / 1e3 / steps,
                                   "self_device_pct": 100.0 * getattr(e, dev_attr) / gtotal} for e in grows]
    return out


# ------------------------------------------------------------------------------ format
def fmt_rate(x: Optional[float]) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def fmt_spread(s: dict, scale: float = 1.0, digits: int = 2) -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{s['median'] * scale:.{digits}f} [{s['p25'] * scale:.{digits}f}..{s['p75'] * scale:.{digits}f}]"


def fmt_rate_spread(s: dict) -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{fmt_rate(s['median'])} [{fmt_rate(s['p25'])}..{fmt_rate(s['p75'])}]"
