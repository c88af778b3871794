"""summary.json of a completed run: every field of the contract (rundir/contract.py) but the
run's identity (rundir_version, status, run_name, seed), which its writer adds (rundir.write_summary)."""
from __future__ import annotations

from typing import Any

from dlrm.config import Config
from dlrm.data.teacher import StudentSize
from dlrm.model import (arch_depth, compute_doubling_sizes, flops_elasticities, flops_per_sample, hidden_width,
                        param_counts)
from dlrm.schedule import LR_SCHEDULE, LR_SCHEDULE_DEPENDS_ON_N
from dlrm.sharding import sharding_types_used, tables_per_rank


TRUTH_FIELDS = ("bayes_logloss", "bayes_ne", "bayes_logloss_realised", "bayes_ne_realised", "oracle_ne",
                "oracle_ne_realised", "planted_exponents")


def known_truth(source: Any, size: StudentSize) -> dict:
    """What the data's world knows of a model of `size` (floors, oracle, planted exponents);
    null for real data."""
    if hasattr(source, "known_truth"):
        return source.known_truth(size)
    return {k: None for k in TRUTH_FIELDS}


def run_summary(cfg: Config, t: Any, final_eval: dict, bookkeeping: dict) -> dict:
    """`t` is the run's loop.Trainable; `bookkeeping` the loop's counts and timings."""
    shape, source, tcfg = t.shape, t.source, cfg.trainer
    num_train = int(cfg.data.num_train_samples)
    fps = flops_per_sample(shape)
    dense_width = hidden_width(shape.dense_arch_layer_sizes)
    over_width = hidden_width(shape.over_arch_layer_sizes)
    summary = {
        "model": shape.name,
        "embedding_dim": shape.embedding_dim,
        "dense_arch_layer_sizes": list(shape.dense_arch_layer_sizes),
        "over_arch_layer_sizes": list(shape.over_arch_layer_sizes),
        "dense_arch_width": dense_width,
        "over_arch_width": over_width,
        "mlp_width": dense_width if dense_width == over_width else None,
        "mlp_depth": arch_depth(shape),  # the layers built, not the config's depth an explicit list overrides
        "dense_arch_output": shape.dense_arch_output,
        "data": cfg.data.name,
        "data_id": getattr(source, "data_id", None),
        "num_train_samples": num_train,
        "num_eval_samples": int(source.num_eval_samples),
        "batch_size": int(tcfg.batch_size),
        "embedding_optimizer": tcfg.embedding_optimizer,
        "embedding_lr": float(tcfg.embedding_lr),
        "dense_optimizer": tcfg.dense_optimizer,
        "dense_lr": float(tcfg.dense_lr),
        "lr_warmup_samples": int(tcfg.lr_warmup_samples),
        "lr_schedule": LR_SCHEDULE,
        "dense_precision": tcfg.dense_precision,
        "intermediate_evals_usable": not LR_SCHEDULE_DEPENDS_ON_N,
        **param_counts(shape),
        "flops_per_sample": fps,
        "train_flops": fps * num_train,
        "flops_elasticity": flops_elasticities(shape),
        "compute_doubling_x": compute_doubling_sizes(shape),
        "embedding_lookups_per_sample": shape.num_sparse_features,  # every feature is single-valued
        **final_eval,
        **known_truth(source, StudentSize(shape.embedding_dim, dense_width, over_width)),
        "world_size": t.info.world_size,
        "sharding_type": cfg.sharding.type,
        "sharding_types_used": sharding_types_used(t.plan),
        "tables_per_rank": {str(r): len(v) for r, v in sorted(tables_per_rank(t.plan).items())},
        **bookkeeping,
    }
    return summary
