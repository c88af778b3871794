"""How much NE one more unit of a resource buys, at the largest measured scale.

The numbers behind "data scaling is the path forward" (or its opposite): from the fitted
law of a series at its largest measured x, the NE gained by doubling the resource, by
doubling the *compute* spent through that resource, and by the next 10x -- each with a
bootstrap interval -- and a verdict against a threshold on the next-10x gain.  Only a
determined law (analysis.determined) gets these numbers.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from analysis.fit import PowerLawFit
from analysis.series import Series

# One doubling of compute spent through a resource multiplies it by 2^(1/s).  Below
# s = log10(2) that is more than 10x -- further than the "next 10x" the report already
# extrapolates to -- and the number would say more about the law's tail than the data
# (e.g. embedding rows, which cost memory, not FLOPs).
MIN_COMPUTE_ELASTICITY = 0.30103


def compute_elasticity(series: Series) -> Optional[float]:
    """d log(train_flops) / d log(x) within the series (1 for data and compute axes
    by definition; a log-log regression for the parameter axes)."""
    if series.axis.name == "compute":
        return 1.0
    flops = series.field_values("train_flops")
    ok = np.isfinite(flops)
    if len(np.unique(series.x[ok])) < 2:
        return None
    slope, _ = np.polyfit(np.log(series.x[ok]), np.log(flops[ok]), 1)
    return float(slope)


def _gain(fit: PowerLawFit, x_from: float, x_to: float) -> dict[str, Any]:
    """NE(x_from) - NE(x_to): positive means the bigger resource lowers NE."""
    value = float(fit.predict(x_from) - fit.predict(x_to))
    out: dict[str, Any] = {"value": value, "ci95": None}
    if fit.boot is not None:
        pb = fit.predict_boot([x_from, x_to])
        out["ci95"] = fit.interval(pb[:, 0] - pb[:, 1], value)
    return out


def scaling_efficiency(fit: PowerLawFit, series: Series, threshold_next_10x: float) -> dict[str, Any]:
    x = fit.x_max
    ne_now = float(fit.predict(x))
    elasticity = compute_elasticity(series)
    per_doubling = _gain(fit, x, 2 * x)
    next_10x = _gain(fit, x, 10 * x)
    headroom = {"value": ne_now - fit.gamma, "ci95": None}
    if fit.boot is not None:
        headroom["ci95"] = fit.interval(fit.predict_boot([x])[:, 0] - fit.boot[:, 2], headroom["value"])
    per_compute_doubling = None
    if elasticity is not None and elasticity >= MIN_COMPUTE_ELASTICITY:
        per_compute_doubling = _gain(fit, x, x * 2.0 ** (1.0 / elasticity))

    # The verdict needs the whole interval on one side of the threshold.
    lo, hi = next_10x["ci95"] or (next_10x["value"], next_10x["value"])
    if lo > threshold_next_10x:
        verdict = "pays"
    elif hi < threshold_next_10x:
        verdict = "saturated"
    else:
        verdict = "uncertain"
    return {
        "x_max": x,
        "ne_at_x_max": ne_now,
        "gain_per_doubling": per_doubling,
        "gain_per_doubling_relative": per_doubling["value"] / ne_now,
        "gain_next_10x": next_10x,
        "compute_elasticity": elasticity,
        "gain_per_compute_doubling": per_compute_doubling,
        "headroom_to_gamma": headroom,
        "threshold_next_10x": threshold_next_10x,
        "verdict": verdict,
    }
