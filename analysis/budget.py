"""Where a budget of GPU-hours goes: the NE each way of spending it reaches, and a decision.

Ways of spending H GPU-hours on N devices of a hardware profile (analysis.cost prices them):

- more data for a model: each determined data law; the samples H buys for that model;
- a larger model at its data size: each determined scheme law (embedding dim, bottom, top
  or both MLPs' width) at the data size its runs share; the size whose training costs H;
- the best mix: each determined joint law NE(P, D); the (P, D) of lowest NE among those
  that cost H.

A model's demands at a size it was not run at (FLOPs, parameters, activations per
sample) are polynomials of degree <= 2 in the size (exact for the model's own formulas:
linear in the embedding dim, quadratic in an MLP's width), fitted over the law's runs.

Each NE comes with its 95% interval from the law's own bootstrap, and with how far past
the measured range it lies: past EXTRAPOLATION_LIMIT times the largest measured size
(analysis.efficiency) the number rests on the law's form, and is flagged.  The decision: the
allocation of lowest NE when its interval lies below every other's; else "undecided" with
the allocations whose intervals overlap it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

import numpy as np

import rundir

from analysis.cost import Hardware, Workload, devices_needed, memory_bytes, seconds_per_sample
from analysis.efficiency import EXTRAPOLATION_LIMIT
from analysis.results import Analysis, JointResult, SeriesResult
from analysis.series import SCHEMES
from analysis.values import positive

# The budget never buys a size beyond this many times the largest measured one: the search's
# bound (the answer there is the law's asymptote, and flagged as such).
MAX_FACTOR = 1e9
WORKLOAD_FIELDS = ("flops_per_sample", "params_embedding", "params_dense", "activations_per_sample",
                   "embedding_dim", "lookups_per_sample", "batch_size")


@dataclass
class Allocation:
    name: str
    kind: str  # "data", a scheme, or "joint"
    study: str  # the data (its data_id): allocations are compared within one
    law: str  # the law's label
    x_field: str
    x: float
    x_max: float  # the largest measured value of x
    samples: float
    params_total: float
    devices: int  # the budget is spent on
    devices_needed: Optional[int]  # that the run's memory takes (None: its dense part fits none)
    wall_hours: float
    memory_gb: float
    ne: float
    ne_ci95: Optional[list[float]]
    past_range: bool  # beyond EXTRAPOLATION_LIMIT x the measured range
    beyond_factor: float  # x / x_max (the joint law: the larger of P's and D's)
    note: Optional[str] = None
    # On a planted world: what no such allocation can go below (a data allocation: its
    # model's capacity limit; any other: the Bayes floor), and whether the law promises less.
    planted_limit: Optional[float] = None
    planted_limit_kind: Optional[str] = None
    curve: list[dict[str, float]] = field(default_factory=list)  # NE against GPU-hours

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class WorkloadModel:
    """A model's demands as polynomials of degree <= 2 in one size over its runs."""

    def __init__(self, runs: list[dict], x_field: str, bytes_per_param: float):
        loads = [Workload.from_run(r, bytes_per_param) for r in runs]
        x = np.array([float(r[x_field]) for r in runs])
        self.bytes_per_param = bytes_per_param
        self.coef: dict[str, np.ndarray] = {}
        deg = min(2, len(np.unique(x)) - 1)
        for name in WORKLOAD_FIELDS:
            v = np.array([getattr(w, name) for w in loads])
            self.coef[name] = np.polyfit(x, v, deg) if deg > 0 and np.ptp(v) > 0 else np.array([float(np.mean(v))])

    def at(self, x: float) -> Workload:
        vals = {k: float(np.polyval(c, x)) for k, c in self.coef.items()}
        return Workload(bytes_per_param=self.bytes_per_param, **{k: max(v, 1e-12) for k, v in vals.items()})


def final_runs(runs: list[dict]) -> list[dict]:
    """The runs' final evals (their intermediate eval points left out); all of them if none is final."""
    finals = [r for r in runs if not r.get("intermediate")]
    return finals or runs


class Budget:
    def __init__(self, hw: Hardware, devices: int, devices_per_node: int, bytes_per_param: float = 4.0):
        self.hw, self.devices, self.per_node, self.bpp = hw, devices, devices_per_node, bytes_per_param

    def device_seconds(self, w: Workload, samples: float) -> float:
        return samples * seconds_per_sample(w, self.hw, self.devices, self.per_node)["total"]

    def fits(self, w: Workload) -> bool:
        needed = _needed(w, self.hw)
        return needed is not None and needed <= self.devices

    def samples_for(self, w: Workload, gpu_hours: float) -> float:
        return gpu_hours * 3600 / seconds_per_sample(w, self.hw, self.devices, self.per_node)["total"]


