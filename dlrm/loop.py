"""One training run: one pass over `data.num_train_samples`, evals, the run dir.

A flat loop on purpose (nanoGPT's shape): batches come from the prefetch thread, the
step is `train_step`, and everything else happens between steps at sample counts, each
component deciding its own timing -- a log point every N samples, evals at their
schedule (schedule.py), checkpoints when their interval passed or a preemption signal
arrived.  One small all-reduce per step makes every rank agree on the divergence flag
and the checkpoint decision.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import torch

import rundir
from dlrm import distributed
from dlrm.batches import (GENERATION_BLOCK_SAMPLES, BatchMaker, batch_blocks, contiguous_runs, eval_slices,
                          global_batches, prefetch, rank_slice, single_threaded_numpy_blas)
from dlrm.checkpoint import Checkpointer
from dlrm.config import Config, DataConfig, TrainerConfig
from dlrm.data import make_source
from dlrm.data.source import Arrays
from dlrm.data.stream_cache import CachedStream
from dlrm.distributed import DistInfo
from dlrm.faults import Faults
from dlrm.metrics import evaluate
from dlrm.model import ModelShape, PrecisionDLRMTrain, build_model, shape_from_config
from dlrm.progress import Progress
from dlrm.schedule import Every, eval_schedule, warmup_scale
from dlrm.sharding import init_tables, shard
from dlrm.steps import PipelinedSteps, plain_steps, use_pipeline
from dlrm.summary import run_summary

log = logging.getLogger("dlrm")


class Diverged(RuntimeError):
    def __init__(self, step: int, samples_seen: int, value: float, what: str = "training loss"):
        super().__init__(f"{what} is {value} at step {step} ({samples_seen} samples): the run diverged")
        self.step, self.samples_seen, self.value = step, samples_seen, value


# Steps between loss reads on CUDA: a NaN or a preemption is acted on within this many steps.
SYNC_EVERY_STEPS_CUDA = 20


@dataclass
class Trainable:
    """What a run trains: built once, here, for the loop and the benchmarks alike."""

    source: Any  # DataSource
    shape: ModelShape
    model: Any  # DistributedModelParallel(DLRMTrain)
    optimizer: Any  # CombinedOptimizer: the fused embedding optimizer + the dense one
    plan: Any  # ShardingPlan
    maker: BatchMaker
    info: DistInfo
    host_maker: Optional[BatchMaker] = None  # batches in host memory, for TorchRec's pipeline

    def train_batch(self, start: int, size: int, on_host: bool = False):
        """This rank's part of the global batch [start, start + size) of the training stream,
        on the device -- or in pinned host memory (`on_host`), for TorchRec's pipeline, which
        copies batches to the device on a stream of its own."""
        lo, hi = rank_slice(start, size, self.info.rank, self.info.world_size)
        return self._to_batch(self.source.train_arrays(lo, hi), on_host)

    def _to_batch(self, arrays: Arrays, on_host: bool):
        if not on_host or self.info.device.type == "cpu":
            return self.maker(arrays)
        if self.host_maker is None:  # made once: it caches the offsets of each batch size
            self.host_maker = BatchMaker(self.shape.num_sparse_features, torch.device("cpu"))
        return self.host_maker(arrays).pin_memory()

    def train_block(self, block: list[tuple[int, int]], on_host: bool = False) -> list[tuple[int, Any]]:
        """(size, train_batch) of each global batch (start, size) of `block`, this rank's samples
        of adjacent batches read from the source in one call (all of them on one rank)."""
        slices = [rank_slice(start, size, self.info.rank, self.info.world_size) for start, size in block]
        arrays = Arrays.concatenate([self.source.train_arrays(lo, hi) for lo, hi in contiguous_runs(slices)])
        out, pos = [], 0
        for (_, size), (lo, hi) in zip(block, slices):
            out.append((size, self._to_batch(arrays.rows(pos, pos + hi - lo), on_host)))
            pos += hi - lo
        return out

    def train_batches(self, num_samples: int, batch_size: int, first_sample: int, depth: int,
                      on_host: bool = False) -> Iterator[tuple[int, Any]]:
        """(size, batch) of each global batch of [first_sample, num_samples): made in the prefetch
        thread `depth` batches ahead (0: in the loop), GENERATION_BLOCK_SAMPLES of this rank's
        samples at a time."""
        per_block = max(1, GENERATION_BLOCK_SAMPLES // max(1, batch_size // self.info.world_size))
        blocks = prefetch(batch_blocks(global_batches(num_samples, batch_size, first_sample), per_block),
                          lambda block: self.train_block(block, on_host), -(-depth // per_block))
        for block in blocks:
            yield from block


def build(cfg: Config, info: DistInfo, source: Any = None) -> Trainable:
    """Data source, model (tables on meta), sharding plan, DMP, optimizers, table init."""
    tcfg = cfg.trainer
    if tcfg.num_threads:
        torch.set_num_threads(int(tcfg.num_threads))
    single_threaded_numpy_blas()
    source = source if source is not None else make_source(cfg.data, cfg.seed)
    if tcfg.stream_cache_dir and hasattr(source, "stream_id"):  # synthetic streams: a pure function of the index
        source = CachedStream(source, tcfg.stream_cache_dir, int(tcfg.stream_cache_max_gb * 2**30))
    shape = shape_from_config(cfg.model, source.cardinalities, source.num_dense_features)
    torch.manual_seed(cfg.seed)  # the same init on every rank; DDP broadcasts rank 0's dense params anyway
    model = PrecisionDLRMTrain(build_model(shape, info.device), tcfg.dense_precision, info.device.type)
    table_names = [c.name for c in model.model.sparse_arch.embedding_bag_collection.embedding_bag_configs()]
    model, optimizer, plan = shard(model, tcfg, cfg.sharding.type, info, table_names)
    init_tables(model, int(cfg.seed))
    return Trainable(source, shape, model, optimizer, plan, BatchMaker(shape.num_sparse_features, info.device), info)


# Eval batches of the current process, kept across the runs of an in-process sweep:
# every run of a sweep evaluates on the same fixed slice.
_EVAL_CACHE: dict[str, list] = {}


def eval_batches(t: Trainable, data_cfg: DataConfig, eval_batch_size: int) -> list:
    eval_defining = {k: v for k, v in asdict(data_cfg).items() if k != "num_train_samples"}
    key = f"{eval_defining}|{t.info.rank}/{t.info.world_size}|{eval_batch_size}"
    if key not in _EVAL_CACHE:
        _EVAL_CACHE.clear()  # one eval set at a time: bounded memory
        _EVAL_CACHE[key] = [t.maker(t.source.eval_arrays(s, e)) for s, e in
                            eval_slices(t.source.num_eval_samples, eval_batch_size, t.info.rank, t.info.world_size)]
    return _EVAL_CACHE[key]


def _tensorboard(run_dir: Path, tcfg: TrainerConfig):
    if not tcfg.tensorboard:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ImportError("trainer.tensorboard=true needs the tensorboard package: "
                          ".venv/bin/pip install tensorboard (or -e '.[tensorboard]')") from e
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


class _Logger:
    """metrics.jsonl (and TensorBoard) on rank 0; a train point every `log_every` samples."""

    def __init__(self, run_dir: Path, tcfg: TrainerConfig, info: DistInfo, samples_seen: int, total: int, label: str):
        self.metrics = rundir.MetricsLog(run_dir, truncate_after_samples=samples_seen) if info.is_main else None
        self.writer = _tensorboard(run_dir, tcfg) if info.is_main else None
        self.every = Every(int(tcfg.log_every_samples), samples_seen)
        self.progress = Progress(total, samples_seen, tcfg.progress_bar, info.is_main, label)
        self.total, self.label = total, label
        self._reset(samples_seen)

    def _reset(self, samples_seen: int) -> None:
        self.loss_sum, self.steps, self.t0, self.samples0 = 0.0, 0, time.perf_counter(), samples_seen

    def step(self, step: int, samples_seen: int, size: int, loss: float, lr: float) -> None:
        self.loss_sum += loss
        self.steps += 1
        self.progress.update(size, loss)
        if not (self.every(samples_seen) or samples_seen == self.total):
            return
        rate = (samples_seen - self.samples0) / max(time.perf_counter() - self.t0, 1e-9)
        point = {"kind": rundir.POINT_TRAIN, "step": step, "samples_seen": samples_seen,
                 "train_loss": self.loss_sum / self.steps, "lr": lr, "samples_per_second": rate}
        if self.metrics:
            self.metrics.write(point)
            if self.writer:
                self.writer.add_scalar("train/loss", point["train_loss"], samples_seen)
            if self.progress.bar is None:
                log.info("%s step %d  %d/%d samples  loss %.4f  %.0f samples/s", self.label, step,
                         samples_seen, self.total, point["train_loss"], rate)
        self._reset(samples_seen)

    def eval(self, step: int, samples_seen: int, result: dict, final: bool) -> None:
        if self.metrics:
            self.metrics.write({"kind": rundir.POINT_EVAL, "step": step, "samples_seen": samples_seen,
                                **result, "final": final})
        if self.writer:
            for k, v in result.items():
                self.writer.add_scalar(f"eval/{k}", v, samples_seen)

    def close(self) -> None:
        self.progress.close()
        if self.metrics:
            self.metrics.close()
        if self.writer:
            self.writer.close()


def sync_every_steps(trainer_cfg: TrainerConfig, device_type: str) -> int:
    """How many steps the loop runs between reading its losses (trainer.sync_every_steps; null:
    1 on CPU, where reading a loss costs nothing, SYNC_EVERY_STEPS_CUDA on CUDA)."""
    value = trainer_cfg.sync_every_steps
    return int(value) if value is not None else (SYNC_EVERY_STEPS_CUDA if device_type == "cuda" else 1)


def train(cfg: Config, run_dir: Path, info: DistInfo, progress_label: str = "") -> dict:
    """Train one run and return its summary's fields (the caller writes it, rundir.write_summary,
    which adds the run's identity: rundir_version, status, run_name, seed)."""
    t_start = time.perf_counter()
    tcfg = cfg.trainer
    t = build(cfg, info)
    num_train = int(cfg.data.num_train_samples)
    if t.source.max_train_samples is not None and num_train > t.source.max_train_samples:
        raise ValueError(f"data.num_train_samples={num_train} exceeds the {t.source.max_train_samples} training "
                         f"samples of data.name={cfg.data.name}")
    ckpt = Checkpointer(run_dir, info, tcfg)
    state = ckpt.restore(t.model, t.optimizer)  # {} on a fresh start
    samples_seen, step = int(state.get("samples_seen", 0)), int(state.get("step", 0))
    train_seconds, eval_seconds = float(state.get("train_seconds", 0.0)), 0.0
    loss_value = float(state.get("train_loss_last", "nan"))  # a run resumed at its very end trains no step
    logger = _Logger(run_dir, tcfg, info, samples_seen, num_train, progress_label)
    batches = eval_batches(t, cfg.data, int(tcfg.eval_batch_size))
    evals = Every.at(eval_schedule(num_train, tcfg), samples_seen)
    base_lrs = [group["lr"] for group in t.optimizer.param_groups]
    warmup = int(tcfg.lr_warmup_samples)
    faults = Faults.from_config(cfg.faults, info.rank, first_attempt=not state)
    setup_seconds = time.perf_counter() - t_start

    def set_lr(samples_after_step: int) -> None:
        if warmup:
            scale = warmup_scale(samples_after_step, warmup)
            for group, lr in zip(t.optimizer.param_groups, base_lrs):
                group["lr"] = lr * scale

    pipelined = use_pipeline(tcfg, info.device.type) and not faults.needs_plain_step

    items = t.train_batches(num_train, int(tcfg.batch_size), samples_seen, int(tcfg.prefetch_batches), on_host=pipelined)
    if pipelined:
        steps = PipelinedSteps(t, items, set_lr, samples_seen, int(tcfg.batch_size), num_train)
        pause = steps.pause
    else:
        steps, pause = plain_steps(t, items, set_lr, samples_seen, step, faults.poisons_update), (lambda: None)
    sync_every = sync_every_steps(tcfg, info.device.type)
    pending: list[tuple[int, int, int, torch.Tensor, float]] = []  # steps whose loss is still on the device
    t_loop = time.perf_counter()
    try:
        for size, loss in steps:
            loss = faults.on_loss(step, loss)
            step += 1
            samples_seen += size
            faults.after_step(step)
            pending.append((step, samples_seen, size, loss, t.optimizer.param_groups[-1]["lr"]))
            eval_due = evals(samples_seen) and samples_seen < num_train
            # The losses are read, and the ranks agree, only at a sync step: the same steps on
            # every rank (by step and sample counts alone), every sync_every steps and before
            # every eval, samples-due checkpoint and the end.  Reading a loss waits for the
            # device, which would stall TrainPipelineSparseDist's overlap every step.
            if not (step % sync_every == 0 or eval_due or samples_seen >= num_train
                    or ckpt.due_by_samples(samples_seen)):
                continue
            losses = torch.stack([p[3] for p in pending]).tolist()
            mine = next((p[0] for p, v in zip(pending, losses) if not math.isfinite(v)), None)
            # One collective: the earliest non-finite loss on any rank ends the run on every
            # rank at that step, and every rank checkpoints together.
            bad_step, (save, preempt) = distributed.agree(mine, [ckpt.due(samples_seen), ckpt.preempt_requested()],
                                                          info)
            for (s, n, sz, _, lr), v in zip(pending, losses):
                if bad_step is not None and s >= bad_step:
                    raise Diverged(s, n, v if not math.isfinite(v) else float("nan"))
                logger.step(s, n, sz, v, lr)
            loss_value = losses[-1]
            pending.clear()
            if eval_due:
                t_eval = time.perf_counter()
                pause()
                logger.eval(step, samples_seen, evaluate(t.model, batches, info), final=False)
                eval_seconds += time.perf_counter() - t_eval
            if save or preempt:
                ckpt.save(t.model, t.optimizer, {
                    "samples_seen": samples_seen, "step": step, "train_loss_last": loss_value,
                    "train_seconds": train_seconds + time.perf_counter() - t_loop - eval_seconds})
                if preempt:
                    ckpt.raise_preempted()
    finally:
        logger.progress.close()
        ckpt.close()  # give the preemption signals back, whatever ended the loop
    train_seconds += time.perf_counter() - t_loop - eval_seconds
    t_eval = time.perf_counter()
    pause()
    final = evaluate(t.model, batches, info)
    eval_seconds += time.perf_counter() - t_eval
    logger.eval(step, samples_seen, final, final=True)
    logger.close()
    if not math.isfinite(final["eval_logloss"]):  # the last update made a NaN: not a result
        raise Diverged(step, samples_seen, final["eval_logloss"], what="the final eval's log loss")
    return run_summary(cfg, t, final, {
        "steps": step, "train_loss_last": loss_value, "setup_seconds": setup_seconds,
        "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "train_samples_per_second": num_train / max(train_seconds, 1e-9),
        "resumed_from_samples": int(state.get("samples_seen", 0)),
        "checkpoints_written": ckpt.saves, "checkpoint_seconds": ckpt.seconds_spent,
    })
