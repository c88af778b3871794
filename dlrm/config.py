"""The config of one run: typed schemas (one per config group) and the checks that follow.

Schemas hold the types and the meaning of every knob; the values live in `configs/`
(one YAML file per option of a group), so each default is written once.  The app
(runner/compose.py) registers these dataclasses in Hydra's ConfigStore, so a wrong type or
an unknown key fails at composition with Hydra's own message, before any work starts.
`validate` then checks what a type cannot say (positive sizes, known option names,
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

from dlrm.errors import ConfigError
from dlrm.faults import FAULTS


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


# ---------------------------------------------------------------------------- checks
def _get(cfg: Config, key: str) -> Any:
    value: Any = cfg
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _positive_int(cfg: Config, key: str, allow_none: bool = False) -> Optional[int]:
    value = _get(cfg, key)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        hint = " (or null)" if allow_none else ""
        raise ConfigError(f"{key} must be a positive integer, got {value!r}: set {key}=N with N >= 1{hint}")
    return value


def _non_negative_int(cfg: Config, key: str) -> int:
    value = _get(cfg, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{key} must be an integer >= 0, got {value!r}: set {key}=N with N >= 0")
    return value


def _positive_float(cfg: Config, key: str, allow_none: bool = False) -> Optional[float]:
    value = _get(cfg, key)
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        hint = " (or null)" if allow_none else ""
        raise ConfigError(f"{key} must be a positive number, got {value!r}{hint}")
    return float(value)


def _one_of(value: Any, key: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not known: use one of {', '.join(allowed)}")


DENSE_ARCH_OUTPUTS = ("relu", "linear")


def _check_arch(cfg: Config) -> None:
    m = cfg.model
    if m.dense_arch_output not in DENSE_ARCH_OUTPUTS:
        raise ConfigError(f"model.dense_arch_output={m.dense_arch_output!r} is not one of {DENSE_ARCH_OUTPUTS}: "
                          f"relu is TorchRec's DenseArch (every layer ReLU'd), linear leaves its output layer linear")
    dense = _layer_list(m, "dense_arch_layer_sizes", "dense_arch_width")
    if dense is not None and dense[-1] != m.embedding_dim:
        why = ("the dot interaction needs the dense arch's last layer to equal the embedding dim"
               if m.name == "dlrm" else
               "DCN stacks the dense output with the embeddings, so they must be equally wide")
        raise ConfigError(
            f"model.dense_arch_layer_sizes ends in {dense[-1]} but model.embedding_dim is {m.embedding_dim}: "
            f"{why}. Set its last entry to {m.embedding_dim} (or null to derive it)."
        )
    over = _layer_list(m, "over_arch_layer_sizes", "over_arch_width")
    if over is not None and over[-1] != 1:
        raise ConfigError(f"model.over_arch_layer_sizes must end in 1 (one logit), got {over}")


def _layer_list(m: ModelConfig, key: str, width_key: str) -> Optional[list]:
    """An explicit layer list (it overrides the derived arch): every entry a positive int, and
    no width of the same arch that says otherwise (the run's name and record would lie)."""
    layers = getattr(m, key)
    if layers is None:
        return None
    layers = list(layers)
    if not layers or any(isinstance(x, bool) or not isinstance(x, int) or x <= 0 for x in layers):
        raise ConfigError(f"model.{key} must be a non-empty list of positive ints, got {layers}: every layer "
                          f"needs at least one unit (or set it to null to derive the arch)")
    width = getattr(m, width_key)
    if width is not None and any(x != width for x in layers[:-1]):
        raise ConfigError(f"model.{key}={layers} and model.{width_key}={width} disagree: the list is the arch "
                          f"that is built; set model.{width_key}=null, or drop the list")
    return layers


def _check_cardinalities(cfg: Config) -> None:
    """One cardinality per sparse feature of the planted world: a list of another length is
    another world (every feature's bias share moves), not these features' table sizes.
    Criteo has no such key: its preprocessed files fix its features."""
    if not isinstance(cfg.data, SyntheticDataConfig):
        return
    n = _positive_int(cfg, "data.num_sparse_features")
    given = len(cfg.data.cardinalities)
    if given != n:
        raise ConfigError(
            f"data.cardinalities has {given} entries but the world has data.num_sparse_features={n} sparse "
            f"features: give one cardinality per feature ({n} entries), or set data.num_sparse_features={given} "
            f"as well to plant a world of {given} features")


def _check_sizes(cfg: Config, world_size: int) -> None:
    batch = cfg.trainer.batch_size
    n_train = cfg.data.num_train_samples
    if batch % world_size:
        raise ConfigError(
            f"trainer.batch_size={batch} is not divisible by the world size {world_size}: the global batch "
            f"is split evenly across ranks. Use a multiple of {world_size}."
        )
    if n_train < batch:
        raise ConfigError(
            f"data.num_train_samples={n_train} is smaller than one global batch (trainer.batch_size={batch}): "
            f"lower trainer.batch_size or raise data.num_train_samples."
        )
    if n_train % world_size:
        raise ConfigError(f"data.num_train_samples={n_train} must be divisible by the world size {world_size}")
    if cfg.data.num_eval_samples % world_size:
        raise ConfigError(f"data.num_eval_samples={cfg.data.num_eval_samples} must be divisible by the world size {world_size}")


def validate(cfg: Config, world_size: int, device_type: str) -> None:
    """Raise ConfigError on the first problem; `device_type` is 'cpu' or 'cuda'.

    The option names come from the implementations that serve them, so loading those
    registries imports torch and torchrec: validation runs where training will.
    """
    from dlrm.data import DATA_SOURCES
    from dlrm.model import MODEL_NAMES
    from dlrm.sharding import CPU_EMBEDDING_OPTIMIZERS, DENSE_OPTIMIZERS, EMBEDDING_OPTIMIZERS, SHARDING_TYPES

    for key in ("model.embedding_dim", "model.mlp_width", "model.mlp_depth", "data.num_train_samples",
                "data.num_eval_samples", "trainer.batch_size", "trainer.eval_batch_size",
                "trainer.log_every_samples"):
        _positive_int(cfg, key)
    _positive_int(cfg, "trainer.eval_log_spaced_per_octave")
    for key in ("model.dense_arch_width", "model.over_arch_width", "trainer.eval_every_samples",
                "trainer.eval_log_spaced_from",
                "trainer.checkpoint_every_samples", "trainer.num_threads"):
        _positive_int(cfg, key, allow_none=True)
    _non_negative_int(cfg, "seed")  # seeds are 0, 1, 2, ...: each moves the run's stream by a whole slice
    _non_negative_int(cfg, "trainer.lr_warmup_samples")
    _non_negative_int(cfg, "trainer.prefetch_batches")
    for key in ("trainer.embedding_lr", "trainer.dense_lr"):
        _positive_float(cfg, key)
    _positive_float(cfg, "trainer.checkpoint_every_minutes", allow_none=True)
    _positive_float(cfg, "trainer.collective_timeout_s")
    _positive_int(cfg, "trainer.sync_every_steps", allow_none=True)
    if cfg.model.embedding_dim % 4:
        raise ConfigError(
            f"model.embedding_dim={cfg.model.embedding_dim} is not a multiple of 4: FBGEMM's table-batched "
            f"embedding kernels (which TorchRec shards into) need embedding dims divisible by 4. Use 4, 8, 12, ..."
        )
    _one_of(cfg.model.name, "model.name", MODEL_NAMES)
    _one_of(cfg.sharding.type, "sharding.type", SHARDING_TYPES)
    _one_of(cfg.trainer.embedding_optimizer, "trainer.embedding_optimizer", tuple(EMBEDDING_OPTIMIZERS))
    _one_of(cfg.trainer.dense_optimizer, "trainer.dense_optimizer", tuple(DENSE_OPTIMIZERS))
    _one_of(cfg.data.name, "data.name", tuple(DATA_SOURCES))
    _one_of(cfg.trainer.device, "trainer.device", ("cpu", "cuda"))
    _one_of(cfg.faults.fault, "faults.fault", FAULTS)
    _one_of(cfg.trainer.progress_bar, "trainer.progress_bar", ("auto", True, False))
    _one_of(cfg.trainer.pipeline, "trainer.pipeline", ("auto", True, False))
    if cfg.sharding.type == "row_wise" and device_type != "cuda":
        raise ConfigError(
            "sharding.type=row_wise needs a GPU: its backward uses reduce_scatter, which the gloo "
            "backend (CPU) does not implement. On CPU use table_wise, column_wise, table_column_wise, "
            "data_parallel or auto."
        )
    if device_type != "cuda" and cfg.trainer.embedding_optimizer not in CPU_EMBEDDING_OPTIMIZERS:
        raise ConfigError(
            f"trainer.embedding_optimizer={cfg.trainer.embedding_optimizer} needs a GPU: FBGEMM's CPU "
            f"embedding kernels implement {', '.join(CPU_EMBEDDING_OPTIMIZERS)} only. On CPU use one of those "
            f"(the dense optimizer may still be adam: trainer.dense_optimizer=adam)."
        )
    _check_arch(cfg)
    _check_sizes(cfg, world_size)
    _check_cardinalities(cfg)
    DATA_SOURCES[cfg.data.name].validate(cfg.data, int(cfg.seed))