def _largest(cost: Callable[[float], float], ok: Callable[[float], bool], budget: float, lo: float,
             hi: float) -> tuple[float, Optional[str]]:
    """The largest x in [lo, hi] (log bisection) with cost(x) <= budget and ok(x)."""
    def good(x):
        return cost(x) <= budget and ok(x)
    if not good(lo):
        return lo, "the budget does not pay even the smallest size searched"
    if good(hi):
        return hi, f"the budget buys more than {MAX_FACTOR:.0e} x the largest size: the law's asymptote"
    a, b = np.log(lo), np.log(hi)
    for _ in range(80):
        m = (a + b) / 2
        a, b = (m, b) if good(np.exp(m)) else (a, m)
    held_by_memory = not ok(float(np.exp(b)))
    return float(np.exp(a)), "held by memory: a larger size does not fit the devices" if held_by_memory else None


def _needed(w: Workload, hw: Hardware) -> Optional[int]:
    """The devices the run's memory takes; None when its dense part alone fits none."""
    try:
        return devices_needed(w, hw)
    except ValueError:
        return None


def _median_of(runs: list[dict], name: str) -> Optional[float]:
    v = [r.get(name) for r in runs if isinstance(r.get(name), (int, float))]
    return float(np.median(v)) if v else None


def _planted(runs: list[dict], data_axis: bool) -> tuple[Optional[float], Optional[str]]:
    if data_axis and _median_of(runs, "oracle_ne_realised") is not None:
        return _median_of(runs, "oracle_ne_realised"), "the model's capacity limit"
    floor = _median_of(runs, "bayes_ne_realised")
    return (floor, "the Bayes floor") if floor is not None else (None, None)


def _series_allocation(r: SeriesResult, budget: Budget, gpu_hours: float, with_curve: bool) -> Allocation:
    s, fit = r.series, r.fit
    runs = final_runs(s.runs)
    axis = s.axis.name
    x_max = float(np.max(s.x))
    if axis == "data":
        w = WorkloadModel(runs, "num_train_samples", budget.bpp).at(float(np.median([r_["num_train_samples"] for r_ in runs])))
        x = budget.samples_for(w, gpu_hours)
        note = None if budget.fits(w) else f"the model needs {devices_needed(w, budget.hw)} devices"
        name, samples = f"more data for {_model_words(s.group)}", x
    else:
        model = WorkloadModel(runs, s.axis.x_field, budget.bpp)
        samples = float(np.median([r_["num_train_samples"] for r_ in runs]))
        x, note = _largest(lambda v: budget.device_seconds(model.at(v), samples) / 3600,
                           lambda v: budget.fits(model.at(v)), gpu_hours, float(np.min(s.x)) / 4, x_max * MAX_FACTOR)
        w = model.at(x)
        name = f"a larger {s.axis.label} at {samples:.4g} samples ({_model_words(s.group)})"
    ne = float(fit.predict(x))
    ci = fit.interval(fit.predict_boot([x])[:, 0], ne, 0.0) if fit.boot is not None else None
    curve = []
    if with_curve:
        for h in np.geomspace(gpu_hours / 1000, gpu_hours, 13):
            curve.append({"gpu_hours": float(h), "ne": _series_allocation(r, budget, float(h), False).ne})
    params = w.params_embedding + w.params_dense
    limit, limit_kind = _planted(runs, axis == "data")
    return Allocation(planted_limit=limit, planted_limit_kind=limit_kind,name=name, kind=axis, study=str(s.group.get("data_id")), law=s.label, x_field=s.axis.x_field, x=float(x), x_max=x_max,
                      samples=float(samples), params_total=float(params), devices=budget.devices,
                      devices_needed=_needed(w, budget.hw),
                      wall_hours=gpu_hours / budget.devices, memory_gb=memory_bytes(w)["total"] / 1e9, ne=ne,
                      ne_ci95=[float(v) for v in ci] if ci is not None else None,
                      past_range=x > EXTRAPOLATION_LIMIT * x_max, beyond_factor=float(x / x_max), note=note,
                      curve=curve)


def _model_words(group: dict) -> str:
    return ", ".join(f"{a.label} {group[a.summary_field]}" for a in rundir.model_sizes()
                     if group.get(a.summary_field) is not None) or "the model"


def _joint_runs(analysis: Analysis, j: JointResult) -> list[dict]:
    g = j.group
    scheme = g.get("scheme")
    fixed = {k: g[k] for k in ("model", "data_id", *(a.summary_field for a in rundir.model_sizes())) if k in g}
    return [r for r in analysis.table.finals
            if all(r.get(k) == v for k, v in fixed.items()) and (scheme is None or positive(r.get(scheme)))
            and positive(r.get(j.P_field))]


