"""The whole analysis as one pure function of the run table, plus the output writer.

analyze(): table -> Analysis (series, fits, efficiency, extrapolation checks, joint
laws, plans); no file is touched.  write_outputs(): Analysis -> files in OUT_DIR.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from analysis.efficiency import scaling_efficiency
from analysis.errors import FitError
from analysis.extrapolate import extrapolation_check
from analysis.fit import FitSettings, PowerLawFit, fit_power_law
from analysis.joint import (JointFit, compute_optimal, fit_joint, flops_model,
                            split_exponents)
from analysis.plan import plan_target
from analysis.runs import FLOOR_FIELD, RunTable, require_points, write_rows_csv
from analysis.seeds import seed_spread
from analysis.series import AXES, Series, freeze, positive, build_series, floor_of

# Fewer runs than this and a bootstrap over runs is a handful of distinct resamples.
MIN_POINTS_FOR_RELIABLE_CI = 6


@dataclass(frozen=True)
class Options:
    metric: str = "eval_ne"
    fit: FitSettings = FitSettings()
    seed: int = 0  # base seed of every bootstrap (each series derives its own from it)
    targets: tuple[float, ...] = ()  # target NE values to plan for
    saturation_threshold: float = 0.005  # NE gain per next 10x below which an axis is saturated
    bytes_per_param: float = 4.0  # fp32 embedding tables
    axes: tuple[str, ...] = tuple(AXES)
    joint: bool = True


@dataclass
class SeriesResult:
    series: Series
    fit: Optional[PowerLawFit] = None
    skipped: Optional[str] = None
    floor: Optional[float] = None
    seed_spread: Optional[dict] = None
    efficiency: Optional[dict] = None
    extrapolation: Optional[dict] = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class JointResult:
    group: dict[str, Any]
    P: np.ndarray
    D: np.ndarray
    y: np.ndarray
    fit: Optional[JointFit] = None
    skipped: Optional[str] = None
    floor: Optional[float] = None
    flops_model: Optional[dict] = None
    compute_optimal: Optional[list[dict]] = None
    exponents: Optional[dict] = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Analysis:
    table: RunTable
    options: Options
    series: list[SeriesResult]
    joint: list[JointResult]
    plans: list[dict]
    notes: list[str]

    @property
    def fitted(self) -> list[SeriesResult]:
        return [r for r in self.series if r.fit is not None]

    @property
    def skipped(self) -> list[SeriesResult]:
        return [r for r in self.series if r.fit is None]


def _analyze_series(s: Series, options: Options) -> SeriesResult:
    res = SeriesResult(series=s, warnings=list(s.warnings))
    res.floor, floor_warning = floor_of(s.runs, FLOOR_FIELD[options.metric])
    if floor_warning:
        res.warnings.append(floor_warning)
    seed = s.seed_for(options.seed)
    what = f"{s.axis.name} series [{s.label}]"
    try:
        res.fit = fit_power_law(s.x, s.y, options.fit, seed=seed, what=what)
    except FitError as e:
        res.skipped = str(e)
        return res
    fit = res.fit
    res.seed_spread = seed_spread(s, options.fit)
    res.efficiency = scaling_efficiency(fit, s, options.saturation_threshold)
    res.extrapolation = extrapolation_check(s.x, s.y, options.fit, seed=seed + [1], what=what)
    if fit.n_points < MIN_POINTS_FOR_RELIABLE_CI:
        res.warnings.append(f"only {fit.n_points} runs: the bootstrap interval is unreliable")
    if fit.at_bound:
        res.warnings.append("at a bound: " + "; ".join(fit.at_bound))
    if res.floor is not None and fit.boot is not None and fit.ci95()["gamma"][1] < res.floor:
        res.warnings.append(f"gamma's whole interval lies below the Bayes floor {res.floor:.4g}: "
                            "this law cannot hold far beyond the measured range")
    return res


def _analyze_joint(points: list[dict], options: Options) -> list[JointResult]:
    """One joint law per (model, data) over every run with params and samples."""
    groups: dict[tuple, list[dict]] = {}
    for r in points:
        if positive(r.get("params_total")) and positive(r.get("num_train_samples")):
            groups.setdefault((freeze(r.get("model")), freeze(r.get("data"))), []).append(r)
    out = []
    for runs in groups.values():
        group = {"model": runs[0].get("model"), "data": runs[0].get("data")}
        P = np.array([r["params_total"] for r in runs], float)
        D = np.array([r["num_train_samples"] for r in runs], float)
        y = np.array([r[options.metric] for r in runs], float)
        res = JointResult(group=group, P=P, D=D, y=y)
        res.floor, w = floor_of(runs, FLOOR_FIELD[options.metric])
        if w:
            res.warnings.append(w)
        label = " ".join(f"{k}={v}" for k, v in group.items() if v is not None)
        key = json.dumps(group, sort_keys=True, default=str)
        try:
            res.fit = fit_joint(P, D, y, options.fit, seed=[options.seed, zlib.crc32(key.encode()), 2],
                                what=f"joint law [{label}]")
        except FitError as e:
            res.skipped = str(e)
            out.append(res)
            continue
        fps = np.array([positive(r.get("flops_per_sample")) or np.nan for r in runs], float)
        res.flops_model = flops_model(P, fps)
        flops = [positive(r.get("train_flops")) for r in runs]
        flops = [f for f in flops if f]
        fm = res.flops_model
        if fm is None or not flops:
            res.warnings.append("no flops_per_sample/train_flops: no compute-optimal split")
        elif fm["k"] < 0.05:
            res.warnings.append(f"FLOPs per sample barely grow with parameters (exponent {fm['k']:.3g}): "
                                "the compute-optimal split is unbounded in parameters")
        else:
            c_max = max(flops)
            res.compute_optimal = compute_optimal(res.fit, fm, [c_max, 10 * c_max, 100 * c_max])
            res.exponents = split_exponents(res.fit, fm["k"])
            if fm["r2"] < 0.8:
                res.warnings.append(f"FLOPs per sample follow params_total loosely (log-log r2 "
                                    f"{fm['r2']:.2f}): the split is indicative only")
        out.append(res)
    return out


def analyze(table: RunTable, options: Options = Options()) -> Analysis:
    """Everything the report says, computed from the run table (raises only when
    nothing at all can be analysed)."""
    require_points(table)
    unknown = [a for a in options.axes if a not in AXES]
    if unknown:
        raise ValueError(f"unknown axes {unknown}; known: {list(AXES)}")
    results, notes = [], []
    for axis_name in options.axes:
        series_list, axis_notes = build_series(table.points, AXES[axis_name], options.metric)
        notes += axis_notes
        results += [_analyze_series(s, options) for s in series_list]
    joint = _analyze_joint(table.points, options) if options.joint else []
    plans = [plan_target(r.fit, r.series, t, options.bytes_per_param, floor=r.floor)
             for t in options.targets for r in results if r.fit is not None]
    return Analysis(table=table, options=options, series=results, joint=joint, plans=plans, notes=notes)


def headline(results: list[SeriesResult]) -> Optional[SeriesResult]:
    """The series that speaks for an axis: the one at the largest scale (median
    training FLOPs of its runs), then the one with more runs."""
    fitted = [r for r in results if r.fit is not None]
    if not fitted:
        return None

    def scale(r: SeriesResult):
        flops = r.series.field_values("train_flops")
        return (float(np.nanmedian(flops)) if np.isfinite(flops).any() else 0.0, r.fit.n_points)
    return max(fitted, key=scale)


# ---------------------------------------------------------------- records and files
def fit_record(r: SeriesResult, options: Options) -> dict[str, Any]:
    """One fits.json entry (schema in docs/ANALYSIS.md)."""
    f, s, metric = r.fit, r.series, options.metric
    return {
        "axis": s.axis.name,
        "x_field": s.axis.x_field,
        "metric": metric,
        "model": s.group.get("model"),
        "group": s.group,
        "label": s.label,
        "n_points": f.n_points,
        "n_distinct_x": f.n_distinct_x,
        "x_range": [f.x_min, f.x_max],
        "params": f.params(),
        "ci95": f.ci95(),
        "r2": f.r2,
        "rmse_log": f.rmse_log,
        "bayes_ne": r.floor,
        "x_ref": f.x_ref,
        "alpha_at_x_ref": f.alpha_ref,
        "huber_delta": options.fit.huber_delta,
        "loss": f.loss,
        "at_bound": f.at_bound,
        "n_bootstrap": 0 if f.boot is None else len(f.boot),
        "bootstrap_seed": s.seed_for(options.seed),
        "seed_spread": r.seed_spread,
        "efficiency": r.efficiency,
        "extrapolation": r.extrapolation,
        "warnings": r.warnings,
        "runs": [run.get("run_name") for run in s.runs],
    }


def joint_record(j: JointResult, metric: str) -> dict[str, Any]:
    f = j.fit
    return {
        "form": "E + A / P^a + B / D^b",
        "P_field": "params_total",
        "D_field": "num_train_samples",
        "metric": metric,
        "group": j.group,
        "n_points": len(j.y),
        "skipped": j.skipped,
        "params": f.params() if f else None,
        "ci95": f.ci95() if f else None,
        "r2": f.r2 if f else None,
        "bayes_ne": j.floor,
        "P_ref": f.P_ref if f else None,
        "D_ref": f.D_ref if f else None,
        "flops_per_sample_model": j.flops_model,
        "compute_optimal": j.compute_optimal,
        "compute_optimal_exponents": j.exponents,
        "warnings": j.warnings,
    }


def _json_safe(v: Any) -> Any:
    """NaN and infinities are not JSON: write them as null."""
    if isinstance(v, dict):
        return {str(k): _json_safe(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json_safe(u) for u in v]
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n")


def write_outputs(a: Analysis, out_dir: Path, make_plots: bool = True) -> list[Path]:
    """runs.csv, excluded.csv, fits.json, joint.json, plan.json (with targets), the
    PNG plots and report.md; returns the paths written."""
    from analysis import plots, report  # matplotlib only when writing

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def out(name: str) -> Path:
        written.append(out_dir / name)
        return out_dir / name

    write_rows_csv(a.table.points, out("runs.csv"))
    write_rows_csv(a.table.excluded, out("excluded.csv"),
                   leading=("run_name", "state", "reason", "run_dir"))
    write_json([fit_record(r, a.options) for r in a.fitted], out("fits.json"))
    write_json([joint_record(j, a.options.metric) for j in a.joint], out("joint.json"))
    if a.options.targets:
        write_json(a.plans, out("plan.json"))
    figures = plots.write_all(a, out_dir) if make_plots else []
    written += figures
    (out("report.md")).write_text(report.render(a, [p.name for p in figures]))
    return written
