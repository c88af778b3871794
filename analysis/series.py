"""Group the run table into series: runs that differ only along one axis.

A law NE(x) describes one resource with everything else fixed, so a series is all
usable runs sharing the values of the axis' `group_fields`.  Runs of the same grid point
with different seeds are all points of the series (the bootstrap resamples runs).  The
compute axis is different: its series is the frontier -- the grid points that reach the
lowest NE for their FLOP budget -- per model and data set.
"""
from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class Axis:
    name: str  # as in fits.json
    x_field: str  # the summary.json field that is x
    group_fields: tuple[str, ...]  # held fixed within a series
    label: str  # axis title for plots and tables


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis("data", "num_train_samples",
         ("model", "data", "embedding_dim", "mlp_width", "mlp_depth"), "training samples (one epoch)"),
    Axis("params", "params_total", ("model", "data", "num_train_samples"), "parameters (total)"),
    Axis("params_embedding", "params_embedding", ("model", "data", "num_train_samples"),
         "embedding parameters"),
    Axis("params_dense", "params_dense", ("model", "data", "num_train_samples"), "dense parameters"),
    Axis("embedding_dim", "embedding_dim",
         ("model", "data", "mlp_width", "mlp_depth", "num_train_samples"), "embedding dimension"),
    Axis("mlp_width", "mlp_width",
         ("model", "data", "embedding_dim", "mlp_depth", "num_train_samples"), "MLP width"),
    Axis("compute", "train_flops", ("model", "data"), "training FLOPs (frontier)"),
)}
# Everything that defines a grid point of a sweep except the seed.
GRID_FIELDS = ("model", "data", "embedding_dim", "mlp_width", "mlp_depth", "num_train_samples")
# Fields compared when two runs of a series share x and seed (see _duplicate_warning).
_OTHER_CONFIG_FIELDS = ("embedding_dim", "mlp_width", "mlp_depth", "num_train_samples",
                        "dense_arch_layer_sizes", "over_arch_layer_sizes", "batch_size",
                        "learning_rate", "lr", "params_total")


@dataclass
class Series:
    axis: Axis
    metric: str
    group: dict[str, Any]  # the fixed values (JSON-able), e.g. {"model": "dlrm", ...}
    runs: list[dict]
    x: np.ndarray
    y: np.ndarray
    warnings: list[str] = field(default_factory=list)
    # Compute axis only: every run of the (model, data) group, frontier or not.
    cloud: Optional[list[dict]] = None

    @property
    def model(self) -> str:
        return str(self.group.get("model"))

    @property
    def n_distinct_x(self) -> int:
        return len(np.unique(self.x))

    @property
    def label(self) -> str:
        parts = [f"{k}={short_value(v)}" for k, v in self.group.items() if v is not None and k != "data"]
        if self.group.get("data") is not None:
            parts.append(f"data={self.group['data']}")
        return " ".join(parts) or "all runs"

    @property
    def key(self) -> str:
        """A stable identifier (bootstrap seeds derive from it, so order does not matter)."""
        return f"{self.axis.name}|{self.metric}|{json.dumps(self.group, sort_keys=True)}"

    def seed_for(self, base_seed: int) -> list[int]:
        return [int(base_seed), zlib.crc32(self.key.encode())]

    def field_values(self, name: str) -> np.ndarray:
        """A numeric summary field over the series' runs (NaN where absent)."""
        return np.array([positive(r.get(name)) or np.nan for r in self.runs], float)

    def seeds(self) -> list[Any]:
        return [r.get("seed") for r in self.runs]


def short_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and v >= 4096 and (v & (v - 1)) == 0:
        return f"2^{v.bit_length() - 1}"
    return str(v)


def freeze(v: Any) -> Any:
    """A hashable version of a summary value (lists become tuples)."""
    if isinstance(v, list):
        return tuple(freeze(u) for u in v)
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(u)) for k, u in v.items()))
    return v


def positive(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) and v > 0 else None


