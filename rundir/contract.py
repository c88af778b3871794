"""The run directory: every file, status and summary field, named once (docs/RUNDIR.md).

Training writes a run dir, the app reads its status to skip or resume, the analysis reads
its summary and eval points.  All three import these names from here, and this package
needs nothing but the standard library, so the analysis never loads torch or `dlrm`.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Optional

# ------------------------------------------------------------------------------ files
CONFIG_FILE = "config.yaml"  # the fully resolved config, written once at the start
METRICS_FILE = "metrics.jsonl"  # one JSON object per train-log or eval point, appended and flushed
SUMMARY_FILE = "summary.json"  # written last and atomically: its status says how the run ended
ENV_FILE = "env.json"  # versions, git commit, device, world size, host
CHECKPOINT_DIR = "checkpoint"  # what a restart needs; removed once the summary says completed
LOCK_FILE = ".lock"  # held by the one process that trains the run dir
# The data a run trains on ({"data": name, "data_id": ...}), written with config.yaml: a
# relaunch on other data (another data.path) is refused, never resumed or skipped.
DATA_FILE = "data.json"
# A rank's own error (not a lost peer), left by that rank for whoever writes the summary:
# the launcher under launcher=torchrun, global rank 0 under a torchrun started by hand.
RANK_ERROR_FILE = "error.rank{rank}.json"
# A directory holding any of these is a run dir (a sweep root holds only run dirs).
RUN_MARKERS = (CONFIG_FILE, SUMMARY_FILE, METRICS_FILE)

# The version of this contract a summary was written under; summaries without the field
# are version 1 (before the field existed) and still analyse.
RUNDIR_VERSION = 2


class Status(str, Enum):
    """How a job ended.  The first four are written to summary.json; the last four are
    the launcher's own outcomes for a job it did not train, and are never written."""

    COMPLETED = "completed"  # a data point
    FAILED = "failed"  # an exception (the summary has `error` and `traceback`)
    DIVERGED = "diverged"  # a non-finite loss or final eval (`diverged_step`)
    INTERRUPTED = "interrupted"  # preempted: checkpointed, to be resumed by a relaunch
    SKIPPED = "skipped"  # completed before with the same config: nothing to do
    LOCKED = "locked"  # another process is training this run dir right now
    CONFLICT = "conflict"  # the run dir holds a run of another config or other data: left untouched
    REFUSED = "refused"  # this job's config is invalid and the run dir holds a run: left untouched

    def __str__(self) -> str:
        return self.value

    __hash__ = str.__hash__  # hash like the string it equals, so {"completed"} holds Status.COMPLETED


# Written into summary.json; the others are the launcher's outcomes only.
SUMMARY_STATUSES = (Status.COMPLETED, Status.FAILED, Status.DIVERGED, Status.INTERRUPTED)
LAUNCHER_OUTCOMES = (Status.SKIPPED, Status.LOCKED, Status.CONFLICT, Status.REFUSED)
# A relaunch retries these only when asked (retry_failed=true).
FAILED_STATUSES = (Status.FAILED, Status.DIVERGED)
# A sweep whose jobs end in one of these did not do all its work: it exits non-zero.
NOT_DONE_STATUSES = (Status.FAILED, Status.DIVERGED, Status.INTERRUPTED, Status.LOCKED, Status.CONFLICT,
                     Status.REFUSED)

# ----------------------------------------------------------------------- summary.json
# The training setup beside the model: runs that differ in one of these are never pooled as
# seeds of one point nor as points of one series (analysis.points, analysis.series, analysis.pipeline).
TRAINING_SETUP_FIELDS = ("batch_size", "embedding_optimizer", "dense_optimizer", "lr_warmup_samples", "lr_schedule",
                         "dense_precision")
