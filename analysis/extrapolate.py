"""Rolling extrapolation: fit on the smallest k x values, predict every larger one.

For each k from the fewest x values a law can be fitted to up to all but one (at most
MAX_PREFIXES of them, evenly spaced), the law is fitted to the points with the k smallest
x and asked for the mean metric at every larger x: the relative error
(observed - predicted) / observed against the extrapolation factor x / (largest fitted x),
as in OLMo's ladder rollouts and Choshen et al.'s "Hitchhiker's Guide to Scaling Law
Estimation".  A law that holds keeps its errors within their intervals however far it is
pushed; a curve that bends away from a power law shows errors that grow with the factor,
and all of one sign.

Each prediction's 95% interval comes from the same resamples as the series' intervals.
With two or more seeds, a resample draws whole seeds; the prefix is refitted on the drawn
seeds' points and the held-out mean is taken over the same drawn seeds, so each resample
gives one draw of the error observed - predicted, and the interval of that error (widened
by c_S for few seeds, analysis.bootstrap) says whether 0 is a plausible error.  The
held-out noise and the fit's noise are both in it, correlated as they are along the seeds'
trajectories, with no quantile resting on the prefix's few degrees of freedom.  With one
seed the prefix's runs are resampled and the held-out point's own noise is the RMS of
the prefix's residuals, with their n - 3 degrees of freedom (fit noise only: the
seed-to-seed spread is unknown).

A series is *flagged* when its farthest prediction -- the largest x from the smallest
prefix, the largest extrapolation factor -- falls outside its interval: the law does not
carry from the bottom of the measured range to its top.  Per extrapolation factor (rounded to a power of two) the signed bias
and the mean absolute relative error of the predictions are reported.  Prefix fits are
variable projection without the scipy polish (exponents to 1e-5 in log): ample for a
prediction.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.special import stdtrit

from analysis.bootstrap import bootstrap_weights, resampling_for
from analysis.errors import FitError
from analysis.fit import FitSettings, usable_floor, validate_xy
from analysis.jsonable import Jsonable
from analysis.varpro import fit_batch

# Random resamples per prefix fit, where the seeds' resamples are not enumerated exactly
# (analysis.bootstrap): there are up to MAX_PREFIXES prefixes a series.
ROLLING_BOOTSTRAP = 400
# At most this many prefixes (k evenly spaced from the smallest to all but one x value):
# a frontier of 40 budgets would otherwise refit 36 times for little more information.
MAX_PREFIXES = 6


@dataclass
class Prediction(Jsonable):
    """The law fitted on the `n_fit_x` smallest x values (up to `fit_x_max`) asked for x."""
    n_fit_x: int
    fit_x_max: float
    x: float
    factor: float  # x / fit_x_max
    observed_ne: float
    predicted_ne: float
    error: float  # observed - predicted
    relative_error: float
    error_ci95: list[float]
    interval95: list[float]  # of the observed mean, around the prediction
    within: bool


@dataclass
class FactorBin(Jsonable):
    """The predictions whose extrapolation factor rounds to `factor` (a power of two)."""
    factor: float
    n: int
    mean_relative_error: float
    mean_abs_relative_error: float


@dataclass
class RollingCheck(Jsonable):
    predictions: list[Prediction]
    n_predictions: int
    n_outside: int
    n_top_outside: int  # predictions of the largest x outside their interval
    flagged: bool  # the farthest prediction outside its interval
    by_factor: list[FactorBin]
    one_signed: bool
    max_factor: float
    relative_error_at_max_factor: float
    max_abs_relative_error: float
    max_abs_relative_error_factor: float
    median_abs_relative_error_one_step: float
    n_bootstrap: int
    resampling: str


def factor_bin(factor: float) -> float:
    """The extrapolation factor rounded to a power of two (1.4x-2.8x -> 2, ...)."""
    return float(2.0 ** max(round(np.log2(factor)), 0))


def _by_factor(predictions: list[Prediction]) -> list[FactorBin]:
    groups: dict[float, list[float]] = defaultdict(list)
    for p in predictions:
        groups[factor_bin(p.factor)].append(p.relative_error)
    return [FactorBin(factor=f, n=len(v), mean_relative_error=float(np.mean(v)),
                      mean_abs_relative_error=float(np.mean(np.abs(v)))) for f, v in sorted(groups.items())]


def rolling_extrapolation(x, y, settings: FitSettings, *, seed, blocks: Optional[np.ndarray] = None,
                          n_bootstrap: Optional[int] = None, what: str = "series",
                          floor: Optional[float] = None) -> Optional[RollingCheck]:
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
    ks = list(range(k_min, len(xs)))
    if len(ks) > MAX_PREFIXES:
        ks = sorted({int(round(v)) for v in np.linspace(k_min, len(xs) - 1, MAX_PREFIXES)})
    rows, spans = [], []
    for k in ks:
        prefix = x <= xs[k - 1]
        res = resampling_for(None if blocks is None else np.asarray(blocks)[prefix], int(prefix.sum()), x[prefix])
        point = np.where(prefix, 1.0, 0.0)[None, :]
        draws = np.zeros((0, x.size))
        if B > 0:
            try:
                if res.kind == "seeds":  # whole seeds of the series, the held-out points with them
                    _, full_blocks = np.unique(np.asarray(blocks), return_inverse=True)
                    draws, _, res.probabilities = bootstrap_weights(x, B, rng, blocks=full_blocks.ravel(),
                                                                    fit_mask=prefix)
                else:
                    draws = np.zeros((B, x.size))
                    draws[:, prefix], _, _ = bootstrap_weights(x[prefix], B, rng)
            except FitError:
                continue
        start = len(rows)
        rows.extend(np.concatenate([point, draws]))
        spans.append((k, start, len(rows), res, draws))
    if not spans:
        return None
    # Each row fits its prefix only: the held-out points are weighted 0 in the fit.
    fit_rows = np.array(rows)
    for k, start, stop, _, _ in spans:
        fit_rows[start:stop, x > xs[k - 1]] = 0.0
    bb = fit_batch(logz, y, fit_rows, delta=settings.huber_delta, exponent_bounds=settings.beta_bounds,
                   grid_size=settings.grid_size, lb=usable_floor(floor, y))
    coef, beta = bb.coef, bb.exponents[:, 0]

    def predict(rows_, zv):
        return coef[rows_, 0] + coef[rows_, 1] * np.exp(-beta[rows_] * zv)

    predictions = []
    for k, start, stop, res, draws in spans:
        prefix = x <= xs[k - 1]
        fitted = predict(start, logz[prefix])
        # One seed: a held-out point's own noise, from the prefix's residuals (n - 3 degrees of freedom).
        dof = max(int(prefix.sum()) - 3, 1)
        noise = float(np.sqrt(np.sum((y[prefix] - fitted) ** 2) / dof))
        q = float(stdtrit(dof, 0.975))
        boot_rows = np.arange(start + 1, stop)
        for v in xs[k:]:
            at = x == v
            obs = float(y[at].mean())
            pred = float(predict(start, np.log(v / x_ref)))
            error = obs - pred
            e_lo = e_hi = error
            if boot_rows.size and res.kind == "seeds":
                counts = draws[:, at].sum(axis=1)
                ok = counts > 0  # a draw without any seed of this x says nothing of it
                held = (draws[ok][:, at] @ y[at]) / counts[ok]
                e_lo, e_hi = res.interval(held - predict(boot_rows[ok], np.log(v / x_ref)), error,
                                          mask=ok if res.exact else None)
            elif boot_rows.size:
                lo, hi = res.interval(predict(boot_rows, np.log(v / x_ref)), pred)
                spread = q * noise / np.sqrt(at.sum())
                e_lo = error - float(np.hypot(hi - pred, spread))
                e_hi = error + float(np.hypot(pred - lo, spread))
            predictions.append(Prediction(
                n_fit_x=k, fit_x_max=float(xs[k - 1]), x=float(v), factor=float(v / xs[k - 1]),
                observed_ne=obs, predicted_ne=pred, error=error, relative_error=error / obs,
                error_ci95=[e_lo, e_hi], interval95=[obs - e_hi, obs - e_lo],
                within=bool(e_lo - 1e-9 * obs <= 0.0 <= e_hi + 1e-9 * obs)))
    x_top = float(xs[-1])
    top = [p for p in predictions if p.x == x_top]
    outside = sum(not p.within for p in predictions)
    worst = max(predictions, key=lambda p: abs(p.relative_error))
    farthest = max(predictions, key=lambda p: (p.factor, -p.n_fit_x))
    one_step = [p for p in predictions if p.x == xs[p.n_fit_x]]
    signs = {np.sign(p.error) for p in predictions if p.error != 0}
    return RollingCheck(
        predictions=predictions,
        n_predictions=len(predictions),
        n_outside=outside,
        n_top_outside=sum(not p.within for p in top),
        flagged=not farthest.within,
        by_factor=_by_factor(predictions),
        one_signed=len(signs) == 1 and len(predictions) > 1,
        max_factor=farthest.factor,
        relative_error_at_max_factor=farthest.relative_error,
        max_abs_relative_error=abs(worst.relative_error),
        max_abs_relative_error_factor=worst.factor,
        median_abs_relative_error_one_step=float(np.median([abs(p.relative_error) for p in one_step])),
        n_bootstrap=B,
        resampling=spans[-1][3].kind,
    )
