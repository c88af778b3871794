"""Group the data points into series: runs that differ only along one axis.

A law NE(x) describes one resource with everything else fixed, so a series is all points
sharing the values of the axis' `group_fields`; the seeds of one point are all points of
it.  The model axes are the scaling schemes of Ardalani et al. 2022, each an axis of its
own: embedding dim, the bottom MLP's width (dense arch), the top MLP's width (over arch)
and both MLPs scaled together (mlp_width).  Parameter-count axes are fitted only within
one scheme's series (runs of two schemes are never one law), and only for the parameters
that scheme scales.  Intermediate eval points (analysis.points) belong to the data axis
and the compute frontier only.  The compute axis is the frontier -- the grid points that
reach the lowest NE for their FLOP budget -- per model and data.
"""
from __future__ import annotations

import json
import math
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

import rundir
from analysis.jsonable import Jsonable, optional
from analysis.values import freeze, positive


@dataclass(frozen=True)
class Axis:
    name: str  # as in fits.json
    x_field: str  # the field that is x
    group_fields: tuple[str, ...]  # held fixed within a series
    label: str  # axis title for plots and tables
    # Parameter-count axes: the schemes within which they are fitted.
    schemes: tuple[str, ...] = ()

    @property
    def is_param_count(self) -> bool:
        return bool(self.schemes)


# Held fixed in every model-axis series besides the model's own shape.
_SETUP = ("model", "dense_arch_output", "data_id", *rundir.TRAINING_SETUP_FIELDS)
# An MLP width's hidden layers, derived from its layer sizes: held fixed with the width, so
# that MLPs without one width (uneven hidden layers) are never pooled.
_HIDDEN_OF = {"dense_arch_width": ("dense_arch_hidden", "dense_arch_layer_sizes"),
              "over_arch_width": ("over_arch_hidden", "over_arch_layer_sizes")}
_HIDDEN = tuple(h for h, _ in _HIDDEN_OF.values())
SCHEMES = rundir.scaling_schemes()
_DATA = rundir.data_axis()


def _fields_of(a: rundir.ScalingAxis) -> tuple[str, ...]:
    return (a.summary_field,) + ((_HIDDEN_OF[a.name][0],) if a.name in _HIDDEN_OF else ())


def _held_fixed(axis: rundir.ScalingAxis) -> tuple[str, ...]:
    """What a series of `axis` holds fixed: the setup and every other axis of the table,
    except those it moves and the schemes that move others (their values are the others')."""
    moved = {axis.name, *axis.moves}
    others = [a for a in rundir.SCALING_AXES if a.name not in moved and not a.moves and a.kind != "data"]
    data = () if axis.kind == "data" else (_DATA.summary_field,)
    return _SETUP + tuple(f for a in others for f in _fields_of(a)) + data


def _param_axis(name: str, field: str, label: str) -> Axis:
    """A parameter count, fitted within each scheme that scales it."""
    return Axis(name, field, (), label, schemes=tuple(a.name for a in rundir.SCALING_AXES
                                                      if a.is_scheme and field in a.params_fields))


AXES: dict[str, Axis] = {a.name: a for a in (
    Axis(_DATA.name, _DATA.summary_field, _held_fixed(_DATA), _DATA.label),
    *(Axis(a.name, a.summary_field, _held_fixed(a), a.label) for a in rundir.SCALING_AXES if a.is_scheme),
    _param_axis("params", "params_total", "parameters (total)"),
    _param_axis("params_embedding", "params_embedding", "embedding parameters"),
    _param_axis("params_dense", "params_dense", "dense parameters"),
    Axis("compute", "train_flops", ("model", "data_id"), "training FLOPs (frontier)"),
)}
# Everything that defines a grid point of a sweep except the seed (and the learning
# rates, which the envelope has already chosen).
GRID_FIELDS = _SETUP + tuple(f for a in rundir.SCALING_AXES if a.kind != "data" for f in _fields_of(a)) \
    + (_DATA.summary_field,)
# Fields compared when two runs of a series share x and seed (see _duplicate_warning).
_OTHER_CONFIG_FIELDS = tuple(a.summary_field for a in rundir.SCALING_AXES if a.kind != "data") + (
    _DATA.summary_field, "dense_arch_layer_sizes", "over_arch_layer_sizes", "batch_size", "embedding_lr",
    "dense_lr", "data_id", "params_total")


