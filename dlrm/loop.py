"""One training run: one pass over `data.num_train_samples`, evals, the run dir.

A flat loop on purpose: batches come from the prefetch thread, the step is forward,
backward (the fused embedding optimizer updates the tables inside backward) and the
dense optimizer's step; everything else -- logging, evals, checkpoints, the divergence
check -- happens between steps at sample counts.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path
from typing import Any, Optional

import torch
import torch.distributed as dist
from omegaconf import OmegaConf
from torchrec.models.dlrm import DLRMTrain

from dlrm import rundir
from dlrm.batches import BatchMaker, eval_slices, global_batches, prefetch, rank_slice
from dlrm.checkpoint import Checkpointer
from dlrm.data import make_source
from dlrm.distributed import DistInfo
from dlrm.metrics import eval_metrics
from dlrm.model import build_model, flops_per_sample, param_counts, shape_from_config
from dlrm.sharding import init_tables, shard, sharding_types_used, tables_per_rank

log = logging.getLogger("dlrm")


class Diverged(RuntimeError):
    def __init__(self, step: int, samples_seen: int, loss: float):
        super().__init__(f"training loss is {loss} at step {step} ({samples_seen} samples): the run diverged")
        self.step, self.samples_seen, self.loss = step, samples_seen, loss


# Eval batches of the current process, kept across the runs of an in-process sweep:
# every run of a sweep evaluates on the same fixed slice.
_EVAL_CACHE: dict[str, list] = {}


def _eval_batches(source, data_cfg, maker: BatchMaker, info: DistInfo, eval_batch_size: int) -> list:
    eval_defining = {k: v for k, v in OmegaConf.to_container(data_cfg, resolve=True).items() if k != "num_train_samples"}
    key = f"{eval_defining}|{info.rank}/{info.world_size}|{eval_batch_size}"
    if key not in _EVAL_CACHE:
        _EVAL_CACHE.clear()  # one eval set at a time: bounded memory
        _EVAL_CACHE[key] = [maker(source.eval_arrays(s, e)) for s, e in
                            eval_slices(source.num_eval_samples, eval_batch_size, info.rank, info.world_size)]
    return _EVAL_CACHE[key]


def evaluate(model, batches: list, info: DistInfo) -> dict[str, float]:
    model.eval()
    probs, labels = [], []
    with torch.no_grad():
        for batch in batches:
            _, (_, logits, y) = model(batch)
            probs.append(torch.sigmoid(logits.float()).cpu())
            labels.append(y.float().cpu())
    model.train()
    p, y = torch.cat(probs), torch.cat(labels)
    if info.world_size > 1:  # every rank holds an equal share: gather them all
        gathered_p = [torch.empty_like(p) for _ in range(info.world_size)]
        gathered_y = [torch.empty_like(y) for _ in range(info.world_size)]
        dist.all_gather(gathered_p, p)
        dist.all_gather(gathered_y, y)
        p, y = torch.cat(gathered_p), torch.cat(gathered_y)
    return eval_metrics(p, y)


class _Progress:
    """A tqdm bar on a terminal; plain log lines otherwise."""

    def __init__(self, total: int, initial: int, enabled: Any, is_main: bool, label: str):
        use_bar = is_main and (sys.stderr.isatty() if enabled == "auto" else bool(enabled))
        self.bar = None
        if use_bar:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="sample", unit_scale=True, desc=label,
                            dynamic_ncols=True, leave=False)

    def update(self, n: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(n)
            self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(cfg: Any, run_dir: Path, info: DistInfo, progress_label: str = "") -> dict:
    """Train one run and return its summary (the caller writes it)."""
    t_start = time.perf_counter()
    tcfg = cfg.trainer
    if tcfg.num_threads:
        torch.set_num_threads(int(tcfg.num_threads))
    source = make_source(cfg.data, cfg.seed)
    num_train = int(cfg.data.num_train_samples)
    if source.max_train_samples is not None and num_train > source.max_train_samples:
        raise ValueError(f"data.num_train_samples={num_train} exceeds the {source.max_train_samples} training "
                         f"samples of data.name={cfg.data.name}")
    shape = shape_from_config(cfg.model, source.cardinalities, source.num_dense_features)
    torch.manual_seed(cfg.seed)  # the same init on every rank; DDP broadcasts rank 0's dense params anyway
    model = DLRMTrain(build_model(shape, info.device))
    table_names = [c.name for c in model.model.sparse_arch.embedding_bag_collection.embedding_bag_configs()]
    model, optimizer, plan = shard(model, tcfg, cfg.sharding.type, info, table_names)
    init_tables(model, int(cfg.seed))
    maker = BatchMaker(shape.num_sparse_features, info.device)

    ckpt = Checkpointer(run_dir, info, tcfg)
    state = ckpt.restore(model, optimizer)  # {} on a fresh start
    samples_seen = int(state.get("samples_seen", 0))
    step = int(state.get("step", 0))
    train_seconds = float(state.get("train_seconds", 0.0))
    metrics = rundir.MetricsLog(run_dir, truncate_after_samples=samples_seen) if info.is_main else None
    writer = _tensorboard(run_dir, tcfg) if info.is_main else None

    eval_batches = _eval_batches(source, cfg.data, maker, info, int(tcfg.eval_batch_size))
    batch_size = int(tcfg.batch_size)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    warmup = int(tcfg.lr_warmup_samples or 0)
    log_every = int(tcfg.log_every_samples)
    eval_every = tcfg.eval_every_samples
    next_log = (samples_seen // log_every + 1) * log_every
    next_eval = (samples_seen // eval_every + 1) * eval_every if eval_every else None
    nan_at_step = tcfg.get("debug_nan_at_step")
    window_loss, window_steps = 0.0, 0
    loss_value = float(state.get("train_loss_last", "nan"))  # a run resumed at its very end trains no step
    progress = _Progress(num_train, samples_seen, tcfg.progress_bar, info.is_main, progress_label)
    setup_seconds = time.perf_counter() - t_start

    def make(item):
        start, size = item
        lo, hi = rank_slice(start, size, info.rank, info.world_size)
        return size, maker(source.train_arrays(lo, hi))

    last_eval: Optional[dict] = None
    t_window = time.perf_counter()
    samples_window = 0
    t_loop = time.perf_counter()
    try:
        for size, batch in prefetch(global_batches(num_train, batch_size, samples_seen), make,
                                    int(tcfg.prefetch_batches)):
            if warmup:
                scale = min(1.0, (samples_seen + size) / warmup)
                for group, lr in zip(optimizer.param_groups, base_lrs):
                    group["lr"] = lr * scale
            loss, _ = model(batch)
            if nan_at_step is not None and step == nan_at_step:
                loss = loss * float("nan")  # fault injection for the divergence tests
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()  # also hands the (warmed-up) lr to the fused kernels
            loss_value = float(loss.detach())
            step += 1
            samples_seen += size
            samples_window += size
            if not math.isfinite(loss_value):
                raise Diverged(step, samples_seen, loss_value)
            window_loss += loss_value
            window_steps += 1
            progress.update(size, loss_value)

            if samples_seen >= next_log or samples_seen == num_train:
                now = time.perf_counter()
                point = {"step": step, "samples_seen": samples_seen, "train_loss": window_loss / window_steps,
                         "lr": optimizer.param_groups[-1]["lr"],
                         "samples_per_second": samples_window / max(now - t_window, 1e-9)}
                if metrics:
                    metrics.write(point)
                    if writer:
                        writer.add_scalar("train/loss", point["train_loss"], samples_seen)
                    if not progress.bar:
                        log.info("%s step %d  %d/%d samples  loss %.4f  %.0f samples/s", progress_label, step,
                                 samples_seen, num_train, point["train_loss"], point["samples_per_second"])
                window_loss, window_steps, samples_window, t_window = 0.0, 0, 0, now
                next_log = (samples_seen // log_every + 1) * log_every
            if next_eval is not None and samples_seen >= next_eval and samples_seen < num_train:
                last_eval = evaluate(model, eval_batches, info)
                if metrics:
                    metrics.write({"step": step, "samples_seen": samples_seen, **last_eval})
                next_eval = (samples_seen // eval_every + 1) * eval_every
            ckpt.maybe_save(model, optimizer, {"samples_seen": samples_seen, "step": step, "train_loss_last": loss_value,
                                               "train_seconds": train_seconds + time.perf_counter() - t_loop})
    finally:
        progress.close()
        ckpt.close()  # give the preemption signals back, whatever ended the loop
    train_seconds += time.perf_counter() - t_loop
    final = evaluate(model, eval_batches, info)
    if metrics:
        metrics.write({"step": step, "samples_seen": samples_seen, **final})
        metrics.close()
    if writer:
        for k, v in final.items():
            writer.add_scalar(f"eval/{k}", v, samples_seen)
        writer.close()

    counts = param_counts(shape)
    fps = flops_per_sample(shape)
    placed = tables_per_rank(plan)
    return {
        "run_name": run_dir.name,
        "seed": int(cfg.seed),
        "model": shape.name,
        "data": cfg.data.name,
        "world_size": info.world_size,
        "embedding_dim": shape.embedding_dim,
        "dense_arch_layer_sizes": list(shape.dense_arch_layer_sizes),
        "over_arch_layer_sizes": list(shape.over_arch_layer_sizes),
        "mlp_width": int(cfg.model.mlp_width),
        "mlp_depth": int(cfg.model.mlp_depth),
        "num_train_samples": num_train,
        "num_eval_samples": int(source.num_eval_samples),
        "batch_size": batch_size,
        **counts,
        "flops_per_sample": fps,
        "train_flops": fps * num_train,
        **final,
        "train_loss_last": loss_value,
        "bayes_logloss": source.bayes_logloss,
        "bayes_ne": source.bayes_ne,
        "sharding_type": cfg.sharding.type,
        "sharding_types_used": sharding_types_used(plan),
        "tables_per_rank": {str(r): len(t) for r, t in sorted(placed.items())},
        "steps": step,
        "setup_seconds": setup_seconds,
        "train_seconds": train_seconds,
        "train_samples_per_second": num_train / max(train_seconds, 1e-9),
        "resumed_from_samples": int(state.get("samples_seen", 0)),
        "checkpoints_written": ckpt.saves,
        "checkpoint_seconds": ckpt.seconds_spent,
    }


def _tensorboard(run_dir: Path, tcfg: Any):
    if not tcfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError("trainer.tensorboard=true needs the tensorboard package: "
                          ".venv/bin/pip install tensorboard (or -e '.[tensorboard]')") from e
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))
