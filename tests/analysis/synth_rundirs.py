"""Write run directories (DESIGN.md contract) whose NE follows a known law.

The world:  NE = bayes + A_model * params_total^-a + B * num_train_samples^-b, times
log-normal seed noise.  Along the data axis a series is then exactly
NE(D) = B D^-b + (bayes + A P^-a), so the fitted alpha, beta, gamma are known.
Used by the tests and by scripts/bench_analysis.py.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

NUM_DENSE_FEATURES = 13
NUM_SPARSE_FEATURES = 26
TOTAL_IDS = 200_000  # rows over all embedding tables
BASE_RATE_ENTROPY = 0.5623351446188083  # entropy (nats) of a 25% click rate


@dataclass(frozen=True)
class World:
    bayes_ne: float = 0.70
    A: tuple[tuple[str, float], ...] = (("dlrm", 0.89), ("dcn", 0.70))
    a: float = 0.30
    B: float = 4.0
    b: float = 0.33
    noise: float = 0.003  # relative (log-normal) NE noise between seeds

    def A_of(self, model: str) -> float:
        return dict(self.A)[model]

    def ne(self, model: str, params_total: float, num_train_samples: float) -> float:
        return (self.bayes_ne + self.A_of(model) * params_total ** -self.a
                + self.B * num_train_samples ** -self.b)


def architecture(model: str, embedding_dim: int, mlp_width: int, mlp_depth: int = 3) -> dict:
    """Layer sizes, parameter counts and FLOPs of a DLRM-like model."""
    dense = [mlp_width] * (mlp_depth - 1) + [embedding_dim]
    n_vec = NUM_SPARSE_FEATURES + 1
    interaction = n_vec * (n_vec - 1) // 2 if model == "dlrm" else n_vec * embedding_dim
    over = [mlp_width] * (mlp_depth - 1) + [1]
    params_dense = 0
    for fan_in, layers in ((NUM_DENSE_FEATURES, dense), (embedding_dim + interaction, over)):
        for width in layers:
            params_dense += (fan_in + 1) * width
            fan_in = width
    if model == "dcn":  # low-rank cross layers
        params_dense += 3 * 2 * (n_vec * embedding_dim) * 16
    params_embedding = TOTAL_IDS * embedding_dim
    return {
        "dense_arch_layer_sizes": dense,
        "over_arch_layer_sizes": over,
        "params_embedding": params_embedding,
        "params_dense": params_dense,
        "params_total": params_embedding + params_dense,
        "flops_per_sample": 6 * params_dense,  # forward + backward of the dense part
    }


def summary(world: World, model: str, embedding_dim: int, mlp_width: int, num_train_samples: int,
            seed: int, *, mlp_depth: int = 3, data: str = "synthetic",
            rng: Optional[np.random.Generator] = None, status: str = "completed") -> dict:
    arch = architecture(model, embedding_dim, mlp_width, mlp_depth)
    if rng is None:  # noise independent between runs, reproducible per run
        rng = np.random.default_rng([seed, embedding_dim, mlp_width, num_train_samples, zlib.crc32(model.encode())])
    ne = world.ne(model, arch["params_total"], num_train_samples) * math.exp(rng.normal(0, world.noise))
    throughput = 4e9 / (arch["flops_per_sample"] + 2e4)
    return {
        "status": status, "run_name": f"{model}_e{embedding_dim}_w{mlp_width}_n{num_train_samples}_s{seed}",
        "seed": seed, "model": model, "world_size": 1, "data": data, "mlp_depth": mlp_depth,
        "embedding_dim": embedding_dim, "mlp_width": mlp_width, "num_train_samples": num_train_samples,
        **arch,
        "train_flops": arch["flops_per_sample"] * num_train_samples,
        "eval_ne": ne, "eval_logloss": ne * BASE_RATE_ENTROPY, "eval_auc": 0.75,
        "eval_ne_stderr": 0.002, "train_loss_last": ne * BASE_RATE_ENTROPY * 1.01,
        "bayes_ne": world.bayes_ne, "bayes_logloss": world.bayes_ne * BASE_RATE_ENTROPY,
        "wall_seconds": num_train_samples / throughput, "train_samples_per_second": throughput,
        "batch_size": 512, "sharding": "table_wise",
    }


def write_run(root: Path, name: str, summary_fields: Optional[dict] = None, *,
              summary_text: Optional[str] = None, config: bool = True, metrics: bool = True) -> Path:
    """One run dir; `summary_text` writes summary.json verbatim (to corrupt it)."""
    run_dir = Path(root) / name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ".hydra").mkdir(exist_ok=True)
    if config:
        s = summary_fields or {}
        (run_dir / "config.yaml").write_text(
            "model:\n  name: {}\n  embedding_dim: {}\n  mlp_width: {}\n"
            "data:\n  num_train_samples: {}\nseed: {}\n".format(
                s.get("model"), s.get("embedding_dim"), s.get("mlp_width"),
                s.get("num_train_samples"), s.get("seed")))
    if metrics:
        with open(run_dir / "metrics.jsonl", "w") as f:
            f.write(json.dumps({"step": 10, "samples_seen": 5120, "train_loss": 0.6}) + "\n")
            if summary_fields and summary_fields.get("status") == "completed":
                f.write(json.dumps({"step": 20, "samples_seen": 10240, "train_loss": 0.5,
                                    "eval_logloss": summary_fields.get("eval_logloss"),
                                    "eval_ne": summary_fields.get("eval_ne"), "eval_auc": 0.75}) + "\n")
    if summary_text is not None:
        (run_dir / "summary.json").write_text(summary_text)
    elif summary_fields is not None:
        (run_dir / "summary.json").write_text(json.dumps(summary_fields))
    return run_dir


def demo_grid(models=("dlrm", "dcn"), data_exponents=range(13, 21), small=(16, 128), large=(64, 512),
              embedding_dims=(8, 16, 32, 64), mlp_widths=(64, 128, 256, 512)) -> list[tuple]:
    """The demo sweep: data sizes at two model sizes, then embedding dims and MLP widths
    (around the small model) at the largest data size.  (model, emb, width, samples)."""
    points = []
    d_max = 2 ** max(data_exponents)
    for model in models:
        for emb, width in (small, large):
            points += [(model, emb, width, 2 ** e) for e in data_exponents]
        points += [(model, e, small[1], d_max) for e in embedding_dims]
        points += [(model, small[0], w, d_max) for w in mlp_widths]
    return sorted(set(points))


def write_sweep(root: Path, world: World = World(), seeds=(0,), grid=None) -> list[dict]:
    """Completed runs of `grid` (default demo_grid()) for every seed; returns summaries."""
    out = []
    for model, emb, width, n in grid if grid is not None else demo_grid():
        for seed in seeds:
            s = summary(world, model, emb, width, n, seed)
            write_run(root, s["run_name"], s)
            out.append(s)
    return out
