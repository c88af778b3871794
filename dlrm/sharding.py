"""Sharding and optimizers: TorchRec's planner places the tables, DistributedModelParallel
allocates them (they were built on `meta`), and the embedding optimizer is fused into the
backward pass (FBGEMM's table-batched kernels update rows in place; no dense gradient of
a table ever exists)."""
from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torchrec.optim as trec_optim
from torchrec.distributed.model_parallel import DistributedModelParallel
from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints, Topology
from torchrec.distributed.planner.storage_reservations import HeuristicalStorageReservation
from torchrec.distributed.sharding_plan import get_default_sharders
from torchrec.distributed.types import ShardingEnv, ShardingPlan, ShardingType
from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward
from torchrec.optim.keyed import CombinedOptimizer, KeyedOptimizerWrapper
from torchrec.optim.optimizers import in_backward_optimizer_filter

from dlrm.config import TrainerConfig
from dlrm.distributed import DistInfo

# The options of trainer.embedding_optimizer / trainer.dense_optimizer / sharding.type.
EMBEDDING_OPTIMIZERS = {
    "rowwise_adagrad": trec_optim.RowWiseAdagrad,
    "adagrad": torch.optim.Adagrad,
    "sgd": torch.optim.SGD,
    "adam": torch.optim.Adam,
}
DENSE_OPTIMIZERS = {"adagrad": torch.optim.Adagrad, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
# FBGEMM's CPU kernels implement these fused optimizers only (Adam needs a GPU).
CPU_EMBEDDING_OPTIMIZERS = ("rowwise_adagrad", "adagrad", "sgd")
# auto: the planner chooses; the others are TorchRec's ShardingType values that DMP serves.
SHARDING_TYPES = ("auto", *(t.value for t in (ShardingType.TABLE_WISE, ShardingType.COLUMN_WISE,
                                             ShardingType.TABLE_COLUMN_WISE, ShardingType.DATA_PARALLEL,
                                             ShardingType.ROW_WISE)))
# Optimizers whose update is invariant to a constant scale of the gradient (up to eps).
_SCALE_INVARIANT = {"rowwise_adagrad", "adagrad", "adam"}


def embedding_lr(name: str, lr: float, world_size: int, sharding_type: str) -> float:
    """The fused optimizer's learning rate, so that the world size does not change it.

    Each rank's loss is the mean over its B/W samples.  The dense grads are averaged by
    DDP (= the 1-rank gradient), but a sharded table's grads arrive by all-to-all and are
    *summed* over ranks: W times the 1-rank gradient.  Adagrad and Adam normalise that
    scale away; plain SGD would take W-times larger steps, so its rate is divided by W.
    Data-parallel tables are averaged like dense ones and need no correction.
    """
    if name in _SCALE_INVARIANT or sharding_type == "data_parallel":
        return lr
    return lr / world_size


# Share of each device's memory the planner keeps free for what it does not model
# (activations, the dense optimizer, allocator slack); TorchRec's DLRM example uses 0.05,
# 0.15 leaves room for the larger eval batches.
STORAGE_RESERVATION = 0.15


def topology(info: DistInfo) -> Topology:
    """The machine as the planner must see it: how many ranks share a host (it prices
    intra- and cross-host bandwidth differently) and each device's memory."""
    kwargs: dict[str, Any] = {}
    if info.device.type == "cuda":
        kwargs["hbm_cap"] = int(torch.cuda.get_device_properties(info.device).total_memory)
    return Topology(world_size=info.world_size, local_world_size=info.local_world_size,
                    compute_device=info.device.type, **kwargs)


def planner_for(info: DistInfo, sharding_type: str, local_batch_size: int,
                table_names: list[str]) -> EmbeddingShardingPlanner:
    constraints = None
    if sharding_type == "auto" and info.world_size == 1:
        # One rank: nothing to balance, and the planner's data_parallel choice for the small
        # tables costs a DDP pass, a dense gradient of those tables and an all-reduce every step.
        sharding_type = "table_wise"
    if sharding_type != "auto":
        value = ShardingType(sharding_type).value
        constraints = {name: ParameterConstraints(sharding_types=[value]) for name in table_names}
    return EmbeddingShardingPlanner(
        topology=topology(info), batch_size=local_batch_size, constraints=constraints,
        storage_reservation=HeuristicalStorageReservation(percentage=STORAGE_RESERVATION),
    )


def plan_sharding(model: torch.nn.Module, info: DistInfo, sharding_type: str, local_batch_size: int,
                  table_names: list[str]) -> ShardingPlan:
    planner = planner_for(info, sharding_type, local_batch_size, table_names)
    # collective_plan: rank 0 plans and broadcasts, so every rank shards identically.
    return planner.collective_plan(model, get_default_sharders(), dist.GroupMember.WORLD)


def shard(model: torch.nn.Module, trainer_cfg: TrainerConfig, sharding_type: str, info: DistInfo,
          table_names: list[str]) -> tuple[DistributedModelParallel, CombinedOptimizer, ShardingPlan]:
    """Fuse the embedding optimizer, plan, wrap in DMP, and build the dense optimizer."""
    name = trainer_cfg.embedding_optimizer
    emb_kwargs: dict[str, Any] = {"lr": embedding_lr(name, trainer_cfg.embedding_lr, info.world_size, sharding_type)}
    if name in ("rowwise_adagrad", "adagrad"):
        emb_kwargs["eps"] = 1e-8
    apply_optimizer_in_backward(EMBEDDING_OPTIMIZERS[name], model.model.sparse_arch.parameters(), emb_kwargs)
    plan = plan_sharding(model, info, sharding_type, trainer_cfg.batch_size // info.world_size, table_names)
    dmp = DistributedModelParallel(
        module=model,
        env=ShardingEnv.from_process_group(dist.GroupMember.WORLD),
        device=info.device,
        plan=plan,
        sharders=get_default_sharders(),
        # One rank and no data-parallel table: DDP would only add its forward hooks and an
        # all-reduce over a group of one.
        init_data_parallel=not (info.world_size == 1 and "data_parallel" not in sharding_types_used(plan)),
    )
    dense_cls = DENSE_OPTIMIZERS[trainer_cfg.dense_optimizer]
    dense_optimizer = KeyedOptimizerWrapper(
        dict(in_backward_optimizer_filter(dmp.named_parameters())),
        lambda params: dense_cls(params, lr=trainer_cfg.dense_lr),
    )
    return dmp, CombinedOptimizer([dmp.fused_optimizer, dense_optimizer]), plan


def tables_per_rank(plan: ShardingPlan) -> dict[int, list[str]]:
    """Which tables (or shards of them) each rank holds: evidence the tables are really placed."""
    placed: dict[int, list[str]] = {}
    for module_plan in plan.plan.values():
        for table, param_sharding in module_plan.items():
            ranks = param_sharding.ranks or []
            for r in ranks:
                placed.setdefault(int(r), []).append(table)
    return placed


def sharding_types_used(plan: ShardingPlan) -> list[str]:
    return sorted({ps.sharding_type for mp in plan.plan.values() for ps in mp.values()})


# Rows drawn from one generator: a rank draws only the blocks its shards touch, one at a time,
# so initialising a table costs a rank its shards plus one block, never the whole table.
INIT_BLOCK_ROWS = 2 ** 18


def table_seed(seed: int, table: str) -> int:
    return seed * 1_000_003 + sum(map(ord, table)) * 7919 + len(table)


def _block_generator(seed_of_table: int, block: int) -> torch.Generator:
    # Block 0 draws from the table's own seed: a table of at most INIT_BLOCK_ROWS rows is the
    # one draw of the whole table, and a larger one starts with that draw's first rows.
    return torch.Generator().manual_seed((seed_of_table + block * 0x9E3779B97F4A7C15) % 2 ** 63)


def init_slice(seed_of_table: int, rows: int, cols: int, r0: int, nr: int, c0: int, nc: int,
               block_rows: int = INIT_BLOCK_ROWS) -> torch.Tensor:
    """Rows r0..r0+nr, columns c0..c0+nc of a table's initial values, TorchRec's default law
    U(-sqrt(1/rows), sqrt(1/rows)), drawn block by block: the same values whatever slice is asked."""
    out = torch.empty(nr, nc)
    bound = (1.0 / rows) ** 0.5
    if nr == 0 or nc == 0:
        return out
    for block in range(r0 // block_rows, (r0 + nr - 1) // block_rows + 1):
        b0, b1 = block * block_rows, min((block + 1) * block_rows, rows)
        values = torch.empty(b1 - b0, cols).uniform_(-bound, bound, generator=_block_generator(seed_of_table, block))
        lo, hi = max(r0, b0), min(r0 + nr, b1)
        out[lo - r0:hi - r0] = values[lo - b0:hi - b0, c0:c0 + nc]
    return out


def init_tables(dmp: DistributedModelParallel, seed: int) -> int:
    """Initialise every embedding table the same way whatever the sharding and world size.

    DMP allocates each shard on its rank from that rank's RNG, so the same seed would
    give other initial tables under another plan -- a confound in a study that compares
    world sizes or sharding types.  Here the values of table t come from generators seeded
    by (seed, t) and the row block (`init_slice`), and each rank draws only the rows of the
    shards it holds: at Criteo 1TB sizes a full table per rank would be tens of GB.
    Returns the number of tables initialised.
    """
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    count = 0
    with torch.no_grad():
        for key, value in dmp.state_dict().items():
            if not key.endswith(".weight") or ".embedding_bags." not in key:
                continue
            table = key.split(".embedding_bags.")[1].rsplit(".", 1)[0]
            rows, cols = value.size()
            ts = table_seed(seed, table)
            if isinstance(value, ShardedTensor):
                for shard in value.local_shards():
                    (r0, c0), (nr, nc) = shard.metadata.shard_offsets, shard.metadata.shard_sizes
                    shard.tensor.copy_(init_slice(ts, rows, cols, r0, nr, c0, nc))
            else:
                value.copy_(init_slice(ts, rows, cols, 0, rows, 0, cols))
            count += 1
    return count