# Every field a completed run's summary holds, with its meaning.  docs/RUNDIR.md lists the
# same fields (a test holds the two equal), and the training loop writes exactly these.
SUMMARY_FIELDS: dict[str, str] = {
    # identity
    "rundir_version": "the version of this contract the run was written under",
    "status": "completed | failed | diverged | interrupted",
    "run_name": "the run dir's name (stable: built from the swept values)",
    "seed": "the run's seed: model initialisation and the order of the training stream",
    # the model: every scaling scheme's own axis
    "model": "architecture: dlrm (dot interaction) or dcn (DLRM_DCN)",
    "embedding_dim": "embedding dimension of every table",
    "dense_arch_layer_sizes": "the bottom MLP (dense arch), a list of layer widths",
    "over_arch_layer_sizes": "the top MLP (over arch), a list of layer widths ending in 1",
    "dense_arch_width": "the bottom MLP's hidden width (null without a hidden layer)",
    "over_arch_width": "the top MLP's hidden width (null without a hidden layer)",
    "mlp_width": "the width both MLPs share when they are scaled together (null when they differ)",
    "mlp_depth": "layers per MLP",
    "dense_arch_output": "the dense arch's output layer: relu (TorchRec's DenseArch) or linear",
    # the data
    "data": "data set name: synthetic, synthetic_saturating, criteo_kaggle, criteo_1tb",
    "data_id": "identity of the data: a hash of the world's spec, or of the preprocessed metadata",
    "num_train_samples": "data size N: one pass over the first N samples of the run's stream",
    "num_eval_samples": "size of the fixed eval set shared by every run on this data",
    # optimisation: runs that differ here are never pooled as seeds of one point
    "batch_size": "global batch size",
    "embedding_optimizer": "the fused embedding optimizer",
    "embedding_lr": "its learning rate",
    "dense_optimizer": "the dense (MLP) optimizer",
    "dense_lr": "its learning rate",
    "lr_warmup_samples": "linear warm-up of both learning rates, in samples",
    "lr_schedule": "the schedule after warm-up (constant: independent of N)",
    "intermediate_evals_usable": "true when an eval at n samples equals the final eval of an n-sample run",
    "dense_precision": "the dense part's arithmetic: fp32, or bf16 (autocast); absent: fp32",
    # size and cost
    "params_embedding": "embedding parameters",
    "params_dense": "dense (MLP and interaction) parameters",
    "params_total": "params_embedding + params_dense",
    "flops_per_sample": "dense forward + backward FLOPs of one training sample",
    "train_flops": "flops_per_sample x num_train_samples",
    "flops_elasticity": "per scaling scheme, d log flops_per_sample / d log size at this model (the formula's)",
    "compute_doubling_x": "per scaling scheme, the size at which flops_per_sample doubles (null beyond 2^30 x)",
    "embedding_lookups_per_sample": "embedding rows one sample reads (one per sparse feature)",
    # results on the eval set
    "eval_logloss": "mean log loss (nats)",
    "eval_ne": "normalized entropy: log loss / entropy of the eval set's CTR",
    "eval_ne_stderr": "standard error of eval_ne from the eval set's size",
    "eval_auc": "ROC AUC",
    "eval_calibration": "predicted clicks / actual clicks",
    "eval_ctr": "the eval set's click-through rate",
    "train_loss_last": "training loss of the last step",
    # the known truth (null for real data)
    "bayes_logloss": "log loss of the Bayes-optimal predictor on the eval set, expected over its labels",
    "bayes_ne": "NE of the Bayes-optimal predictor, expected over the eval set's labels",
    "bayes_logloss_realised": "log loss of the Bayes-optimal predictor on the eval set's realised labels",
    "bayes_ne_realised": "its NE: the floor a model's eval_ne (on the same labels) is compared with",
    "oracle_ne": "the capacity limit: the NE of the best predictor that sees what this size can represent",
    "oracle_ne_realised": "the same on the eval set's realised labels",
    "planted_exponents": "per scaling scheme, the exponent e of the share its part leaves missed, size^-e (null: none)",
    # distributed
    "world_size": "number of ranks",
    "sharding_type": "the configured sharding type",
    "sharding_types_used": "the sharding types the planner's plan uses",
    "tables_per_rank": "how many tables (or shards) each rank holds",
    # timing and bookkeeping
    "steps": "optimizer steps taken",
    "wall_seconds": "the job's wall time, set-up included",
    "setup_seconds": "from the start of training to its first step",
    "train_seconds": "time in the training loop, evals left out (all resumes together)",
    "eval_seconds": "time in the evals of the last process (intermediate and final)",
    "train_samples_per_second": "num_train_samples / train_seconds",
    "resumed_from_samples": "samples seen at the last resume (0: never resumed)",
    "checkpoints_written": "checkpoints written by the last process",
    "checkpoint_seconds": "time they took",
}
# Fields a summary that did not complete holds as well: what went wrong, and where.
FAILURE_FIELDS: dict[str, str] = {
    "error": "the exception or the reason, one line",
    "traceback": "the Python traceback of a failed run",
    "rank_errors": "a multi-rank run failed by a rank's own error: each such rank and its error",
    "diverged_step": "the step whose loss (or final eval) was not finite",
    "diverged_samples_seen": "samples seen at that step",
}

