"""Planning: what each axis would need to reach a target NE, and what that would cost.

Inverting NE(x) = alpha x^-beta + gamma gives x = (alpha / (NE - gamma))^(1/beta);
a target at or below gamma is unreachable along that axis, whatever is spent.  The cost
of the needed x is read off the series itself: each cost quantity (samples, parameters,
FLOPs, throughput) is regressed log-log on x over the series' runs and extrapolated
(exact for the axis' own quantity, e.g. samples on the data axis; a constant for what
the series holds fixed).  Embedding memory = embedding params x bytes per parameter;
training time = samples / the measured throughput, on the runs' hardware.  Only a
determined law (analysis.determined) is planned with.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from analysis.bootstrap import weighted_quantiles
from analysis.fit import PowerLawFit
from analysis.series import Series

# An answer more than this many times beyond the largest measured x rests on the law's
# form alone (the extrapolation check tests one step past the data, not two decades).
FAR_EXTRAPOLATION = 100.0
COST_FIELDS = ("num_train_samples", "params_total", "params_embedding", "params_dense",
               "flops_per_sample", "train_samples_per_second")


def log10_x_needed(fit: PowerLawFit, target: float) -> float:
    """log10 of the x at which the law reaches `target` (inf when target <= gamma).
    In logs because a small beta sends x past the float range (1e308)."""
    if target <= fit.gamma or fit.alpha_ref <= 0:
        return float("inf")
    return float(np.log10(fit.x_ref) + np.log10(fit.alpha_ref / (target - fit.gamma)) / fit.beta)


def x_needed(fit: PowerLawFit, target: float) -> float:
    """x at which the law reaches `target` (inf when unreachable or beyond 1e300)."""
    log10_x = log10_x_needed(fit, target)
    return 10.0 ** log10_x if log10_x < 300 else float("inf")


def _log10_x_needed_boot(fit: PowerLawFit, target: float) -> np.ndarray:
    a, b, g = fit.boot.T
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log10_x = np.log10(fit.x_ref) + np.log10(a / (target - g)) / b
    return np.where((target > g) & (a > 0), log10_x, np.inf)


def cost_model(series: Series) -> dict[str, tuple[float, float]]:
    """field -> (slope, intercept) of log(field) on log(x) over the series' runs."""
    out = {}
    logx = np.log(series.x)
    for name in COST_FIELDS:
        v = series.field_values(name)
        ok = np.isfinite(v)
        if ok.sum() == 0:
            continue
        if len(np.unique(logx[ok])) < 2 or np.ptp(np.log(v[ok])) == 0:
            out[name] = (0.0, float(np.mean(np.log(v[ok]))))  # constant along this axis
        else:
            slope, intercept = np.polyfit(logx[ok], np.log(v[ok]), 1)
            out[name] = (float(slope), float(intercept))
    # The axis' own quantity is x itself, not a regression.
    if series.axis.x_field in COST_FIELDS:
        out[series.axis.x_field] = (1.0, 0.0)
    return out


def _cost_at(model: dict[str, tuple[float, float]], name: str, x: float) -> Optional[float]:
    if name not in model or not np.isfinite(x):
        return None
    slope, intercept = model[name]
    log_value = intercept + slope * np.log(x)
    return float(np.exp(log_value)) if log_value < 700 else None  # beyond float range: no answer


def plan_target(fit: PowerLawFit, series: Series, target: float,
                bytes_per_param: float = 4.0, floor: Optional[float] = None) -> dict[str, Any]:
    """What the series' axis needs to reach `target`; `floor` is the known Bayes NE
    (nothing reaches below it, whatever a law with a poorly determined gamma says)."""
    log10_x = log10_x_needed(fit, target)
    x = 10.0 ** log10_x if log10_x < 300 else float("inf")
    out: dict[str, Any] = {
        "target": target, "axis": series.axis.name, "x_field": series.axis.x_field,
        "group": series.group, "label": series.label, "gamma": fit.gamma,
        "gamma_ci95": fit.ci95()["gamma"] if fit.boot is not None else None,
    }
    if fit.boot is not None:
        lb = _log10_x_needed_boot(fit, target)
        out["boot_fraction_unreachable"] = fit.resampling.mean(~np.isfinite(lb))
        with np.errstate(invalid="ignore"):  # inf propagates: "unbounded above"
            weights = fit.resampling.weights_of(lb)  # the inverted CDF: inf is "unbounded above"
            lo, hi = weighted_quantiles(lb, [0.025, 0.975], np.ones(len(lb)) if weights is None else weights)
            c = fit.resampling.scale  # few seeds: widened about the estimate (analysis.bootstrap)
            if c != 1.0 and np.isfinite(log10_x):
                lo, hi = log10_x - c * (log10_x - lo), log10_x + c * (hi - log10_x)
        out["x_needed_ci95"] = [10.0 ** lo if lo < 300 else None, 10.0 ** hi if hi < 300 else None]
    if not np.isfinite(log10_x):
        out.update(status="unreachable", x_needed=None, log10_x_needed=None,
                   reason=f"target {target:.4g} <= gamma {fit.gamma:.4g}: the law levels off above it")
        return out
    if floor is not None and target <= floor:
        out.update(status="unreachable", x_needed=None, log10_x_needed=None,
                   reason=f"target {target:.4g} <= the Bayes floor {floor:.4g}: no model reaches it")
        return out
    out["log10_x_needed"] = log10_x
    if not np.isfinite(x):
        out.update(status="reachable", x_needed=None, extrapolation_factor=None, far_extrapolation=True,
                   reason=f"needs x = 10^{log10_x:.4g}: beyond any practical scale")
        return out
    out["status"] = "reached" if x <= fit.x_max else "reachable"
    out["x_needed"] = x
    out["extrapolation_factor"] = x / fit.x_max  # how far beyond the measured range
    out["far_extrapolation"] = out["extrapolation_factor"] > FAR_EXTRAPOLATION
    model = cost_model(series)
    samples = _cost_at(model, "num_train_samples", x)
    if series.axis.name == "compute":
        flops = x
    else:
        fps = _cost_at(model, "flops_per_sample", x)
        flops = fps * samples if fps is not None and samples is not None else None
    params_embedding = _cost_at(model, "params_embedding", x)
    throughput = _cost_at(model, "train_samples_per_second", x)
    out.update(
        num_train_samples=samples,
        params_total=_cost_at(model, "params_total", x),
        params_embedding=params_embedding,
        embedding_memory_bytes=params_embedding * bytes_per_param if params_embedding else None,
        train_flops=flops,
        train_seconds=samples / throughput if samples and throughput else None,
    )
    return out
