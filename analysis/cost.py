"""What a DLRM training run costs on given hardware: a roofline sum per sample, and memory.

Per sample, on one device (a rank), four terms add up (each at a measured or assumed
efficiency of the hardware's peak; `analysis.hardware` holds the profiles):

- dense compute: the model's forward + backward FLOPs per sample (`flops_per_sample`, the
  model's own formula) at `peak_flops_per_s * efficiency.dense`;
- embedding memory traffic: every lookup reads its row in the forward pass, and the fused
  optimizer reads and writes it again in the backward (3 x dim x bytes per parameter), plus
  the row-wise Adagrad state (one fp32 per row, read and written), at the memory bandwidth;
- communication (more than one device): the all-to-all of the pooled embeddings, forward
  and their gradients backward (2 x lookups x dim x 4 bytes, the share (W-1)/W that leaves
  the device), and the all-reduce of the dense gradients per step (2 (W-1)/W x dense
  params x 4 bytes, spread over the step's samples), at the slowest link in use (the
  intra-node link within one node, the network across nodes);
- a fixed time per step (kernel launches, the host's share of a step), spread over the
  step's samples on a device.

The sum (not the max) of the terms: the harness does not overlap them (a conservative
bound where it does).  Ignored: data loading (generated or read off the critical path),
evaluation, checkpoints, start-up, and cache effects of the embedding lookups (every
lookup is priced as a row read from memory).

Memory of a run: the tables at the bytes per parameter, their row-wise optimizer state
(4 bytes a row), the dense parameters with their gradients and Adagrad state (3 x 4
bytes each), and the activations of one step kept for the backward (2 x 4 bytes per
activation).  A run needs ceil(memory / usable memory) devices.

Calibration fits the efficiencies to measured runs (their `train_samples_per_second`) by
non-negative least squares on the four terms; a term the runs do not exercise (one device:
no communication) keeps the profile's value.  Used by the planner and the report, never
by training.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

import numpy as np
from scipy.optimize import nnls

FP32_BYTES = 4
# Each lookup's row: read in the forward, read and written by the fused optimizer's update.
ROW_TRAFFIC = 3
OPTIMIZER_STATE_BYTES_PER_ROW = 4  # row-wise Adagrad: one fp32 per row
DENSE_STATE_COPIES = 3  # weight, gradient, Adagrad state
USABLE_MEMORY = 0.85  # of a device's memory: the rest goes to the runtime, allocator and buffers
TERMS = ("dense", "memory", "network", "step")


@dataclass(frozen=True)
class Efficiency:
    """The fraction of each peak a run reaches, and the fixed time of one step."""

    dense: float
    memory: float
    network: float
    step_seconds: float


@dataclass(frozen=True)
class Hardware:
    name: str
    peak_flops_per_s: float  # one device, at the training precision (fp32)
    memory_bytes_per_s: float
    intra_node_bytes_per_s: float  # per device, one direction
    inter_node_bytes_per_s: float  # per device, one direction
    memory_bytes: float
    efficiency: Efficiency
    source: str  # where the peaks come from
    calibration: str  # what set the efficiencies: measured runs, or "assumed"

    def usable_memory_bytes(self) -> float:
        return self.memory_bytes * USABLE_MEMORY


@dataclass(frozen=True)
class Workload:
    """One run's demands per sample and its sizes (from its summary)."""

    flops_per_sample: float
    embedding_dim: float
    lookups_per_sample: float
    params_embedding: float
    params_dense: float
    batch_size: float  # global
    activations_per_sample: float
    bytes_per_param: float = 4.0

    @property
    def embedding_rows(self) -> float:
        return self.params_embedding / self.embedding_dim

    @classmethod
    def from_run(cls, run: dict[str, Any], bytes_per_param: float = 4.0) -> "Workload":
        dim = float(run["embedding_dim"])
        lookups = float(run.get("embedding_lookups_per_sample") or _tables(run))
        dense_sizes = list(run.get("dense_arch_layer_sizes") or [])
        over_sizes = list(run.get("over_arch_layer_sizes") or [])
        # Activations kept for the backward: the MLPs' outputs, the pooled embeddings and the
        # interaction's pairwise dots (the over arch's input).
        pairs = (lookups + 1) * lookups / 2
        acts = sum(dense_sizes) + sum(over_sizes) + lookups * dim + pairs + dim
        return cls(flops_per_sample=float(run["flops_per_sample"]), embedding_dim=dim, lookups_per_sample=lookups,
                   params_embedding=float(run["params_embedding"]), params_dense=float(run["params_dense"]),
                   batch_size=float(run.get("batch_size") or 512), activations_per_sample=acts,
                   bytes_per_param=bytes_per_param)


