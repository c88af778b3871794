"""The model: a TorchRec EmbeddingBagCollection under DLRM (dot interaction) or DLRM_DCN,
with its parameter counts and FLOPs next to it.

Layer sizes come from two swept numbers (see `layer_sizes`): `mlp_width` W and
`mlp_depth` L.  The dense arch is L-1 hidden layers of W then the embedding dim D (the
dot interaction needs the dense output to be D wide); the over arch is L-1 hidden layers
of W then 1 logit.  Explicit `dense_arch_layer_sizes` / `over_arch_layer_sizes` in the
config override the derived ones.

FLOPs (forward + backward, dense part only, per sample), after Kaplan et al. 2020 and
nanoGPT's accounting: a linear layer of n_in x n_out costs 2 n_in n_out FLOPs forward
(one multiply, one add per weight) and twice that backward (input and weight
gradients), so 6 n_in n_out in all.  The dot interaction is one batched matmul of the
(F+1) x D feature matrix with its transpose: 2 (F+1)^2 D forward, again x3.  DCN's
low-rank cross layer x_{l+1} = x_0 * (U (V x_l) + b) + x_l costs 2 * 2 n r + 3 n
forward (n = (F+1) D, r the low rank).  Embedding look-ups and pooling are memory
traffic, not dense FLOPs, and are left out, as in Ardalani et al. 2022.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Optional, Sequence

import torch
from torchrec.models.dlrm import DLRM, DLRM_DCN, DLRMTrain
from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.modules.mlp import MLP

from dlrm.arches import FlatInteractionArch, ViewSparseArch

MODEL_NAMES = ("dlrm", "dcn")
BACKWARD_TO_FORWARD_FLOPS = 2  # backward = gradients w.r.t. inputs and weights


def feature_name(f: int) -> str:
    return f"cat_{f}"


@dataclass(frozen=True)
class ModelShape:
    """Everything that fixes the model's size: enough to count params and FLOPs."""

    name: str
    embedding_dim: int
    cardinalities: tuple[int, ...]
    num_dense_features: int
    dense_arch_layer_sizes: tuple[int, ...]
    over_arch_layer_sizes: tuple[int, ...]
    dcn_num_layers: int = 3
    dcn_low_rank_dim: int = 16
    dense_arch_output: str = "relu"  # relu (TorchRec's DenseArch) | linear: no activation on its output layer

    @property
    def num_sparse_features(self) -> int:
        return len(self.cardinalities)

    @property
    def over_arch_in_features(self) -> int:
        f, d = self.num_sparse_features, self.embedding_dim
        if self.name == "dcn":
            return (f + 1) * d
        return d + f * (f + 1) // 2  # dense output + every pairwise dot of the F+1 vectors


def layer_sizes(embedding_dim: int, mlp_width: int, mlp_depth: int) -> tuple[list[int], list[int]]:
    """(dense_arch_layer_sizes, over_arch_layer_sizes) from the swept width and depth."""
    hidden = [mlp_width] * (mlp_depth - 1)
    return hidden + [embedding_dim], hidden + [1]


def shape_from_config(model_cfg: ModelConfig, cardinalities: Sequence[int], num_dense_features: int) -> ModelShape:
    dense_width = model_cfg.dense_arch_width or model_cfg.mlp_width
    over_width = model_cfg.over_arch_width or model_cfg.mlp_width
    derived_dense = layer_sizes(model_cfg.embedding_dim, dense_width, model_cfg.mlp_depth)[0]
    derived_over = layer_sizes(model_cfg.embedding_dim, over_width, model_cfg.mlp_depth)[1]
    dense = model_cfg.dense_arch_layer_sizes or derived_dense
    over = model_cfg.over_arch_layer_sizes or derived_over
    return ModelShape(
        name=model_cfg.name,
        embedding_dim=int(model_cfg.embedding_dim),
        cardinalities=tuple(int(c) for c in cardinalities),
        num_dense_features=int(num_dense_features),
        dense_arch_layer_sizes=tuple(int(x) for x in dense),
        over_arch_layer_sizes=tuple(int(x) for x in over),
        dcn_num_layers=int(model_cfg.dcn_num_layers),
        dcn_low_rank_dim=int(model_cfg.dcn_low_rank_dim),
        dense_arch_output=str(model_cfg.dense_arch_output),
    )


def hidden_width(layer_sizes: Sequence[int]) -> Optional[int]:
    """The width of an arch's hidden layers (all but the output layer) when they share one,
    else their widest; None without a hidden layer."""
    hidden = list(layer_sizes[:-1])
    return max(hidden) if hidden else None


