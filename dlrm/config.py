"""Config validation: every check runs before any work starts, and each error names the
field, the value and the fix.  Hydra's structured parsing catches unknown keys and
wrong types at composition; these are the semantic checks."""
from __future__ import annotations

from typing import Any

from dlrm.model import MODEL_NAMES

SHARDING_TYPES = ("auto", "table_wise", "column_wise", "table_column_wise", "data_parallel", "row_wise")
EMBEDDING_OPTIMIZERS = ("rowwise_adagrad", "adagrad", "sgd", "adam")
DENSE_OPTIMIZERS = ("adagrad", "adam", "sgd")
DATA_NAMES = ("synthetic", "criteo_kaggle", "criteo_1tb")


class ConfigError(ValueError):
    """A config value the harness cannot run with; the message says how to fix it."""


def _positive_int(cfg: Any, key: str) -> int:
    value = cfg
    for part in key.split("."):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a positive integer, got {value!r}: set {key}=N with N >= 1")
    return value


def _positive_float(cfg: Any, key: str) -> float:
    value = cfg
    for part in key.split("."):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{key} must be a positive number, got {value!r}")
    return float(value)


def _one_of(value: Any, key: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key}={value!r} is not known: use one of {', '.join(allowed)}")


def validate(cfg: Any, world_size: int, device_type: str) -> None:
    """Raise ConfigError on the first problem; `device_type` is 'cpu' or 'cuda'."""
    for key in ("model.embedding_dim", "model.mlp_width", "model.mlp_depth", "data.num_train_samples",
                "data.num_eval_samples", "trainer.batch_size", "trainer.eval_batch_size"):
        _positive_int(cfg, key)
    for key in ("trainer.embedding_lr", "trainer.dense_lr"):
        _positive_float(cfg, key)
    if cfg.model.embedding_dim % 4:
        raise ConfigError(
            f"model.embedding_dim={cfg.model.embedding_dim} is not a multiple of 4: FBGEMM's table-batched "
            f"embedding kernels (which TorchRec shards into) need embedding dims divisible by 4. Use 4, 8, 12, ..."
        )
    _one_of(cfg.model.name, "model.name", MODEL_NAMES)
    _one_of(cfg.sharding.type, "sharding.type", SHARDING_TYPES)
    _one_of(cfg.trainer.embedding_optimizer, "trainer.embedding_optimizer", EMBEDDING_OPTIMIZERS)
    _one_of(cfg.trainer.dense_optimizer, "trainer.dense_optimizer", DENSE_OPTIMIZERS)
    _one_of(cfg.data.name, "data.name", DATA_NAMES)
    _one_of(cfg.trainer.device, "trainer.device", ("cpu", "cuda"))
    if cfg.sharding.type == "row_wise" and device_type != "cuda":
        raise ConfigError(
            "sharding.type=row_wise needs a GPU: its backward uses reduce_scatter, which the gloo "
            "backend (CPU) does not implement. On CPU use table_wise, column_wise, table_column_wise, "
            "data_parallel or auto."
        )

    dense = cfg.model.get("dense_arch_layer_sizes")
    if dense is not None:
        if len(dense) == 0 or any(not isinstance(x, int) or x <= 0 for x in dense):
            raise ConfigError(f"model.dense_arch_layer_sizes must be a non-empty list of positive ints, got {list(dense)}")
        if cfg.model.name == "dlrm" and dense[-1] != cfg.model.embedding_dim:
            raise ConfigError(
                f"model.dense_arch_layer_sizes ends in {dense[-1]} but model.embedding_dim is "
                f"{cfg.model.embedding_dim}: the dot interaction needs the dense arch's last layer to equal "
                f"the embedding dim. Set its last entry to {cfg.model.embedding_dim} (or null to derive it)."
            )
        if cfg.model.name == "dcn" and dense[-1] != cfg.model.embedding_dim:
            raise ConfigError(
                f"model.dense_arch_layer_sizes ends in {dense[-1]} but model.embedding_dim is "
                f"{cfg.model.embedding_dim}: DCN stacks the dense output with the embeddings, so they must be "
                f"equally wide. Set its last entry to {cfg.model.embedding_dim}."
            )
    over = cfg.model.get("over_arch_layer_sizes")
    if over is not None and (len(over) == 0 or over[-1] != 1):
        raise ConfigError(f"model.over_arch_layer_sizes must end in 1 (one logit), got {list(over)}")

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
    if cfg.data.name == "synthetic":
        if n_train > cfg.data.eval_offset:
            raise ConfigError(
                f"data.num_train_samples={n_train} overlaps the eval set, which starts at sample "
                f"data.eval_offset={cfg.data.eval_offset}: raise data.eval_offset or train on fewer samples."
            )
        for f, c in enumerate(cfg.data.cardinalities):
            if not isinstance(c, int) or c <= 0:
                raise ConfigError(f"data.cardinalities[{f}]={c!r} must be a positive integer")
        _positive_int(cfg, "data.teacher_dim")
        if not 0 < cfg.data.base_ctr < 1:
            raise ConfigError(f"data.base_ctr={cfg.data.base_ctr} must lie strictly between 0 and 1")