def value_of(run: dict, name: str) -> Any:
    """A run's value of `name`; the hidden layers of an MLP are derived from its sizes."""
    for hidden, layers_field in _HIDDEN_OF.values():
        if name == hidden:
            layers = run.get(layers_field)
            return list(layers[:-1]) if isinstance(layers, (list, tuple)) else None
    if name not in run:
        for a in rundir.SCALING_AXES:  # a record from before the axes it moves (one MLP width)
            if name in a.moves:
                return run.get(a.summary_field)
    return run.get(name)


@dataclass
class Series:
    axis: Axis
    metric: str
    group: dict[str, Any]  # the fixed values (JSON-able), e.g. {"model": "dlrm", ...}
    runs: list[dict]
    x: np.ndarray
    y: np.ndarray
    warnings: list[str] = field(default_factory=list)
    # Compute axis only: every point of the (model, data) group, frontier or not.
    cloud: Optional[list[dict]] = None

    @property
    def model(self) -> str:
        return str(self.group.get("model"))

    @property
    def scheme(self) -> Optional[str]:
        return self.group.get("scheme") or (self.axis.name if self.axis.name in SCHEMES else None)

    @property
    def n_distinct_x(self) -> int:
        return len(np.unique(self.x))

    @property
    def label(self) -> str:
        parts = [f"{k}={short_value(v)}" for k, v in self.group.items()
                 if v is not None and k not in ("data_id", "data") + _HIDDEN + _SETUP[1:]]
        if self.group.get("data_id") is not None:
            parts.append(f"data={self.group['data_id']}")
        return " ".join(parts) or "all runs"

    @property
    def key(self) -> str:
        """A stable identifier (bootstrap seeds derive from it, so order does not matter)."""
        return f"{self.axis.name}|{self.metric}|{json.dumps(self.group, sort_keys=True)}"

    def seed_for(self, base_seed: int) -> list[int]:
        return [int(base_seed), zlib.crc32(self.key.encode())]

    def field_values(self, name: str) -> np.ndarray:
        """A numeric field over the series' runs (NaN where absent)."""
        return np.array([positive(r.get(name)) or np.nan for r in self.runs], float)

    def seeds(self) -> list[Any]:
        return [r.get("seed") for r in self.runs]

    def blocks(self) -> np.ndarray:
        """Resampling block of each point: its seed (a point without one is its own)."""
        ids: dict[Any, int] = {}
        out = []
        for i, r in enumerate(self.runs):
            s = r.get("seed")
            out.append(ids.setdefault(("seed", s) if s is not None else ("run", i), len(ids)))
        return np.array(out)

    @property
    def n_intermediate(self) -> int:
        return sum(bool(r.get("intermediate")) for r in self.runs)


def short_value(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, int) and v >= 4096 and (v & (v - 1)) == 0:
        return f"2^{v.bit_length() - 1}"
    return str(v)


def _duplicate_warning(runs: list[dict], x_field: str) -> Optional[str]:
    """Two runs of one series at the same x with the same seed mean something outside
    the axis' group varies (or the same run was copied); say which fields differ."""
    seen: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        seen[(freeze(r.get(x_field)), freeze(r.get("seed")))].append(r)
    dups = [rs for rs in seen.values() if len(rs) > 1]
    if not dups:
        return None
    differing = sorted({f for rs in dups for f in _OTHER_CONFIG_FIELDS
                        if len({freeze(r.get(f)) for r in rs}) > 1})
    names = " and ".join(str(r.get("run_name", "?")) for r in dups[0][:2])
    why = f"they differ in {', '.join(differing)}" if differing else "identical configs (copied runs?)"
    return f"{sum(len(rs) for rs in dups)} runs share an x value and a seed (e.g. {names}): {why}"


def _make_series(axis: Axis, metric: str, group: dict, runs: list[dict]) -> Series:
    x = np.array([positive(r.get(axis.x_field)) for r in runs], float)
    y = np.array([r[metric] for r in runs], float)
    order = np.lexsort((y, x))
    runs = [runs[i] for i in order]
    s = Series(axis=axis, metric=metric, group=group, runs=runs, x=x[order], y=y[order])
    warning = _duplicate_warning(runs, axis.x_field)
    if warning:
        s.warnings.append(warning)
    return s


def _group_dict(axis_fields: tuple[str, ...], run: dict) -> dict:
    group = {f: value_of(run, f) for f in axis_fields}
    for width, (hidden, _) in _HIDDEN_OF.items():
        if hidden in group and group.get(width) is not None:
            del group[hidden]  # the width (and depth) already say it
    return group


