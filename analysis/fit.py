"""NE(x) = alpha * x^(-beta) + gamma: a robust fit with bootstrap intervals.

Fitted in log space (NE noise is roughly proportional to NE, and the paper's plots are
log-log) with a Huber loss (one bad run should not bend the law), by variable
projection over beta (analysis.varpro), then polished with scipy's least_squares.
Bounds: beta in BETA_BOUNDS, alpha >= 0, floor <= gamma <= the smallest, over the sizes x,
of each size's largest NE (a floor above every run of a size is contradicted by them; one
lucky seed below the others is noise, and bounding gamma by it put saturating axes' gamma
on that bound: analysis.varpro.floor_bound).  `floor` is a known lower bound of the metric
(the planted world's Bayes floor on the eval set), else 0: no law levels off below what
any predictor can reach.

Internally x is divided by x_ref (the geometric mean of the series' x) so that
alpha_ref = alpha * x_ref^-beta is O(NE) whatever the unit of x (samples, params,
FLOPs); predictions use alpha_ref and x_ref and never a rounded alpha.

Uncertainty (analysis.bootstrap): with two or more seeds whole seeds are resampled (a
seed's trajectory across the series stays together) and the intervals are scaled for
the few seeds they rest on; with one seed the runs are resampled, which measures fit
noise only.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from analysis.bootstrap import Resampling, bootstrap_weights, resampling_for
from analysis.errors import FitError
from analysis.varpro import basis, fit_batch, floor_bound, inner_fit, polish

# beta > 0 as the issue asks; 1e-3 is "no measurable trend" and 4 is far steeper than
# any scaling law (over one decade it would shrink the reducible part 10^4-fold).
BETA_BOUNDS = (1e-3, 4.0)
# Points below this many distinct x values make a three-parameter law meaningless.
MIN_DISTINCT_X = 4


@dataclass(frozen=True)
class FitSettings:
    huber_delta: float = 0.01  # log-space residual (about 1% of NE) where Huber turns linear
    n_bootstrap: int = 1000
    beta_bounds: tuple[float, float] = BETA_BOUNDS
    grid_size: int = 24  # starting points for beta, log-spaced over beta_bounds
    min_distinct_x: int = MIN_DISTINCT_X


@dataclass
class PowerLawFit:
    alpha: float
    beta: float
    gamma: float
    x_ref: float
    alpha_ref: float  # alpha * x_ref^-beta: NE above the floor at x = x_ref
    loss: float  # sum of Huber losses of log residuals at the optimum
    r2: float  # in NE (not log) space
    rmse_log: float
    n_points: int
    n_distinct_x: int
    x_min: float
    x_max: float
    y_min: float  # gamma's upper bound (varpro.floor_bound): the smallest NE with one run a size
    at_bound: list[str] = field(default_factory=list)
    gamma_floor: float = 0.0  # gamma's lower bound: a known floor of the metric, else 0
    # Bootstrap estimates, one row per resample: alpha_ref, beta, gamma.
    boot: Optional[np.ndarray] = None
    boot_rejected: int = 0  # resamples redrawn for having < 4 distinct x values
    resampling: Resampling = field(default_factory=Resampling)
    beta_bounds: tuple[float, float] = BETA_BOUNDS

    def predict(self, x) -> np.ndarray:
        z = np.asarray(x, float) / self.x_ref
        return self.gamma + self.alpha_ref * z ** (-self.beta)

    def predict_boot(self, x) -> np.ndarray:
        """(B, len(x)) predictions of every bootstrap law."""
        if self.boot is None:
            raise ValueError("fit has no bootstrap")
        z = np.atleast_1d(np.asarray(x, float)) / self.x_ref
        a, b, g = self.boot[:, :1], self.boot[:, 1:2], self.boot[:, 2:3]
        return g + a * z[None, :] ** (-b)

    def boot_params(self) -> dict[str, np.ndarray]:
        """Bootstrap draws of the reported (raw-unit) parameters."""
        a_ref, b, g = self.boot.T
        return {"alpha": a_ref * self.x_ref ** b, "beta": b, "gamma": g}

    def params(self) -> dict[str, float]:
        return {"alpha": self.alpha, "beta": self.beta, "gamma": self.gamma}

    def interval(self, draws: np.ndarray, value: float, lo_bound: float = -np.inf,
                 hi_bound: float = np.inf, log: bool = False) -> list[float]:
        """The 95% interval of a quantity from its bootstrap draws (see Resampling)."""
        return self.resampling.interval(draws, value, lo_bound, hi_bound, log)

    def ci95(self) -> Optional[dict[str, list[float]]]:
        if self.boot is None:
            return None
        bounds = {"alpha": (0.0, np.inf), "beta": self.beta_bounds, "gamma": (self.gamma_floor, self.y_min)}
        return {k: self.interval(v, self.params()[k], *bounds[k], log=k != "gamma")
                for k, v in self.boot_params().items()}


def validate_xy(x, y, what: str = "series") -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, float).ravel()
    y = np.asarray(y, float).ravel()
    if x.shape != y.shape:
        raise FitError(f"{what}: {x.size} x values but {y.size} NE values")
    for name, v in (("x", x), ("NE", y)):
        bad = np.nonzero(~np.isfinite(v) | (v <= 0))[0]
        if bad.size:
            raise FitError(f"{what}: {name} value {v[bad[0]]!r} at point {bad[0]} is not a "
                           f"finite positive number ({bad.size} such points)")
    return x, y


def fit_power_law(x, y, settings: FitSettings = FitSettings(), *, seed=0,
                  n_bootstrap: Optional[int] = None, what: str = "series",
                  blocks: Optional[np.ndarray] = None, floor: Optional[float] = None) -> PowerLawFit:
    """Fit NE = alpha x^-beta + gamma to points (x, y).  The bootstrap resamples whole
    blocks (`blocks`: the seed of each point) when there are two or more, else points.
    `floor`: a known lower bound of gamma (None: 0)."""
    x, y = validate_xy(x, y, what)
    n_distinct = len(np.unique(x))
    if n_distinct < settings.min_distinct_x:
        raise FitError(f"{what}: {n_distinct} distinct x values, need at least "
                       f"{settings.min_distinct_x} to fit alpha, beta, gamma")
    B = settings.n_bootstrap if n_bootstrap is None else n_bootstrap
    x_ref = float(np.exp(np.mean(np.log(x))))
    logz = np.log(x / x_ref)
    lb = usable_floor(floor, y)
    kw = dict(delta=settings.huber_delta, exponent_bounds=settings.beta_bounds,
              grid_size=settings.grid_size, lb=lb)

    # Point estimate: variable projection from every grid start, then a scipy polish from
    # the varpro optimum and the best grid cell (the many starting points).
    vp = fit_batch(logz, y, np.ones((1, len(x))), **kw)
    alpha_ref, beta, gamma = float(vp.coef[0, 1]), float(vp.exponents[0, 0]), float(vp.coef[0, 0])
    loss = float(vp.loss[0])
    start_exps = np.concatenate([vp.exponents, vp.starts[0, :1]])  # (2, 1)
    y_floor = float(floor_bound(logz, y, np.ones(len(x)))[0])
    coef, _ = inner_fit(basis(logz[:, None], start_exps), y, np.log(y), np.ones(len(x)),
                        np.full(len(start_exps), y_floor), settings.huber_delta, 3, lb=lb)
    c, e, polished_loss = polish(logz, y, settings.huber_delta, settings.beta_bounds,
                                 list(zip(coef, start_exps)), lb=lb)
    if c is not None and polished_loss <= loss:
        alpha_ref, beta, gamma, loss = float(c[1]), float(e[0]), float(c[0]), polished_loss

    pred = gamma + alpha_ref * np.exp(-beta * logz)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    fit = PowerLawFit(
        alpha=alpha_ref * x_ref ** beta, beta=beta, gamma=gamma, x_ref=x_ref,
        alpha_ref=alpha_ref, loss=loss, r2=r2,
        rmse_log=float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2))),
        n_points=len(x), n_distinct_x=n_distinct, x_min=float(x.min()), x_max=float(x.max()),
        y_min=y_floor, at_bound=_at_bound(alpha_ref, beta, gamma, y_floor, settings.beta_bounds, lb),
        gamma_floor=lb,
        resampling=resampling_for(blocks, len(x), x), beta_bounds=settings.beta_bounds,
    )
    if B > 0:
        rng = np.random.default_rng(seed)
        w, fit.boot_rejected, fit.resampling.probabilities = bootstrap_weights(x, B, rng, blocks=fit.resampling.blocks)
        bb = fit_batch(logz, y, w, **kw)
        fit.boot = np.stack([bb.coef[:, 1], bb.exponents[:, 0], bb.coef[:, 0]], axis=1)
    return fit


def usable_floor(floor: Optional[float], y: np.ndarray) -> float:
    """gamma's lower bound: the known floor, unless every point lies below it (then the
    floor is not this metric's, e.g. of another eval set, and bounds nothing: 0)."""
    if floor is None or not np.isfinite(floor) or floor <= 0 or floor >= float(np.max(y)):
        return 0.0
    return float(floor)