def arch_depth(shape: ModelShape) -> Optional[int]:
    """Layers per MLP as built (explicit layer lists included), when both arches have as many;
    None when they differ."""
    dense, over = len(shape.dense_arch_layer_sizes), len(shape.over_arch_layer_sizes)
    return dense if dense == over else None


def _mlp_params(n_in: int, sizes: Sequence[int]) -> int:
    total = 0
    for n_out in sizes:
        total += n_in * n_out + n_out
        n_in = n_out
    return total


def _mlp_macs(n_in: int, sizes: Sequence[int]) -> int:
    total = 0
    for n_out in sizes:
        total += n_in * n_out
        n_in = n_out
    return total


def param_counts(shape: ModelShape) -> dict[str, int]:
    embedding = sum(shape.cardinalities) * shape.embedding_dim
    dense = _mlp_params(shape.num_dense_features, shape.dense_arch_layer_sizes)
    dense += _mlp_params(shape.over_arch_in_features, shape.over_arch_layer_sizes)
    if shape.name == "dcn":
        n = shape.over_arch_in_features
        dense += shape.dcn_num_layers * (2 * n * shape.dcn_low_rank_dim + n)
    return {"params_embedding": embedding, "params_dense": dense, "params_total": embedding + dense}


def flops_per_sample(shape: ModelShape) -> int:
    """Forward + backward dense FLOPs of one sample (see the module docstring)."""
    forward = 2 * _mlp_macs(shape.num_dense_features, shape.dense_arch_layer_sizes)
    forward += 2 * _mlp_macs(shape.over_arch_in_features, shape.over_arch_layer_sizes)
    f1, d = shape.num_sparse_features + 1, shape.embedding_dim
    if shape.name == "dcn":
        n = f1 * d
        forward += shape.dcn_num_layers * (4 * n * shape.dcn_low_rank_dim + 3 * n)
    else:
        forward += 2 * f1 * f1 * d
    return forward * (1 + BACKWARD_TO_FORWARD_FLOPS)


def _scaled_hidden(sizes: Sequence[float], factor: float) -> tuple[float, ...]:
    return tuple(w * factor for w in sizes[:-1]) + (sizes[-1],)


def _resized(shape: ModelShape, scheme: str, factor: float) -> ModelShape:
    """The shape with one scaling scheme's size multiplied by `factor` (real-valued, for the
    FLOP formula only): the embedding dim (and the dense arch's output, which must match it),
    or the hidden widths of the bottom, the top or both MLPs."""
    if scheme == "embedding_dim":
        d = shape.embedding_dim * factor
        return replace(shape, embedding_dim=d, dense_arch_layer_sizes=tuple(shape.dense_arch_layer_sizes[:-1]) + (d,))
    dense = _scaled_hidden(shape.dense_arch_layer_sizes, factor) if scheme in ("dense_arch_width", "mlp_width") \
        else shape.dense_arch_layer_sizes
    over = _scaled_hidden(shape.over_arch_layer_sizes, factor) if scheme in ("over_arch_width", "mlp_width") \
        else shape.over_arch_layer_sizes
    return replace(shape, dense_arch_layer_sizes=dense, over_arch_layer_sizes=over)


SCALING_SCHEMES = ("embedding_dim", "dense_arch_width", "over_arch_width", "mlp_width")


def _schemes_of(shape: ModelShape) -> list[str]:
    """The schemes this shape can be grown along (an MLP without a hidden layer has no width)."""
    has = {"dense_arch_width": len(shape.dense_arch_layer_sizes) > 1, "over_arch_width": len(shape.over_arch_layer_sizes) > 1}
    has["mlp_width"] = has["dense_arch_width"] and has["over_arch_width"]
    return [s for s in SCALING_SCHEMES if has.get(s, True)]


def flops_elasticities(shape: ModelShape) -> dict[str, float]:
    """d log(FLOPs per sample) / d log(size) at this shape, per scaling scheme: how much of a
    compute increase one scheme's size takes up, locally (a central difference of the formula)."""
    h = 1e-3
    return {s: float((math.log(flops_per_sample(_resized(shape, s, 1 + h)))
                      - math.log(flops_per_sample(_resized(shape, s, 1 - h)))) / (math.log1p(h) - math.log1p(-h)))
            for s in _schemes_of(shape)}


def compute_doubling_sizes(shape: ModelShape, max_factor: float = 2.0 ** 30) -> dict[str, Optional[float]]:
    """Per scaling scheme, the size at which this shape's FLOPs per sample double with
    everything else fixed (None beyond `max_factor` times today's size): one doubling of
    compute spent through that scheme, by the model's own formula."""
    out: dict[str, Optional[float]] = {}
    target = 2.0 * flops_per_sample(shape)
    for scheme in _schemes_of(shape):
        size = shape.embedding_dim if scheme == "embedding_dim" else \
            hidden_width(shape.over_arch_layer_sizes if scheme == "over_arch_width" else shape.dense_arch_layer_sizes)
        out[scheme] = _solve_factor(lambda f: flops_per_sample(_resized(shape, scheme, f)) - target, max_factor)
        out[scheme] = None if out[scheme] is None else out[scheme] * size
    return out


