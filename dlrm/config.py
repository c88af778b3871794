"""The config of one run: typed schemas, one per config group (the checks: dlrm/validate.py).

Schemas hold the types and the meaning of every knob; the values live in `configs/`
(one YAML file per option of a group), so each default is written once.  The app
(runner/compose.py) registers these dataclasses in Hydra's ConfigStore, so a wrong type or
an unknown key fails at composition with Hydra's own message, before any work starts.
`dlrm.validate.validate` then checks what a type cannot say (positive sizes, known option names,
shapes that fit together, the world size), each error naming the field and the fix.

The app turns the composed config into these dataclasses once, at its edge
(runner/compose.py `typed`), and the library takes the typed objects: attribute access, no
defaults repeated in code.

Standard library only (plus OmegaConf's MISSING): composing a config loads no torch.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Union

from omegaconf import MISSING

from dlrm.errors import ConfigError  # noqa: F401  (the app catches it from here)


# --------------------------------------------------------------------------- schemas
@dataclass
class ModelConfig:
    name: str = MISSING  # dlrm (dot interaction) | dcn (TorchRec DLRM_DCN)
    embedding_dim: int = MISSING  # scaling scheme "embedding": every table's dimension
    mlp_width: int = MISSING  # scaling scheme "both MLPs": the hidden width of both arches
    # Scaling schemes "bottom MLP" / "top MLP": the hidden width of one arch alone
    # (null: mlp_width).
    dense_arch_width: Optional[int] = MISSING
    over_arch_width: Optional[int] = MISSING
    mlp_depth: int = MISSING  # layers per arch: depth-1 hidden layers of the width, then the output
    # Explicit layer lists override the derived ones.
    dense_arch_layer_sizes: Optional[List[int]] = MISSING
    over_arch_layer_sizes: Optional[List[int]] = MISSING
    # The dense arch's output layer: relu (TorchRec's DenseArch, as in the DLRM paper: every
    # layer ReLU'd) | linear (no activation on the output layer; see configs/model/dlrm.yaml).
    dense_arch_output: str = MISSING
    dcn_num_layers: int = MISSING  # model=dcn only
    dcn_low_rank_dim: int = MISSING


@dataclass
class SyntheticDataConfig:
    """The planted world (dlrm/data/synthetic.py, its teacher's parts in teacher.py): these
    fields, but name, num_train_samples and num_sparse_features, are the world's spec
    (synthetic.NOT_THE_WORLD; SyntheticWorld takes this object), and each scaling scheme meets
    a part with its own exponent."""

    name: str = MISSING  # synthetic | synthetic_saturating | synthetic_top
    num_train_samples: int = MISSING  # data size N: one pass over the first N samples of the run's stream
    num_eval_samples: int = MISSING  # the fixed eval slice shared by every run
    eval_offset: int = MISSING  # first global sample index of the eval slice
    world_seed: int = MISSING  # the world itself; a run's `seed` moves only init and its data stream
    num_dense_features: int = MISSING
    num_sparse_features: int = MISSING  # the world's sparse features: data.cardinalities gives one entry each
    cardinalities: List[int] = MISSING  # ids per sparse feature
    zipf_exponent: float = MISSING  # long tail: P(id = k) ~ (k + 1)^-s
    uniform_features: List[int] = MISSING  # features with uniform ids: capacity, not the tail, limits them
    base_ctr: float = MISSING
    bias_scale: float = MISSING  # std of the summed per-id biases (the data axis: rare ids need samples)
    interaction_features: List[int] = MISSING  # the embedding-dim part: pairwise dots of latent vectors
    latent_dim: int = MISSING  # the teacher's latent dimension K
    latent_spectrum_exponent: float = MISSING  # p: the interaction a dim-d student misses ~ d^-p
    interaction_scale: float = MISSING  # std of the summed interactions
    top_features: List[int] = MISSING  # the id x dense part: c_k abs(beta_f(id) + w_k . z - tau_k)
    top_terms: int = MISSING  # how many such terms (the last holds the spectrum's remainder)
    top_spectrum_exponent: float = MISSING  # r: c_k^2 ~ k^-(1+r) (no top-width law: dlrm/data/teacher.py)
    top_scale: float = MISSING  # the terms' variances sum to top_scale^2 (terms of one feature correlate)
    # The gated terms (teacher.py), the top MLP's part: c_k g_a g_b relu(s_k u(id_c) - tau_k).
    gated_features: List[int] = MISSING  # the gates: a term per pair
    gated_carrier_feature: Optional[int] = MISSING  # c: the feature whose per-id scalar u they kink in
    gated_open: float = MISSING  # pi: the share of a gate's ids that are open (1, else 0)
    gated_terms: int = MISSING  # how many terms (one a pair)
    gated_spectrum_exponent: float = MISSING  # t: the three-way part a width-W top misses ~ (W - 1)^-t
    gated_scale: float = MISSING  # std of the terms' three-way parts (0: no gated terms)
    dense_spectrum_exponent: float = MISSING  # q: the bottom-MLP part sum_m a_m abs(z_m) missed ~ W^-q
    dense_abs_scale: float = MISSING  # std of that part
    dense_linear_scale: float = MISSING  # linear + one product term (no capacity needed)
    # Standardise the per-id latent vectors and top scalars under each feature's id law, so that
    # every part's variance share is exactly the planted one (not a few frequent ids' draws).
    exact_shares: bool = MISSING


@dataclass
class CriteoDataConfig:
    """Preprocessed Criteo click logs (dlrm/data/criteo/, docs/CRITEO.md)."""

    name: str = MISSING
    path: str = MISSING  # the preprocessed directory
    num_train_samples: int = MISSING
    num_eval_samples: int = MISSING
    shuffle_window: int = MISSING  # shuffle within windows of this many samples (0: file order)
    shuffle_seed: int = MISSING
    num_embeddings_per_feature: Optional[List[int]] = MISSING  # null: as preprocessed
    max_ind_range: Optional[int] = MISSING  # cap every table at this size


@dataclass
class TrainerConfig:
    batch_size: int = MISSING  # global batch, split evenly across ranks
    embedding_optimizer: str = MISSING  # fused into backward (dlrm/sharding.py EMBEDDING_OPTIMIZERS)
    embedding_lr: float = MISSING
    dense_optimizer: str = MISSING  # torch.optim (dlrm/sharding.py DENSE_OPTIMIZERS)
    dense_lr: float = MISSING
    lr_warmup_samples: int = MISSING  # linear warm-up of both learning rates, then constant
    eval_every_samples: Optional[int] = MISSING  # intermediate evals (null: at the end only)
    # Evals at log-spaced sample counts from this one (null: none): the data axis from one run.
    eval_log_spaced_from: Optional[int] = MISSING
    eval_log_spaced_per_octave: int = MISSING  # 1: powers of two times the first
    eval_batch_size: int = MISSING
    log_every_samples: int = MISSING  # a train_loss point in metrics.jsonl
    # auto (when stderr is a tty) | true | false (Any: OmegaConf has no Union of bool and str)
    progress_bar: Any = MISSING
    checkpoint_every_samples: Optional[int] = MISSING
    checkpoint_every_minutes: Optional[float] = MISSING
    tensorboard: bool = MISSING
    num_threads: Optional[int] = MISSING  # torch intra-op threads (null: torch's default)
    prefetch_batches: int = MISSING  # batches generated ahead in a background thread
    # A shared cache of generated training streams (dlrm/data/stream_cache.py; null: off): the
    # runs of a sweep that train on one (world, seed) stream generate it once.  Result-neutral.
    stream_cache_dir: Optional[str] = MISSING
    stream_cache_max_gb: float = MISSING  # the cache writes no more blocks past this size
    # The dense part's arithmetic (MLPs and interaction): fp32 | bf16 (torch.autocast; the
    # tables, the loss and the optimizer states stay float32).  bf16 pays on GPUs and on CPUs
    # with native bf16 matmuls; on others it is slower (docs/PERFORMANCE.md).
    dense_precision: str = MISSING
    device: str = MISSING  # cpu | cuda
    # Seconds a rank waits in the process group's set-up and collectives for a peer before it
    # fails (a dead peer on another node otherwise holds the others for NCCL's 10 / gloo's 30 min).
    collective_timeout_s: float = MISSING
    sync_every_steps: Optional[int] = MISSING  # steps between loss reads (null: by device)
    pipeline: Any = MISSING  # TorchRec's TrainPipelineSparseDist: auto (on CUDA only) | true | false


@dataclass
class ShardingConfig:
    """How TorchRec shards the tables: auto (the EmbeddingShardingPlanner chooses; on one
    rank table_wise, which profiling showed is fastest there), table_wise, column_wise,
    table_column_wise, data_parallel, row_wise (GPU only: gloo has no reduce_scatter)."""

    type: str = MISSING


@dataclass
class LauncherConfig:
    """Ranks per job.  1: the job trains in the launching process.  >1: the job writes its
    resolved config once and starts `torchrun --nproc_per_node=N`, whose ranks read it."""

    nproc_per_node: int = MISSING


@dataclass
class FaultsConfig:
    """Fault injection for the tests (dlrm/faults.py); never part of a study."""

    nan_at_step: Optional[int] = MISSING  # make the loss NaN at this step (on faults.nan_rank)
    nan_rank: Optional[int] = MISSING  # only on this rank (null: every rank)
    nan_update_only: bool = MISSING  # poison that step's update, not its loss (a NaN the loss shows later)
    sigterm_at_step: Optional[int] = MISSING  # send this process SIGTERM after this step (a preemption)
    # A fault after this step on faults.fault_rank (null: every rank), in a run's first attempt
    # only (a resumed run does not repeat it): "error" raises, "kill" SIGKILLs the process (a
    # rank lost as to the OOM killer).
    fault_at_step: Optional[int] = MISSING
    fault_rank: Optional[int] = MISSING
    fault: str = MISSING


@dataclass
class Config:
    model: ModelConfig = MISSING
    data: Any = MISSING  # SyntheticDataConfig or CriteoDataConfig, by the data group's option
    trainer: TrainerConfig = MISSING
    sharding: ShardingConfig = MISSING
    launcher: LauncherConfig = MISSING
    faults: FaultsConfig = MISSING
    seed: int = MISSING  # model init and data order; the world has its own data.world_seed
    out_root: str = MISSING  # every run dir lives under here
    sweep_name: str = MISSING  # sweep root = ${out_root}/${sweep_name}
    retry_failed: bool = MISSING  # a relaunched sweep retries failed/diverged runs only when true


# The library's type of the `data` group (Config.data is Any for OmegaConf, which has no Union
# of structured configs; the composed object is one of these).
DataConfig = Union[SyntheticDataConfig, CriteoDataConfig]


# The schema of each config group (runner/compose.py registers them with Hydra).
GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "model": {"schema": ModelConfig},
    "data": {"schema_synthetic": SyntheticDataConfig, "schema_criteo": CriteoDataConfig},
    "trainer": {"schema": TrainerConfig},
    "sharding": {"schema": ShardingConfig},
    "launcher": {"schema": LauncherConfig},
    "faults": {"schema": FaultsConfig},
}
