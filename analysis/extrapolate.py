"""Rolling extrapolation: fit on the smallest k x values, predict every larger one.

For each k from the fewest x values a law can be fitted to up to all but one (at most
MAX_PREFIXES of them, evenly spaced), the law is
fitted to the points with the k smallest x and asked for the mean NE at every larger x:
the relative error (observed - predicted) / observed against the extrapolation factor
x / (largest fitted x), as in OLMo's ladder rollouts and the Hitchhiker's guide to
scaling-law estimation.  A law that holds keeps its errors within its intervals however
far it is pushed; a curve that bends away from a power law shows errors that grow with
the factor.

Each prediction has a 95% interval: the prefix fit's bootstrap band at that x (same
resampling as the series: whole seeds, or runs), widened in quadrature by the noise of
an observed mean about the law -- the scatter of the prefix's means (over seeds) about
its fit, k - 3 degrees of freedom, t quantile.  (The between-seed spread is not added
again: the held-out mean is over the same seeds as the fit, whose offsets the band
already carries.)  The series is *flagged* when at least FLAG_MIN_OUTSIDE predictions and at
least FLAG_FRACTION of them fall outside.  Prefix fits are variable projection without
the scipy polish (exponents to 1e-5 in log): ample for a prediction.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from scipy.special import stdtrit

from analysis.bootstrap import bootstrap_weights, resampling_for
from analysis.errors import FitError
from analysis.fit import FitSettings, validate_xy
from analysis.varpro import fit_batch

FLAG_MIN_OUTSIDE = 2
FLAG_FRACTION = 0.25
# Resamples per prefix fit: the band's 2.5/97.5 percentiles from 200 draws are within a
# few per cent of those from 1000, and there are up to (distinct x - 4) prefixes a series.
ROLLING_BOOTSTRAP = 200
# At most this many prefixes (k evenly spaced from the smallest to all but one x value):
# a frontier of 40 budgets would otherwise refit 36 times for little more information.
MAX_PREFIXES = 6


def _t975(dof: float) -> float:
    return float(stdtrit(max(dof, 1), 0.975))


def rolling_extrapolation(x, y, settings: FitSettings, *, seed, blocks: Optional[np.ndarray] = None,
                          n_bootstrap: Optional[int] = None, what: str = "series") -> Optional[dict[str, Any]]:
    """None with fewer than settings.min_distinct_x + 1 distinct x values."""
    x, y = validate_xy(x, y, what)
    xs = np.unique(x)
    k_min = settings.min_distinct_x
    if len(xs) < k_min + 1:
        return None
    B = min(settings.n_bootstrap, ROLLING_BOOTSTRAP) if n_bootstrap is None else n_bootstrap
    x_ref = float(np.exp(np.mean(np.log(x))))
    logz = np.log(x / x_ref)
    rng = np.random.default_rng(seed)
    rows, spans, resamplings = [], [], []
    ks = range(k_min, len(xs))
    if len(ks) > MAX_PREFIXES:
        ks = sorted({int(round(v)) for v in np.linspace(k_min, len(xs) - 1, MAX_PREFIXES)})
    for k in ks:
        mask = x <= xs[k - 1]
        idx = np.nonzero(mask)[0]
        res = resampling_for(None if blocks is None else np.asarray(blocks)[mask], idx.size, x[mask])
        block_rows = [np.zeros((1, x.size))]
        block_rows[0][0, idx] = 1.0
        if B > 0:
            try:
                w, _ = bootstrap_weights(x[idx], B, rng, blocks=res.blocks)
            except FitError:
                continue
            full = np.zeros((B, x.size))
            full[:, idx] = w
            block_rows.append(full)
        start = len(rows)
        rows.extend(np.concatenate(block_rows))
        spans.append((k, start, start + sum(len(b) for b in block_rows)))
        resamplings.append(res)
    if not spans:
        return None
    bb = fit_batch(logz, y, np.array(rows), delta=settings.huber_delta,
                   exponent_bounds=settings.beta_bounds, grid_size=settings.grid_size)
    coef, beta = bb.coef, bb.exponents[:, 0]
    predictions = []
    for (k, start, stop), res in zip(spans, resamplings):
        mask = x <= xs[k - 1]
        c0, c1, b0 = coef[start, 0], coef[start, 1], beta[start]
        # The noise of an observed mean about the law: how far the prefix's means (over
        # seeds) scatter about its fit, with k - 3 degrees of freedom.
        xk = xs[:k]
        means = np.array([y[x == v].mean() for v in xk])
        dof = max(k - 3, 1)
        noise_std = float(np.sqrt(((means - (c0 + c1 * np.exp(-b0 * np.log(xk / x_ref)))) ** 2).sum() / dof))
        q = _t975(dof)
        for v in xs[k:]:
            held = y[x == v]
            zv = np.log(v / x_ref)
            pred = float(c0 + c1 * np.exp(-b0 * zv))
            lo = hi = pred
            if stop - start > 1:
                draws = coef[start + 1:stop, 0] + coef[start + 1:stop, 1] * np.exp(-beta[start + 1:stop] * zv)
                lo, hi = res.interval(draws, pred)
            noise = q * noise_std
            lo = pred - float(np.hypot(pred - lo, noise))
            hi = pred + float(np.hypot(hi - pred, noise))
            obs = float(held.mean())
            predictions.append({
                "n_fit_x": k, "fit_x_max": float(xs[k - 1]), "x": float(v), "factor": float(v / xs[k - 1]),
                "observed_ne": obs, "predicted_ne": pred, "error": obs - pred,
                "relative_error": (obs - pred) / obs, "interval95": [lo, hi],
                "within": bool(lo - 1e-9 * obs <= obs <= hi + 1e-9 * obs),
            })
    outside = sum(not p["within"] for p in predictions)
    worst = max(predictions, key=lambda p: abs(p["relative_error"]))
    farthest = max(predictions, key=lambda p: (p["factor"], -p["n_fit_x"]))
    one_step = [p for p in predictions if p["x"] == xs[p["n_fit_x"]]]
    return {
        "predictions": predictions,
        "n_predictions": len(predictions),
        "n_outside": outside,
        "flagged": bool(outside >= FLAG_MIN_OUTSIDE and outside >= FLAG_FRACTION * len(predictions)),
        "max_factor": farthest["factor"],
        "relative_error_at_max_factor": farthest["relative_error"],
        "max_abs_relative_error": abs(worst["relative_error"]),
        "max_abs_relative_error_factor": worst["factor"],
        "median_abs_relative_error_one_step": float(np.median([abs(p["relative_error"]) for p in one_step])),
        "n_bootstrap": B,
    }