def _tables(run: dict[str, Any]) -> float:
    """Lookups per sample of a summary without the field: one id per table (the datasets'
    features are single-valued); the tables from the placement record of a one-rank run."""
    placed = run.get("tables_per_rank") or {}
    if placed and int(run.get("world_size") or 1) == 1:
        return float(sum(placed.values()))
    raise ValueError(f"run {run.get('run_name')}: no embedding_lookups_per_sample in its summary and no "
                     "one-rank table placement to count them from")


def pricing_problems(runs: list[dict[str, Any]]) -> list[str]:
    """Why the cost model cannot price some of `runs` (empty when it can price them all):
    checked before the laws are fitted, so a refusal costs no work."""
    missing = []
    for r in runs:
        try:
            Workload.from_run(r)
        except (KeyError, TypeError, ValueError) as e:
            missing.append(f"{r.get('run_name')} ({e.args[0] if isinstance(e, KeyError) else e})")
    if not missing:
        return []
    return [f"{len(missing)} run(s) the cost model cannot price, e.g. {missing[0]}: their summaries lack "
            "embedding_lookups_per_sample (written by this version's training) or a field it needs; rerun "
            "them, or plan on run dirs that hold it"]


def term_amounts(w: Workload, devices: int, devices_per_node: int) -> dict[str, float]:
    """Per sample on one device: FLOPs, memory bytes, bytes sent, and the steps (1 / the
    device's share of a step's samples)."""
    leaves = (devices - 1) / devices
    per_device_batch = max(w.batch_size / devices, 1.0)
    a2a = 2 * w.lookups_per_sample * w.embedding_dim * FP32_BYTES * leaves
    allreduce = 2 * leaves * w.params_dense * FP32_BYTES / per_device_batch
    return {
        "dense": w.flops_per_sample,
        "memory": w.lookups_per_sample * (ROW_TRAFFIC * w.embedding_dim * w.bytes_per_param
                                          + 2 * OPTIMIZER_STATE_BYTES_PER_ROW),
        "network": a2a + allreduce if devices > 1 else 0.0,
        "step": 1.0 / per_device_batch,
    }


def link_bytes_per_s(hw: Hardware, devices: int, devices_per_node: int) -> float:
    return hw.intra_node_bytes_per_s if devices <= devices_per_node else hw.inter_node_bytes_per_s


def _rates(hw: Hardware, devices: int, devices_per_node: int) -> dict[str, float]:
    """Seconds per unit of each term at peak."""
    return {"dense": 1.0 / hw.peak_flops_per_s, "memory": 1.0 / hw.memory_bytes_per_s,
            "network": 1.0 / link_bytes_per_s(hw, devices, devices_per_node), "step": 1.0}


def seconds_per_sample(w: Workload, hw: Hardware, devices: int = 1, devices_per_node: int = 8) -> dict[str, float]:
    """Each term's seconds per sample on one device, and their `total`."""
    amounts, rates = term_amounts(w, devices, devices_per_node), _rates(hw, devices, devices_per_node)
    e = hw.efficiency
    scale = {"dense": 1 / e.dense, "memory": 1 / e.memory, "network": 1 / e.network, "step": e.step_seconds}
    out = {t: amounts[t] * rates[t] * scale[t] for t in TERMS}
    out["total"] = sum(out.values())
    return out