def _joint_allocation(analysis: Analysis, j: JointResult, budget: Budget, gpu_hours: float,
                      with_curve: bool) -> Optional[Allocation]:
    runs = _joint_runs(analysis, j)
    if len({r[j.P_field] for r in runs}) < 2 or j.P_field != "params_total":
        return None
    model = WorkloadModel(runs, j.P_field, budget.bpp)
    fit = j.fit
    P_max, D_max = float(np.max(j.P)), float(np.max(j.D))
    grid = np.geomspace(float(np.min(j.P)) / 4, P_max * 1e4, 241)
    best = None
    for P in grid:
        w = model.at(P)
        if not budget.fits(w):
            continue
        D = budget.samples_for(w, gpu_hours)
        ne = float(fit.predict(P, D))
        if best is None or ne < best[2]:
            best = (float(P), float(D), ne, w)
    if best is None:
        return None
    P, D, ne, w = best
    ci = None
    if fit.boot is not None:
        E, Ar, a, Br, b = fit.boot.T
        draws = E + Ar * (P / fit.P_ref) ** -a + Br * (D / fit.D_ref) ** -b
        ci = [float(v) for v in fit.interval(draws, ne, 0.0)]
    factor = max(P / P_max, D / D_max)
    curve = []
    if with_curve:
        for h in np.geomspace(gpu_hours / 1000, gpu_hours, 13):
            a_ = _joint_allocation(analysis, j, budget, float(h), False)
            curve.append({"gpu_hours": float(h), "ne": a_.ne if a_ else float("nan")})
    limit, limit_kind = _planted(runs, False)
    return Allocation(planted_limit=limit, planted_limit_kind=limit_kind,
                      name=f"the best mix of data and {j.group.get('scheme', 'parameters')} "
                           f"({_model_words({k: v for k, v in j.group.items() if k != j.group.get('scheme')})})",
                      kind="joint",
                      study=str(j.group.get("data_id")), law=j.label,
                      x_field=j.P_field, x=P, x_max=P_max, samples=D, params_total=P, devices=budget.devices,
                      devices_needed=_needed(w, budget.hw),
                      wall_hours=gpu_hours / budget.devices, memory_gb=memory_bytes(w)["total"] / 1e9, ne=ne,
                      ne_ci95=ci, past_range=factor > EXTRAPOLATION_LIMIT, beyond_factor=float(factor),
                      note=f"samples {D / D_max:.3g} x and parameters {P / P_max:.3g} x the largest measured",
                      curve=curve)


def allocations(analysis: Analysis, budget: Budget, gpu_hours: float) -> tuple[list[Allocation], list[str]]:
    """Every determined law's way of spending the budget, and the laws left out (why)."""
    out: list[Allocation] = []
    left: list[str] = []
    for r in analysis.series:
        if r.series.axis.name not in ("data", *SCHEMES) or r.fit is None:
            continue
        if not r.determined:
            left.append(f"{r.series.axis.name} [{r.series.label}]: not determined ({'; '.join(r.reasons)[:160]})")
            continue
        out.append(_series_allocation(r, budget, gpu_hours, True))
    for j in analysis.joint:
        if j.fit is None:
            continue
        if not j.determined:
            left.append(f"joint law [{j.label}]: not determined ({'; '.join(j.reasons)[:160]})")
            continue
        a = _joint_allocation(analysis, j, budget, gpu_hours, True)
        if a is not None:
            out.append(a)
    return sorted(out, key=lambda a: a.ne), left


def decide(allocs: list[Allocation]) -> dict[str, Any]:
    """The best allocation when its interval lies below every other's, else undecided."""
    if not allocs:
        return {"decided": False, "best": None, "overlapping": [],
                "words": "no determined law to plan with: nothing can be decided"}
    best = allocs[0]
    if best.ne_ci95 is None:
        return {"decided": False, "best": best.name, "overlapping": [a.name for a in allocs[1:]],
                "words": "no bootstrap intervals: undecided (run the analysis with --bootstrap > 0)"}
    overlap = [a for a in allocs[1:] if a.ne_ci95 is None or a.ne_ci95[0] <= best.ne_ci95[1]]
    caveat = " (past the measured range: it rests on the law's form)" if best.past_range else ""
    if not overlap:
        return {"decided": True, "best": best.name, "overlapping": [],
                "words": f"{best.name} reaches the lowest NE, {best.ne:.4g} "
                         f"[{best.ne_ci95[0]:.4g}, {best.ne_ci95[1]:.4g}]{caveat}, below every other's interval"}
    return {"decided": False, "best": best.name, "overlapping": [a.name for a in overlap],
            "words": f"the intervals overlap: undecided. {best.name} has the lowest NE, {best.ne:.4g} "
                     f"[{best.ne_ci95[0]:.4g}, {best.ne_ci95[1]:.4g}]{caveat}; within it: "
                     + "; ".join(f"{a.name} {a.ne:.4g}" + (f" [{a.ne_ci95[0]:.4g}, {a.ne_ci95[1]:.4g}]"
                                                           if a.ne_ci95 else "") for a in overlap)}
