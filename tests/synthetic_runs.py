"""Synthetic run directories from a known law: a fixture generator for the analysis'
tests and its benchmark (scripts/bench_analysis.py), not part of the analysis itself.

Two writers, one per version of the run-dir contract (rundir/contract.py):

* Version 1 (`World`, `summary`, `write_run`, `demo_grid`, `write_sweep`): summaries
  without `rundir_version`, one MLP width for both MLPs.  The world is
  NE = bayes + A_model * params_total^-a + B * num_train_samples^-b, times independent
  log-normal noise per run, so along the data axis a series is exactly
  NE(D) = B D^-b + (bayes + A P^-a).
* Version 2 (`SchemeWorld`, `write_v2_sweep`, `v2_demo_grid`): the three scaling schemes
  of Ardalani et al. 2022 (embedding dim, top-MLP width, bottom-MLP width, plus both
  MLPs together), each with its own planted exponent, intermediate evals in
  metrics.jsonl at powers of two, seeds whose noise is shared along their trajectory,
  learning rates, `data_id` and `oracle_ne`.  See SchemeWorld.

Parameter counts and FLOPs are the model's own (dlrm.model: a ModelShape per synthetic
architecture, counted by param_counts and flops_per_sample), so the fixture and training
agree on what a model costs.  Nothing here is imported by the analysis pipeline (which
never imports dlrm or torch); it lives with the tests, in tests/, and imports numpy,
rundir and dlrm.model.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

import rundir
from dlrm.model import ModelShape, flops_per_sample, layer_sizes, param_counts

NUM_DENSE_FEATURES = 13
NUM_SPARSE_FEATURES = 26
TOTAL_IDS = 200_000  # rows over all embedding tables
BASE_RATE_ENTROPY = 0.5623351446188083  # entropy (nats) of a 25% click rate
# TOTAL_IDS spread over the tables as evenly as it divides (the first ones a row longer).
CARDINALITIES = tuple(TOTAL_IDS // NUM_SPARSE_FEATURES + (f < TOTAL_IDS % NUM_SPARSE_FEATURES)
                      for f in range(NUM_SPARSE_FEATURES))


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
    """Layer sizes, parameter counts and FLOPs of a DLRM-like model (one width for both MLPs)."""
    return architecture_widths(model, embedding_dim, mlp_width, mlp_width, mlp_depth)


def model_shape(model: str, embedding_dim: int, dense_width: int, over_width: int,
                mlp_depth: int = 3) -> ModelShape:
    """The dlrm.model shape of a synthetic architecture: layer sizes as training derives them
    (dlrm.model.layer_sizes), CARDINALITIES, NUM_DENSE_FEATURES, DCN's default cross layers."""
    dense = layer_sizes(embedding_dim, dense_width, mlp_depth)[0]
    over = layer_sizes(embedding_dim, over_width, mlp_depth)[1]
    return ModelShape(name=model, embedding_dim=embedding_dim, cardinalities=CARDINALITIES,
                      num_dense_features=NUM_DENSE_FEATURES, dense_arch_layer_sizes=tuple(dense),
                      over_arch_layer_sizes=tuple(over))


