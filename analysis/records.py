"""The JSON records of fits.json and joint.json (schema in docs/ANALYSIS.md)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from analysis.jsonable import Jsonable
from analysis.results import JointResult, Options, SeriesResult


def fit_record(r: SeriesResult, options: Options) -> dict[str, Any]:
    """One fits.json entry.  An undetermined fit has no law: `params` and `ci95` are null
    and the optimiser's numbers are under `raw_params` / `raw_ci95`, for diagnosis only."""
    f, s, metric = r.fit, r.series, options.metric
    return {
        "axis": s.axis.name,
        "scheme": s.scheme,
        "x_field": s.axis.x_field,
        "metric": metric,
        "model": s.group.get("model"),
        "group": s.group,
        "label": s.label,
        "determined": r.determined,
        "undetermined_reasons": r.reasons,
        "n_points": f.n_points,
        "n_intermediate_points": s.n_intermediate,
        "n_distinct_x": f.n_distinct_x,
        "x_range": [f.x_min, f.x_max],
        "params": f.params() if r.determined else None,
        "ci95": f.ci95() if r.determined else None,
        "raw_params": f.params(),
        "raw_ci95": f.ci95(),
        "r2": f.r2,
        "rmse_log": f.rmse_log,
        "floor_field": options.floor_field,
        options.floor_field: r.floor,
        "gamma_vs_floor": r.gamma_vs_floor,
        "oracle_curve": r.oracle,
        "observed": r.observed,
        "x_ref": f.x_ref,
        "alpha_at_x_ref": f.alpha_ref,
        "huber_delta": options.fit.huber_delta,
        "loss": f.loss,
        "at_bound": f.at_bound,
        "n_bootstrap": 0 if f.boot is None else len(f.boot),
        "bootstrap_seed": s.seed_for(options.seed),
        "resampling": f.resampling.record(),
        "seed_spread": r.seed_spread,
        "efficiency": r.efficiency,
        "extrapolation": r.extrapolation,
        "fit_range": r.fit_range,
        "planted": r.planted,
        "warnings": r.warnings,
        "runs": [run.get("run_name") for run in s.runs],
    }


def joint_record(j: JointResult, options: Options) -> dict[str, Any]:
    f = j.fit
    return {
        "form": "E + A / P^a + B / D^b",
        "P_field": j.P_field,
        "D_field": "num_train_samples",
        "metric": options.metric,
        "group": j.group,
        "scheme": j.group.get("scheme"),
        "n_points": len(j.y),
        "crossing": j.crossing,
        "skipped": j.skipped,
        "determined": j.determined,
        "undetermined_reasons": j.reasons,
        "params": f.params() if f else None,
        "ci95": f.ci95() if f else None,
        "r2": f.r2 if f else None,
        "floor_field": options.floor_field,
        options.floor_field: j.floor,
        "P_ref": f.P_ref if f else None,
        "D_ref": f.D_ref if f else None,
        "resampling": f.resampling.record() if f else None,
        "flops_per_sample_model": j.flops_model,
        "compute_optimal": j.compute_optimal,
        "compute_optimal_exponents": j.exponents,
        "warnings": j.warnings,
    }


def json_safe(v: Any) -> Any:
    """NaN and infinities are not JSON: write them as null.  A result part (analysis.jsonable)
    is written as its to_json() object."""
    if isinstance(v, Jsonable):
        return json_safe(v.to_json())
    if isinstance(v, dict):
        return {str(k): json_safe(u) for k, u in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(u) for u in v]
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v


def write_json(obj: Any, path: Path) -> None:
    path.write_text(json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")