def training_seconds(w: Workload, samples: float, hw: Hardware, devices: int, devices_per_node: int = 8) -> float:
    """Wall seconds to train `samples` on `devices` (each takes 1/devices of every step)."""
    return samples * seconds_per_sample(w, hw, devices, devices_per_node)["total"] / devices


def memory_bytes(w: Workload) -> dict[str, float]:
    out = {
        "tables": w.params_embedding * w.bytes_per_param,
        "optimizer_state": w.embedding_rows * OPTIMIZER_STATE_BYTES_PER_ROW,
        "dense": w.params_dense * FP32_BYTES * DENSE_STATE_COPIES,
        "activations": w.batch_size * w.activations_per_sample * FP32_BYTES * 2,
    }
    out["total"] = sum(out.values())
    return out


def devices_needed(w: Workload, hw: Hardware) -> int:
    """Devices whose usable memory holds the run (tables and optimizer state sharded; the
    dense part and a device's share of the activations on each)."""
    m = memory_bytes(w)
    per_device_fixed = m["dense"]
    shardable = m["tables"] + m["optimizer_state"] + m["activations"]
    room = hw.usable_memory_bytes() - per_device_fixed
    if room <= 0:
        raise ValueError(f"the dense part alone ({per_device_fixed / 1e9:.3g} GB) does not fit a {hw.name}")
    return max(1, math.ceil(shardable / room))


@dataclass(frozen=True)
class Calibration:
    hardware: Hardware
    n_runs: int
    terms_fitted: tuple[str, ...]
    median_abs_error: float  # relative, of seconds per sample, on the calibration runs


def measured_seconds_per_sample(run: dict[str, Any]) -> float:
    """One device's seconds per sample: the run's wall over its samples, times its devices."""
    return int(run.get("world_size") or 1) / float(run["train_samples_per_second"])


def calibrate(hw: Hardware, runs: Sequence[dict[str, Any]], devices_per_node: int = 8,
              bytes_per_param: float = 4.0, name: Optional[str] = None) -> Calibration:
    """The profile with its efficiencies fitted to `runs` (made on that hardware)."""
    runs = [r for r in runs if r.get("train_samples_per_second")]
    if len(runs) < 2:
        raise ValueError(f"calibrating {hw.name} needs >= 2 runs with train_samples_per_second; got {len(runs)}")
    rows, t = [], []
    for r in runs:
        devices = int(r.get("world_size") or 1)
        amounts = term_amounts(Workload.from_run(r, bytes_per_param), devices, devices_per_node)
        rates = _rates(hw, devices, devices_per_node)
        rows.append([amounts[k] * rates[k] for k in TERMS])
        t.append(measured_seconds_per_sample(r))
    X, t = np.asarray(rows), np.asarray(t)
    used = [j for j, k in enumerate(TERMS) if np.ptp(X[:, j]) > 0 or (k == "step" and X[:, j].any())]
    # Relative errors count alike for fast and slow runs: each row weighted by 1 / its time.
    coef, _ = nnls(X[:, used] / t[:, None], np.ones(len(t)))
    values = {TERMS[j]: float(c) for j, c in zip(used, coef)}
    e = hw.efficiency
    eff = Efficiency(
        dense=1 / values["dense"] if values.get("dense", 0) > 0 else e.dense,
        memory=1 / values["memory"] if values.get("memory", 0) > 0 else e.memory,
        network=1 / values["network"] if values.get("network", 0) > 0 else e.network,
        step_seconds=values.get("step", e.step_seconds) if "step" in values else e.step_seconds)
    fitted = tuple(k for k in TERMS if values.get(k, 0) > 0)
    cal = replace(hw, name=name or hw.name, efficiency=eff, calibration=f"fitted to {len(runs)} runs ({', '.join(fitted)})")
    pred = np.array([seconds_per_sample(Workload.from_run(r, bytes_per_param), cal, int(r.get("world_size") or 1),
                                        devices_per_node)["total"] for r in runs])
    return Calibration(cal, len(runs), fitted, float(np.median(np.abs(pred / t - 1))))