def _duplicate_warning(runs: list[dict], axis: Axis) -> Optional[str]:
    """Two runs of one series at the same x with the same seed mean something outside
    the axis' group varies (or the same run was copied); say which fields differ."""
    seen: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        seen[(freeze(r.get(axis.x_field)), freeze(r.get("seed")))].append(r)
    dups = [rs for rs in seen.values() if len(rs) > 1]
    if not dups:
        return None
    differing = sorted({f for rs in dups for f in _OTHER_CONFIG_FIELDS
                        if len({freeze(r.get(f)) for r in rs}) > 1})
    names = " and ".join(str(r.get("run_name", "?")) for r in dups[0][:2])
    why = f"they differ in {', '.join(differing)}" if differing else "identical configs (copied runs?)"
    return (f"{sum(len(rs) for rs in dups)} runs share an x value and a seed (e.g. {names}): {why}")


def _make_series(axis: Axis, metric: str, group: dict, runs: list[dict]) -> Series:
    x = np.array([positive(r.get(axis.x_field)) for r in runs], float)
    y = np.array([r[metric] for r in runs], float)
    order = np.lexsort((y, x))
    runs = [runs[i] for i in order]
    s = Series(axis=axis, metric=metric, group=group, runs=runs, x=x[order], y=y[order])
    warning = _duplicate_warning(runs, axis)
    if warning:
        s.warnings.append(warning)
    return s


def _group_runs(points: list[dict], axis: Axis) -> tuple[dict[tuple, list[dict]], list[str]]:
    """Runs with a positive x, grouped by the axis' group fields; a note on those without."""
    notes = []
    missing = [r for r in points if positive(r.get(axis.x_field)) is None]
    if missing:
        notes.append(f"axis {axis.name}: {len(missing)} run(s) without a positive "
                     f"{axis.x_field} left out (e.g. {missing[0].get('run_name')})")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in points:
        if positive(r.get(axis.x_field)) is not None:
            groups[tuple(freeze(r.get(f)) for f in axis.group_fields)].append(r)
    return groups, notes


def build_series(points: list[dict], axis: Axis, metric: str) -> tuple[list[Series], list[str]]:
    """Series of `axis` with at least two distinct x values (a single x value is not a
    sweep of this axis, so it is not mentioned), and notes on runs that lack x."""
    if axis.name == "compute":
        return frontier_series(points, metric)
    groups, notes = _group_runs(points, axis)
    out = []
    for runs in groups.values():
        if len({r[axis.x_field] for r in runs}) < 2:
            continue
        group = {f: runs[0].get(f) for f in axis.group_fields}
        out.append(_make_series(axis, metric, group, runs))
    out.sort(key=lambda s: json.dumps(s.group, sort_keys=True, default=str))
    return out, notes


def frontier_series(points: list[dict], metric: str) -> tuple[list[Series], list[str]]:
    """Per (model, data): the compute frontier.  Grid points (seeds averaged, so a lucky
    seed does not make the frontier) sorted by FLOPs; a grid point is on the frontier
    when its mean NE is below that of every grid point with fewer FLOPs.  The series
    holds all runs (every seed) of the frontier points."""
    axis = AXES["compute"]
    groups, notes = _group_runs(points, axis)
    out = []
    for runs in groups.values():
        by_point: dict[tuple, list[dict]] = defaultdict(list)
        for r in runs:
            by_point[tuple(freeze(r.get(f)) for f in GRID_FIELDS)].append(r)
        summary = sorted(
            (float(np.median([r[axis.x_field] for r in rs])), float(np.mean([r[metric] for r in rs])), key)
            for key, rs in by_point.items()
        )
        frontier_runs, best = [], math.inf
        for _, mean_ne, key in summary:
            if mean_ne < best:
                best = mean_ne
                frontier_runs += by_point[key]
        if len({r[axis.x_field] for r in frontier_runs}) < 2:
            continue
        group = {f: runs[0].get(f) for f in axis.group_fields}
        s = _make_series(axis, metric, group, frontier_runs)
        s.cloud = runs
        out.append(s)
    out.sort(key=lambda s: json.dumps(s.group, sort_keys=True, default=str))
    return out, notes


def floor_of(runs: list[dict], floor_field: str) -> tuple[Optional[float], Optional[str]]:
    """The Bayes floor shared by `runs`, or None when unknown; a warning if runs disagree
    (then the median is used)."""
    values = [r.get(floor_field) for r in runs]
    if not values or any(v is None for v in values):
        return None, None
    values = np.array(values, float)
    if np.ptp(values) <= 1e-9 * abs(values[0]):
        return float(values[0]), None
    return float(np.median(values)), (f"{floor_field} differs between runs "
                                      f"({values.min():.6g}..{values.max():.6g}); median used")
