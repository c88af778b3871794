"""Building blocks of scripts/bench_throughput.py: the harness's model built exactly as
`dlrm.loop.train` builds it, a plain-PyTorch DLRM of the same shapes as the baseline,
interleaved timing windows, a matmul peak and a torch.profiler summary.

Timing on a shared machine: every case that is compared with another runs in the same
process, in windows interleaved round by round (the order rotates each round), so that
a burst of load from another process hits all cases alike; ratios are taken per round
and summarised by their median, with the spread printed beside it.
"""
from __future__ import annotations

import logging
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def quiet() -> None:
    """TorchRec / FBGEMM log every table at WARNING and torch 2.13 warns about deprecations."""
    for category in (FutureWarning, DeprecationWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category)
    logging.basicConfig(level=logging.ERROR)
    for name in ("torchrec", "fbgemm_gpu", "torch", "root", "dlrm"):
        logging.getLogger(name).setLevel(logging.ERROR)


def compose(overrides: Sequence[str] = ()):
    """The harness's config, composed as `python -m dlrm.train` composes it."""
    from hydra import compose as hydra_compose, initialize_config_dir

    from sweeps import naming

    naming.register_resolvers()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


# --------------------------------------------------------------------------- the harness
@dataclass
class Harness:
    cfg: Any
    info: Any
    source: Any
    shape: Any
    model: Any  # DistributedModelParallel(DLRMTrain)
    optimizer: Any  # CombinedOptimizer: fused embedding optimizer + dense optimizer
    plan: Any
    maker: Any  # dlrm.batches.BatchMaker

    def batches(self, first_sample: int, batch_size: int, count: int) -> list:
        """`count` of this rank's batches of consecutive global batches, as the loop makes them."""
        from dlrm.batches import rank_slice

        out = []
        for i in range(count):
            lo, hi = rank_slice(first_sample + i * batch_size, batch_size, self.info.rank, self.info.world_size)
            out.append(self.maker(self.source.train_arrays(lo, hi)))
        return out


def build_harness(cfg, device_type: str = "cpu", source=None) -> Harness:
    """Model, optimizer and BatchMaker exactly as dlrm/loop.py:train builds them."""
    from torchrec.models.dlrm import DLRMTrain

    from dlrm import distributed
    from dlrm.batches import BatchMaker
    from dlrm.data import make_source
    from dlrm.model import build_model, shape_from_config
    from dlrm.sharding import init_tables, shard

    info = distributed.init(device_type)
    tcfg = cfg.trainer
    if tcfg.num_threads:
        torch.set_num_threads(int(tcfg.num_threads))
    source = source if source is not None else make_source(cfg.data, cfg.seed)
    shape = shape_from_config(cfg.model, source.cardinalities, source.num_dense_features)
    torch.manual_seed(cfg.seed)
    model = DLRMTrain(build_model(shape, info.device))
    table_names = [c.name for c in model.model.sparse_arch.embedding_bag_collection.embedding_bag_configs()]
    model, optimizer, plan = shard(model, tcfg, cfg.sharding.type, info, table_names)
    init_tables(model, int(cfg.seed))
    maker = BatchMaker(shape.num_sparse_features, info.device)
    return Harness(cfg, info, source, shape, model, optimizer, plan, maker)


def harness_step(model, optimizer, batch) -> torch.Tensor:
    """The loop's step: forward, backward (fused embedding update inside), dense step, zero_grad."""
    loss, _ = model(batch)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss


# -------------------------------------------------------------------------- the baseline
class BaselineDLRM(nn.Module):
    """Plain PyTorch DLRM of the harness's shapes: one nn.EmbeddingBag per table (sum,
    sparse gradients), TorchRec's MLP layout (ReLU after every dense-arch layer and every
    over-arch layer but the last) and dot interaction (bmm of the (F+1) x D matrix, the
    strict upper triangle taken as `Z[:, li, lj]` -- as the reference DLRM
    (facebookresearch/dlrm) and TorchRec's InteractionArch do -- concatenated with the
    dense output).  The dense work is thus the harness's, op for op; the two differ in
    the embeddings, their optimizer and the runtime around them."""

    def __init__(self, shape, device: torch.device):
        super().__init__()
        d = shape.embedding_dim
        self.tables = nn.ModuleList(
            nn.EmbeddingBag(c, d, mode="sum", sparse=True, device=device) for c in shape.cardinalities)
        layers: list[nn.Module] = []
        n = shape.num_dense_features
        for size in shape.dense_arch_layer_sizes:
            layers += [nn.Linear(n, size, device=device), nn.ReLU()]
            n = size
        self.dense_arch = nn.Sequential(*layers)
        f1 = shape.num_sparse_features + 1
        n = d + f1 * (f1 - 1) // 2
        layers = []
        for size in shape.over_arch_layer_sizes[:-1]:
            layers += [nn.Linear(n, size, device=device), nn.ReLU()]
            n = size
        layers.append(nn.Linear(n, shape.over_arch_layer_sizes[-1], device=device))
        self.over_arch = nn.Sequential(*layers)
        rows, cols = torch.triu_indices(f1, f1, offset=1, device=device)
        self.register_buffer("triu_rows", rows, persistent=False)
        self.register_buffer("triu_cols", cols, persistent=False)
        self.loss_fn = nn.BCEWithLogitsLoss()

    def forward(self, dense: torch.Tensor, sparse_fm: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`sparse_fm`: [F, B] ids, feature-major, one id per (feature, sample)."""
        x_dense = self.dense_arch(dense)
        pooled = [table(sparse_fm[f].unsqueeze(1)) for f, table in enumerate(self.tables)]
        x = torch.stack([x_dense] + pooled, dim=1)  # [B, F+1, D]
        z = torch.bmm(x, x.transpose(1, 2))[:, self.triu_rows, self.triu_cols]
        logits = self.over_arch(torch.cat([x_dense, z], dim=1)).squeeze(1)
        return self.loss_fn(logits, labels)


@dataclass
class Baseline:
    model: BaselineDLRM
    optimizers: list

    def step(self, batch) -> torch.Tensor:
        loss = self.model(*batch)
        loss.backward()
        for opt in self.optimizers:
            opt.step()
        for opt in self.optimizers:
            opt.zero_grad()
        return loss


def build_baseline(shape, trainer_cfg, device: torch.device) -> Baseline:
    model = BaselineDLRM(shape, device)
    dense = [p for name, p in model.named_parameters() if not name.startswith("tables.")]
    emb = torch.optim.Adagrad(list(model.tables.parameters()), lr=float(trainer_cfg.embedding_lr), eps=1e-8)
    dense_opt = torch.optim.Adagrad(dense, lr=float(trainer_cfg.dense_lr))
    return Baseline(model, [emb, dense_opt])


def baseline_batch(arrays, device: torch.device) -> tuple:
    return (torch.from_numpy(arrays.dense).to(device),
            torch.from_numpy(np.ascontiguousarray(arrays.sparse.T)).to(device),
            torch.from_numpy(arrays.labels).to(device))


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


def fmt_rate(x: Optional[float]) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f}M" if x >= 1e6 else f"{x / 1e3:.1f}k"


def fmt_spread(s: dict, scale: float = 1.0, digits: int = 2) -> str:
    if not s or s.get("median") is None:
        return "-"
    return f"{s['median'] * scale:.{digits}f} [{s['p25'] * scale:.{digits}f}..{s['p75'] * scale:.{digits}f}]"