# ---------------------------------------------------------------------- metrics.jsonl
# Each line is one JSON object with `kind` (absent before version 2: an eval point is one
# with eval_ne), `step` and `samples_seen`.
POINT_TRAIN = "train"  # + train_loss, lr, samples_per_second
POINT_EVAL = "eval"  # + every eval_* field of the summary, and `final` (true for the last)

# ------------------------------------------------------------------------ scaling axes
@dataclass(frozen=True)
class ScalingAxis:
    """One resource a sweep varies, declared once: run names, the analysis' series and
    joint laws, the report's words and the next sweep's config keys all derive from here
    (docs/ARCHITECTURE.md, "Adding an axis")."""

    name: str  # the axis' name in fits.json and the report
    summary_field: str  # the summary field holding its value (x of its series)
    config_key: str  # the config key a sweep sets (`model.embedding_dim=64`)
    run_name: str  # its short name in run dir names (`d=64`)
    words: str  # the report's name for it, capitalised ("Embedding dimension")
    label: str  # the axis title of plots and tables ("embedding dimension")
    # "data" (the training samples), "scheme" (a model scaling scheme: a law of its own,
    # and the parameter counts it scales are fitted within its series) or "shape" (a model
    # value held fixed in every series, never fitted).
    kind: str
    # Schemes only: the parameter count that is P in the scheme's joint law NE(P, D) (the
    # parameters the scheme moves: a constant part would be an offset no A/P^a can follow),
    # and the parameter-count axes fitted within its series.
    joint_params_field: Optional[str] = None
    params_fields: tuple[str, ...] = ()
    # Schemes that move others together: the axes whose values move with it (both MLPs'
    # width sets the bottom and the top width); such a scheme is never held fixed itself.
    moves: tuple[str, ...] = ()

    @property
    def is_scheme(self) -> bool:
        return self.kind == "scheme"


SCALING_AXES: tuple[ScalingAxis, ...] = (
    ScalingAxis("embedding_dim", "embedding_dim", "model.embedding_dim", "d", "Embedding dimension", "embedding dimension",
                "scheme", "params_total", ("params_total", "params_embedding")),
    ScalingAxis("dense_arch_width", "dense_arch_width", "model.dense_arch_width", "bottom", "Bottom MLP width", "bottom MLP width",
                "scheme", "params_dense", ("params_total", "params_dense")),
    ScalingAxis("over_arch_width", "over_arch_width", "model.over_arch_width", "top", "Top MLP width", "top MLP width",
                "scheme", "params_dense", ("params_total", "params_dense")),
    ScalingAxis("mlp_width", "mlp_width", "model.mlp_width", "w", "Both MLPs' width", "both MLPs' width",
                "scheme", "params_dense", ("params_total", "params_dense"),
                moves=("dense_arch_width", "over_arch_width")),
    ScalingAxis("mlp_depth", "mlp_depth", "model.mlp_depth", "depth", "MLP depth", "layers per MLP", "shape"),
    ScalingAxis("data", "num_train_samples", "data.num_train_samples", "n", "Data", "training samples (one epoch)", "data"),
)
SCALING_AXIS_KINDS = ("data", "scheme", "shape")


def scaling_axis(name: str) -> ScalingAxis:
    """The axis of that name (KeyError names the declared ones)."""
    for a in SCALING_AXES:
        if a.name == name:
            return a
    raise KeyError(f"no scaling axis {name!r}; declared: {', '.join(a.name for a in SCALING_AXES)}")


def scaling_schemes() -> tuple[str, ...]:
    """The model scaling schemes, in the table's order."""
    return tuple(a.name for a in SCALING_AXES if a.is_scheme)


def data_axis() -> ScalingAxis:
    return next(a for a in SCALING_AXES if a.kind == "data")


def model_sizes() -> tuple[ScalingAxis, ...]:
    """The schemes that name a model's size: a scheme that moves others is named through them."""
    return tuple(a for a in SCALING_AXES if a.is_scheme and not a.moves)