def _at_bound(alpha_ref, beta, gamma, y_min, beta_bounds, floor: float = 0.0) -> list[str]:
    """Which parameters sit on a bound: the data do not pin them down there."""
    out = []
    if alpha_ref <= 0:
        out.append("alpha=0 (no trend)")
    if beta <= beta_bounds[0] * (1 + 1e-6):
        out.append(f"beta at lower bound {beta_bounds[0]}")
    if beta >= beta_bounds[1] * (1 - 1e-6):
        out.append(f"beta at upper bound {beta_bounds[1]}")
    # Within 1e-6 of a bound is on it: the optimiser approaches bounds from inside.
    if floor > 0 and gamma <= floor + 1e-6 * y_min:
        out.append(f"gamma at the known floor {floor:.4g} (the data would put it lower)")
    elif gamma <= 1e-6 * y_min:
        out.append("gamma at lower bound 0 (no floor visible)")
    if gamma >= y_min * (1 - 1e-6):
        out.append("gamma at upper bound (a size's largest NE)")
    return out


def fit_weightings(x, y, weights: np.ndarray, settings: FitSettings = FitSettings(),
                   floor: Optional[float] = None) -> dict[str, np.ndarray]:
    """Variable-projection fits of the same points under several weightings at once
    (rows of `weights`, e.g. one row per seed selecting its runs): alpha, beta, gamma
    arrays with one entry per row.  No scipy polish: exponents to 0.1%."""
    x, y = validate_xy(x, y)
    x_ref = float(np.exp(np.mean(np.log(x))))
    bb = fit_batch(np.log(x / x_ref), y, weights, delta=settings.huber_delta,
                   exponent_bounds=settings.beta_bounds, grid_size=settings.grid_size, lb=usable_floor(floor, y))
    beta = bb.exponents[:, 0]
    return {"alpha": bb.coef[:, 1] * x_ref ** beta, "beta": beta, "gamma": bb.coef[:, 0]}
