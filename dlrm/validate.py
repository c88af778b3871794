"""The checks of a composed config that a type cannot say (positive sizes, known option
names, shapes that fit together, the world size), each error naming the field and the fix.
The app calls `validate` before any work starts."""
from __future__ import annotations

from typing import Any, Optional

from dlrm.config import Config, ModelConfig, SyntheticDataConfig
from dlrm.errors import ConfigError
from dlrm.faults import FAULTS


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
    from dlrm.model import DENSE_PRECISIONS, MODEL_NAMES
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
    _one_of(cfg.trainer.dense_precision, "trainer.dense_precision", tuple(DENSE_PRECISIONS))
    _positive_float(cfg, "trainer.stream_cache_max_gb")
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