def _group_runs(points: list[dict], axis: Axis) -> tuple[dict[tuple, list[dict]], list[str]]:
    """Points with a positive x, grouped by the axis' group fields; a note on those without."""
    notes = []
    missing = [r for r in points if positive(r.get(axis.x_field)) is None]
    if missing and axis.name in ("data", "embedding_dim", "compute"):
        notes.append(f"axis {axis.name}: {len(missing)} run(s) without a positive "
                     f"{axis.x_field} left out (e.g. {missing[0].get('run_name')})")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in points:
        if positive(r.get(axis.x_field)) is not None:
            groups[tuple(freeze(value_of(r, f)) for f in axis.group_fields)].append(r)
    return groups, notes


def _sweep_series(points: list[dict], axis: Axis, metric: str) -> list[Series]:
    groups, _ = _group_runs(points, axis)
    out = []
    for runs in groups.values():
        if len({r[axis.x_field] for r in runs}) < 2:
            continue  # a single x value is not a sweep of this axis
        out.append(_make_series(axis, metric, _group_dict(axis.group_fields, runs[0]), runs))
    out.sort(key=lambda s: json.dumps(s.group, sort_keys=True, default=str))
    return out


def _proportional(a: np.ndarray, b: np.ndarray) -> bool:
    d = np.log(a) - np.log(b)
    return bool(np.ptp(d) <= 1e-9 * max(1.0, float(np.abs(d).max())))


def build_series(points: list[dict], axis: Axis, metric: str) -> tuple[list[Series], list[str]]:
    """Series of `axis` with at least two distinct x values, and notes on points that
    lack x or on parameter counts that only restate a scheme's own axis."""
    if axis.name == "compute":
        return frontier_series(points, metric)
    finals = [r for r in points if not r.get("intermediate")]
    if axis.name == "data":
        groups, notes = _group_runs(points, axis)
        return _sweep_series(points, axis, metric), notes
    if not axis.is_param_count:
        _, notes = _group_runs(finals, axis)
        return _sweep_series(finals, axis, metric), notes
    out, notes = [], []
    for scheme in axis.schemes:
        for s in _sweep_series(finals, AXES[scheme], metric):
            runs = [r for r in s.runs if positive(r.get(axis.x_field)) is not None]
            if len(runs) < len(s.runs):
                notes.append(f"axis {axis.name}: {len(s.runs) - len(runs)} run(s) without a positive "
                             f"{axis.x_field} left out of the {scheme} series [{s.label}]")
            if len({r[axis.x_field] for r in runs}) < 2:
                continue
            native = np.array([float(r[scheme]) for r in runs])
            px = np.array([float(r[axis.x_field]) for r in runs])
            if _proportional(px, native):
                notes.append(f"axis {axis.name} within the {scheme} scheme [{s.label}]: {axis.x_field} is "
                             f"proportional to {scheme}, so its law is the {scheme} law in other units "
                             "(not fitted twice)")
                continue
            out.append(_make_series(axis, metric, {"scheme": scheme, **s.group}, runs))
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
            by_point[tuple(freeze(value_of(r, f)) for f in GRID_FIELDS)].append(r)
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


def floor_of(runs: list[dict], floor_field: Optional[str]) -> tuple[Optional[float], Optional[str]]:
    """The floor (e.g. bayes_ne) shared by `runs`, or None when unknown; a warning if runs
    disagree (then the median is used)."""
    if floor_field is None:
        return None, None
    values = [r.get(floor_field) for r in runs]
    if not values or any(v is None for v in values):
        return None, None
    values = np.array(values, float)
    if np.ptp(values) <= 1e-9 * abs(values[0]):
        return float(values[0]), None
    return float(np.median(values)), (f"{floor_field} differs between runs "
                                      f"({values.min():.6g}..{values.max():.6g}); median used")


@dataclass
class OracleCurve(Jsonable):
    """The capacity limit per distinct x; the pipeline adds the observed seed means and,
    for a law, the fitted curve, each with its gaps to the limit."""
    x: list[float]
    oracle: list[float]
    observed: Optional[list[float]] = optional()
    gap_observed: Optional[list[float]] = optional()
    fitted: Optional[list[float]] = optional()
    gap_fitted: Optional[list[float]] = optional()


def oracle_curve(series: Series, oracle_field: Optional[str]) -> Optional[OracleCurve]:
    """The capacity limit per distinct x when every run has one."""
    if oracle_field is None:
        return None
    vals = series.field_values(oracle_field)
    if not np.isfinite(vals).all():
        return None
    xs = np.unique(series.x)
    return OracleCurve(x=[float(v) for v in xs], oracle=[float(np.median(vals[series.x == v])) for v in xs])