def architecture_widths(model: str, embedding_dim: int, dense_width: int, over_width: int,
                        mlp_depth: int = 3) -> dict:
    """Layer sizes, parameter counts and FLOPs with a bottom (dense arch) and a top (over
    arch) MLP of their own hidden widths, by the model's formula (dlrm.model)."""
    shape = model_shape(model, embedding_dim, dense_width, over_width, mlp_depth)
    return {
        "dense_arch_layer_sizes": list(shape.dense_arch_layer_sizes),
        "over_arch_layer_sizes": list(shape.over_arch_layer_sizes),
        **param_counts(shape),
        "flops_per_sample": flops_per_sample(shape),  # forward + backward of the dense part
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


# ============================================================================ version 2
@dataclass(frozen=True)
class SchemeWorld:
    """A planted world with one law per scaling scheme (contract version 2).

    NE(e, w_bottom, w_top, N, lr) = (bayes + A_e e^-a_e + A_bottom w_bottom^-a_bottom
                                     + A_top w_top^-a_top + B N^-b) * lr_penalty * noise

    so along each axis, everything else fixed, NE = alpha x^-beta + gamma holds exactly
    with beta the planted exponent of that axis.  With unlimited data the NE of a model is
    its capacity limit oracle_ne = bayes + the three capacity terms (the data law's gamma).
    When both MLPs are scaled together (mlp_width), w_bottom = w_top = mlp_width.

    Noise, all multiplicative (log-normal), seeded only by (seed, config) so that an
    intermediate eval of a long run equals the final eval of a shorter run of the same
    seed and config, as the contract promises:
      noise_seed   a per-seed offset shared by every run of the seed (its init/data luck),
      noise_walk   a random walk along each (seed, config) trajectory, one step per
                   doubling of samples (the shared noise of one-pass training),
      noise        independent noise per eval point.
    lr_penalty = 1 + lr_curvature * log(lr / lr_best)^2 for the dense learning rate.
    """

    bayes_ne: float = 0.70
    A_e: float = 0.10
    a_e: float = 0.60
    A_bottom: float = 0.10
    a_bottom: float = 0.40
    A_top: float = 0.20
    a_top: float = 0.50
    B: float = 4.0
    b: float = 0.33
    noise_seed: float = 0.001
    noise_walk: float = 0.0005
    noise: float = 0.0005
    lr_best: float = 0.01
    lr_curvature: float = 0.02
    model: str = "dlrm"
    data_id: str = "synthetic-v2-a1b2c3"

    def oracle(self, emb: float, w_bottom: float, w_top: float) -> float:
        return (self.bayes_ne + self.A_e * emb ** -self.a_e + self.A_bottom * w_bottom ** -self.a_bottom
                + self.A_top * w_top ** -self.a_top)

    def ne(self, emb, w_bottom, w_top, n, lr=None) -> float:
        ne = self.oracle(emb, w_bottom, w_top) + self.B * float(n) ** -self.b
        if lr is not None:
            ne *= 1.0 + self.lr_curvature * math.log(lr / self.lr_best) ** 2
        return ne

    def planted(self) -> dict[str, float]:
        """The planted exponent of each native axis."""
        return {"data": self.b, "embedding_dim": self.a_e, "dense_arch_width": self.a_bottom,
                "over_arch_width": self.a_top}


@dataclass(frozen=True)
class Config:
    """One model and optimiser configuration (everything but the seed and N)."""

    emb: int = 16
    w_bottom: int = 64
    w_top: int = 64
    both: bool = False  # scaled as one MLP width (mlp_width is set)
    lr: float = 0.01
    depth: int = 3

    def key(self) -> list:
        return [self.emb, self.w_bottom, self.w_top, int(self.both), int(round(self.lr * 1e6)), self.depth]

    @property
    def name(self) -> str:
        w = f"w{self.w_bottom}" if self.both else f"b{self.w_bottom}_t{self.w_top}"
        return f"e{self.emb}_{w}_lr{self.lr:g}"


def _trajectory_noise(world: SchemeWorld, seed: int, config: Config, exponents: list[int]) -> dict[int, float]:
    """log-noise at each 2^j of one (seed, config) trajectory: seed offset + walk + iid."""
    offset = world.noise_seed * np.random.default_rng([seed, 99]).normal()
    rng = np.random.default_rng([seed, *config.key()])
    out, walk = {}, 0.0
    for j in range(0, max(exponents) + 1):
        walk += world.noise_walk * rng.normal()
        iid = world.noise * rng.normal()
        if j in exponents:
            out[j] = offset + walk + iid
    return out


def v2_summary(world: SchemeWorld, config: Config, n: int, seed: int, *, ne: float,
               intermediate_evals_usable: bool = True, status: str = "completed") -> dict:
    arch = architecture_widths(world.model, config.emb, config.w_bottom, config.w_top, config.depth)
    throughput = 4e9 / (arch["flops_per_sample"] + 2e4)
    oracle = world.oracle(config.emb, config.w_bottom, config.w_top)
    return {
        "rundir_version": rundir.RUNDIR_VERSION, "status": status,
        "run_name": f"{config.name}_n{n}_s{seed}", "seed": seed, "model": world.model,
        "embedding_dim": config.emb, **arch,
        "dense_arch_width": config.w_bottom, "over_arch_width": config.w_top,
        "mlp_width": config.w_bottom if config.both else None, "mlp_depth": config.depth,
        "data": "synthetic", "data_id": world.data_id, "num_train_samples": n, "num_eval_samples": 65536,
        "batch_size": 512, "embedding_optimizer": "row_wise_adagrad", "embedding_lr": config.lr,
        "dense_optimizer": "adagrad", "dense_lr": config.lr, "lr_warmup_samples": 0,
        "lr_schedule": "constant", "intermediate_evals_usable": intermediate_evals_usable,
        "train_flops": arch["flops_per_sample"] * n,
        "eval_ne": ne, "eval_logloss": ne * BASE_RATE_ENTROPY, "eval_ne_stderr": 0.002,
        "eval_auc": 0.75, "eval_calibration": 1.0, "eval_ctr": 0.25,
        "train_loss_last": ne * BASE_RATE_ENTROPY * 1.01,
        "bayes_ne": world.bayes_ne, "bayes_logloss": world.bayes_ne * BASE_RATE_ENTROPY,
        "oracle_ne": oracle,
        "planted_exponents": {k: v for k, v in world.planted().items() if k != "data"},
        "world_size": 1, "sharding_type": "table_wise", "sharding_types_used": ["table_wise"],
        "tables_per_rank": {"0": NUM_SPARSE_FEATURES}, "embedding_lookups_per_sample": NUM_SPARSE_FEATURES, "steps": max(1, n // 512),
        "wall_seconds": n / throughput + 2.0, "setup_seconds": 2.0, "train_seconds": n / throughput,
        "train_samples_per_second": throughput, "resumed_from_samples": 0,
        "checkpoints_written": 0, "checkpoint_seconds": 0.0,
    }


def write_v2_run(root: Path, world: SchemeWorld, config: Config, n: int, seed: int, *,
                 first_eval_exponent: int = 10, intermediate_evals_usable: bool = True,
                 status: str = "completed", with_metrics_kind: bool = True) -> dict:
    """One version-2 run dir of `n` samples: metrics.jsonl with train points and an eval
    at every power of two from 2^first_eval_exponent up to n (the last one `final`), and
    summary.json from the final eval.  Returns the summary."""
    n_exp = int(round(math.log2(n)))
    exps = list(range(min(first_eval_exponent, n_exp), n_exp + 1))
    noise = _trajectory_noise(world, seed, config, exps)
    nes = {j: world.ne(config.emb, config.w_bottom, config.w_top, 2 ** j, config.lr) * math.exp(noise[j])
           for j in exps}
    s = v2_summary(world, config, n, seed, ne=nes[n_exp], intermediate_evals_usable=intermediate_evals_usable,
                   status=status)
    run_dir = Path(root) / s["run_name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / rundir.CONFIG_FILE).write_text(
        f"model:\n  embedding_dim: {config.emb}\n  dense_arch_width: {config.w_bottom}\n"
        f"  over_arch_width: {config.w_top}\ndata:\n  num_train_samples: {n}\nseed: {seed}\n")
    lines = []
    for j in exps:
        samples = 2 ** j
        lines.append({"kind": rundir.POINT_TRAIN, "step": samples // 512, "samples_seen": samples,
                      "train_loss": nes[j] * BASE_RATE_ENTROPY, "lr": config.lr})
        point = {"kind": rundir.POINT_EVAL, "step": samples // 512, "samples_seen": samples,
                 "eval_ne": nes[j], "eval_logloss": nes[j] * BASE_RATE_ENTROPY, "eval_auc": 0.75,
                 "eval_ne_stderr": 0.002, "final": j == n_exp}
        if not with_metrics_kind:
            point.pop("kind")
            point.pop("final")
        lines.append(point)
    if status != "completed":
        lines = lines[: len(lines) // 2]
    (run_dir / rundir.METRICS_FILE).write_text("".join(json.dumps(p) + "\n" for p in lines))
    (run_dir / rundir.SUMMARY_FILE).write_text(json.dumps(s))
    return s


def v2_demo_grid(emb=(4, 8, 16, 32, 64), bottom=(16, 32, 64, 128, 256), top=(16, 32, 64, 128, 256),
                 base=Config(), both: Iterable[int] = ()) -> dict[str, list[Config]]:
    """The demo design: each scheme over its values sharing one base point (and, with
    `both`, both MLP widths together).  {scheme: [Config, ...]}, the base in each."""
    out = {
        "embedding_dim": [Config(emb=e, w_bottom=base.w_bottom, w_top=base.w_top, lr=base.lr) for e in emb],
        "dense_arch_width": [Config(emb=base.emb, w_bottom=w, w_top=base.w_top, lr=base.lr) for w in bottom],
        "over_arch_width": [Config(emb=base.emb, w_bottom=base.w_bottom, w_top=w, lr=base.lr) for w in top],
    }
    if both:
        out["mlp_width"] = [Config(emb=base.emb, w_bottom=w, w_top=w, both=True, lr=base.lr) for w in both]
    return out


def write_v2_sweep(root: Path, world: SchemeWorld = SchemeWorld(), *, n_max: int = 2 ** 20,
                   data_seeds=(0, 1, 2), scheme_seeds=(0, 1), grid: Optional[dict] = None,
                   separate_sizes: Iterable[int] = (), lrs: Iterable[float] = (),
                   first_eval_exponent: int = 10, intermediate_evals_usable: bool = True) -> list[dict]:
    """The demo's shape: the base model at n_max with `data_seeds` (its intermediate evals
    are the data axis), every scheme's configs at n_max with `scheme_seeds`; optionally
    separate shorter runs of the base (`separate_sizes`) and the base again at other
    learning rates (`lrs`).  Returns the summaries."""
    grid = v2_demo_grid() if grid is None else grid
    base = Config()
    jobs: dict[tuple, None] = {}
    for seed in data_seeds:
        jobs[(base, n_max, seed)] = None
        for n in separate_sizes:
            jobs[(base, int(n), seed)] = None
        for lr in lrs:
            jobs[(Config(lr=lr), n_max, seed)] = None
    for configs in grid.values():
        for c in configs:
            for seed in scheme_seeds:
                jobs[(c, n_max, seed)] = None
    return [write_v2_run(root, world, c, n, seed, first_eval_exponent=first_eval_exponent,
                         intermediate_evals_usable=intermediate_evals_usable)
            for (c, n, seed) in jobs]


def write_v2_grid_sweep(root: Path, world: SchemeWorld = SchemeWorld(), *, configs: list[Config],
                        sizes: Iterable[int], seeds=(0,), first_eval_exponent: Optional[int] = None) -> list[dict]:
    """Every config at every size as separate runs (no intermediate evals unless asked):
    the benchmark's shape."""
    out = []
    for c in configs:
        for n in sizes:
            for seed in seeds:
                fe = first_eval_exponent if first_eval_exponent is not None else int(round(math.log2(n)))
                out.append(write_v2_run(root, world, c, int(n), seed, first_eval_exponent=fe))
    return out