def _solve_factor(excess: Callable[[float], float], max_factor: float) -> Optional[float]:
    """The factor f in [1, max_factor] where the increasing `excess` crosses 0 (bisection in log f)."""
    if excess(max_factor) < 0:
        return None
    lo, hi = 0.0, math.log(max_factor)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if excess(math.exp(mid)) < 0 else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def build_model(shape: ModelShape, dense_device: torch.device,
                table_device: torch.device = torch.device("meta")) -> torch.nn.Module:
    """The unsharded model, its tables on `meta`: DistributedModelParallel allocates them.
    TorchRec's sparse arch and dot interaction are swapped for dlrm/arches.py's: the same
    values, gradients and module tree, fewer copies."""
    tables = [
        EmbeddingBagConfig(
            name=f"t_{feature_name(f)}",
            embedding_dim=shape.embedding_dim,
            num_embeddings=c,
            feature_names=[feature_name(f)],
            pooling=PoolingType.SUM,
        )
        for f, c in enumerate(shape.cardinalities)
    ]
    ebc = EmbeddingBagCollection(tables=tables, device=table_device)
    common = dict(
        embedding_bag_collection=ebc,
        dense_in_features=shape.num_dense_features,
        dense_arch_layer_sizes=list(shape.dense_arch_layer_sizes),
        over_arch_layer_sizes=list(shape.over_arch_layer_sizes),
        dense_device=dense_device,
    )
    if shape.name == "dcn":
        model = DLRM_DCN(dcn_num_layers=shape.dcn_num_layers, dcn_low_rank_dim=shape.dcn_low_rank_dim, **common)
    elif shape.name == "dlrm":
        model = DLRM(**common)
        model.inter_arch = FlatInteractionArch(shape.num_sparse_features, dense_device)
    else:
        raise ValueError(f"model.name must be one of {MODEL_NAMES}, got {shape.name!r}")
    model.sparse_arch = ViewSparseArch(ebc)
    if shape.dense_arch_output == "linear":  # DLRM's constructors take no activation: swap the arch's MLP
        model.dense_arch.model = linear_output_mlp(shape.num_dense_features, shape.dense_arch_layer_sizes, dense_device)
    return model


def linear_output_mlp(in_features: int, layer_sizes: Sequence[int], device: torch.device) -> torch.nn.Module:
    """TorchRec's MLP over the hidden layers (ReLU), then a Linear output layer without one:
    the same weights and FLOPs as DenseArch's MLP, only the last activation gone."""
    sizes = list(layer_sizes)
    hidden = [MLP(in_features, sizes[:-1], bias=True, activation="relu", device=device)] if len(sizes) > 1 else []
    last_in = sizes[-2] if len(sizes) > 1 else in_features
    return torch.nn.Sequential(*hidden, torch.nn.Linear(last_in, sizes[-1], bias=True, device=device))


# The dense part's arithmetic (trainer.dense_precision): the autocast dtype, None for float32.
DENSE_PRECISIONS: dict[str, Optional[torch.dtype]] = {"fp32": None, "bf16": torch.bfloat16}


class PrecisionDLRMTrain(DLRMTrain):
    """TorchRec's DLRMTrain with the dense part under torch.autocast at `precision`.

    Autocast casts only the matmul-like ops (the MLPs' linears, the interaction's bmm); the
    tables, their fused optimizer and the dense optimizer's states stay float32, and the
    logits are cast back to float32 before the loss.  At fp32 it is DLRMTrain op for op, and
    the module tree (so the state_dict and every checkpoint) is DLRMTrain's either way.
    """

    def __init__(self, dlrm_module: torch.nn.Module, precision: str = "fp32", device_type: str = "cpu"):
        super().__init__(dlrm_module)
        if precision not in DENSE_PRECISIONS:
            raise ValueError(f"dense precision must be one of {tuple(DENSE_PRECISIONS)}, got {precision!r}")
        self.autocast_dtype = DENSE_PRECISIONS[precision]
        self.device_type = device_type

    def forward(self, batch):
        if self.autocast_dtype is None:
            return super().forward(batch)
        with torch.autocast(self.device_type, dtype=self.autocast_dtype):
            logits = self.model(batch.dense_features, batch.sparse_features)
        logits = logits.float().squeeze(-1)
        loss = self.loss_fn(logits, batch.labels.float())
        return loss, (loss.detach(), logits.detach(), batch.labels.detach())
