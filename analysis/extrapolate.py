"""Extrapolation check: does the law fitted on the smaller x predict the largest?

Fit on every run except those at the largest x value, predict NE there, and compare
with the mean NE measured there.  The law is flagged when the measurement falls outside
the law's own 95% interval for it: the bootstrap band of the held-out prediction,
widened (in quadrature) by the noise of the held-out mean, estimated from the residuals
of the fit.  A curve that bends away from a power law beyond the fitted range is
flagged; a good law is flagged about 5% of the time, as any 95% interval.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from analysis.fit import FitSettings, fit_power_law


def extrapolation_check(x, y, settings: FitSettings, *, seed, n_bootstrap: Optional[int] = None,
                        what: str = "series") -> Optional[dict[str, Any]]:
    """None when too few x values would remain to fit without the largest."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    x_hold = x.max()
    train = x < x_hold
    if len(np.unique(x[train])) < settings.min_distinct_x:
        return None
    fit = fit_power_law(x[train], y[train], settings, seed=seed, n_bootstrap=n_bootstrap,
                        what=f"{what} (without x={x_hold:g})")
    held = y[~train]
    observed = float(held.mean())
    predicted = float(fit.predict(x_hold))

    # Run-to-run noise in NE units from the training residuals (3 fitted parameters).
    resid = y[train] - fit.predict(x[train])
    dof = max(int(train.sum()) - 3, 1)
    noise_std = float(np.sqrt((resid ** 2).sum() / dof))
    noise_of_mean = 1.959964 * noise_std / np.sqrt(held.size)
    if fit.boot is not None:
        band_lo, band_hi = np.percentile(fit.predict_boot([x_hold])[:, 0], [2.5, 97.5])
    else:
        band_lo = band_hi = predicted
    lo = predicted - float(np.hypot(predicted - band_lo, noise_of_mean))
    hi = predicted + float(np.hypot(band_hi - predicted, noise_of_mean))
    return {
        "x_held_out": float(x_hold),
        "n_held_out": int(held.size),
        "n_fitted": int(train.sum()),
        "observed_ne": observed,
        "predicted_ne": predicted,
        "error": observed - predicted,  # negative: the law was too pessimistic
        "relative_error": (observed - predicted) / observed,
        "interval95": [lo, hi],
        "flagged": bool(observed < lo or observed > hi),
        "params_without_largest": fit.params(),
    }
