"""Joint law NE(P, D) = E + A / P^a + B / D^b and the compute-optimal split.

The form and the fitting method are Hoffmann et al. 2022 ("Chinchilla"), approach 3:
every run is one point, and the fit minimises the Huber loss of the log residuals over
all of them from a grid of starting points.  They parametrise log NE_hat as
LSE(log E, log A - a log P, log B - b log D) and run L-BFGS from each start; here the
same objective is minimised by variable projection over (a, b) (the grid is the many
starts, analysis.varpro; the bootstrap refits use exactly this) and a bounded
trust-region polish of all five parameters.  P = params_total, D = num_train_samples.

FLOPs per sample depend on the model (dense part) and are not 6P as for transformers,
so the split of a FLOP budget C = fps(P) * D uses fps(P) = K P^k measured over the
model's runs (a log-log regression).  Then NE(P) = E + A P^-a + B (K P^k / C)^b has its
minimum at P* with P*^(a + k b) = a A C^b / (k b B K^b): P* ~ C^(b/(a+kb)) and
D* = C / (K P*^k) ~ C^(a/(a+kb)).

The law needs a design that crosses: at least MIN_CROSSING values of each axis measured
against each other (`crossing`): three model sizes each at three or more data sizes, and
three data sizes (or three iso-FLOP budgets) each at three or more model sizes.  An L
(data sizes at one or two models, models at the largest data size) determines neither
exponent, whatever the optimiser returns.  It is fitted per model, data and scaling
scheme (runs of two schemes are never one law).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from analysis.bootstrap import Resampling, bootstrap_weights, resampling_for
from analysis.determined import BETA_DETERMINED
from analysis.errors import FitError
from analysis.fit import FitSettings, usable_floor, validate_xy
from analysis.jsonable import Jsonable, optional
from analysis.varpro import basis, fit_batch, floor_bound, inner_fit, polish

# The joint grid is (grid per exponent)^2 cells; 12 (a factor 2.1 between neighbours)
# is enough for the Newton search that follows and keeps the grid stage cheap.
JOINT_GRID_SIZE = 12
MIN_DISTINCT = 3  # distinct P and distinct D values
MIN_POINTS = 7  # five parameters plus two degrees of freedom
MIN_CROSSING = 3  # values of each axis measured against each other
PARAM_NAMES = ("E", "A", "a", "B", "b")


@dataclass
class Crossing(Jsonable):
    """How far a design crosses (`crossing`); `reason` says why it does not."""
    models_with_3_data_sizes: int
    data_sizes_with_3_models: int
    isoflop_profiles_with_3_models: int
    crosses: bool = False
    reason: Optional[str] = None


@dataclass
class FlopsModel(Jsonable):
    """FLOPs per sample = K * P^k over the runs (log-log least squares), with its r^2."""
    K: float
    k: float
    log_K: float
    r2: float


@dataclass
class OptimalSplit(Jsonable):
    """The compute-optimal (P, D) of one FLOP budget and the NE there; the intervals only
    where nearly every bootstrap draw has a finite optimum."""
    budget_flops: float
    params: float
    samples: float
    ne: float
    extrapolated: bool = False  # P* or D* outside the measured range
    extrapolation: Optional[str] = None  # how far, in words
    params_ci95: Optional[list[float]] = optional()
    samples_ci95: Optional[list[float]] = optional()
    ne_ci95: Optional[list[float]] = optional()


@dataclass
class SplitExponents(Jsonable):
    """P* ~ C^params and D* ~ C^samples."""
    params: float
    samples: float
    params_ci95: Optional[list[float]] = optional()
    samples_ci95: Optional[list[float]] = optional()


def crossing(P, D) -> Crossing:
    """How far the design crosses: model sizes with >= 3 data sizes, data sizes with >= 3
    model sizes, FLOP budgets (P * D to 2%) with >= 3 model sizes; `crosses` and, when
    it does not, the reason."""
    P, D = np.asarray(P, float), np.asarray(D, float)
    pairs = {(p, d) for p, d in zip(P, D)}

    def count(keys, vals):
        per: dict[float, set] = {}
        for k, v in zip(keys, vals):
            per.setdefault(k, set()).add(v)
        return sum(len(v) >= MIN_CROSSING for v in per.values())

    ps, ds = [p for p, _ in pairs], [d for _, d in pairs]
    budgets = [round(float(np.log(p * d) / np.log(1.02))) for p, d in pairs]
    out = Crossing(models_with_3_data_sizes=count(ps, ds), data_sizes_with_3_models=count(ds, ps),
                   isoflop_profiles_with_3_models=count(budgets, ps))
    ok = out.models_with_3_data_sizes >= MIN_CROSSING and (
        out.data_sizes_with_3_models >= MIN_CROSSING or out.isoflop_profiles_with_3_models >= MIN_CROSSING)
    out.crosses = bool(ok)
    out.reason = None if ok else (
        f"the design does not cross: {out.models_with_3_data_sizes} model size(s) measured at >= "
        f"{MIN_CROSSING} data sizes and {out.data_sizes_with_3_models} data size(s) "
        f"({out.isoflop_profiles_with_3_models} iso-FLOP budget(s)) at >= {MIN_CROSSING} model sizes; "
        f"E + A/P^a + B/D^b needs {MIN_CROSSING} of each (a grid or iso-FLOP profiles)")
    return out


@dataclass
class JointFit:
    E: float
    A: float
    a: float
    B: float
    b: float
    P_ref: float
    D_ref: float
    A_ref: float  # A * P_ref^-a
    B_ref: float  # B * D_ref^-b
    loss: float
    r2: float
    n_points: int
    # Bootstrap draws: E, A_ref, a, B_ref, b (one row per resample).
    boot: Optional[np.ndarray] = None
    resampling: Resampling = field(default_factory=Resampling)
    y_min: float = float("nan")
    beta_bounds: tuple[float, float] = (1e-3, 4.0)
    E_floor: float = 0.0  # E's lower bound: a known floor of the metric, else 0

    def predict(self, P, D) -> np.ndarray:
        p = np.asarray(P, float) / self.P_ref
        d = np.asarray(D, float) / self.D_ref
        return self.E + self.A_ref * p ** -self.a + self.B_ref * d ** -self.b

    def params(self) -> dict[str, float]:
        return {"E": self.E, "A": self.A, "a": self.a, "B": self.B, "b": self.b}

    def boot_params(self) -> dict[str, np.ndarray]:
        E, Ar, a, Br, b = self.boot.T
        return {"E": E, "A": Ar * self.P_ref ** a, "a": a, "B": Br * self.D_ref ** b, "b": b}

    def interval(self, draws, value, lo=-np.inf, hi=np.inf, log=False, mask=None) -> list[float]:
        return self.resampling.interval(draws, value, lo, hi, log, mask=mask)

    def ci95(self) -> Optional[dict[str, list[float]]]:
        if self.boot is None:
            return None
        eb = self.beta_bounds
        bounds = {"E": (self.E_floor, self.y_min), "A": (0.0, np.inf), "a": eb, "B": (0.0, np.inf), "b": eb}
        return {k: self.interval(v, self.params()[k], *bounds[k], log=k != "E")
                for k, v in self.boot_params().items()}

    def determinedness(self) -> tuple[bool, list[str]]:
        """Both exponents' intervals inside BETA_DETERMINED and off their bounds."""
        reasons = []
        ci = self.ci95()
        for name in ("a", "b"):
            v = getattr(self, name)
            if v <= self.beta_bounds[0] * (1 + 1e-6) or v >= self.beta_bounds[1] * (1 - 1e-6):
                reasons.append(f"{name} = {v:.3g} is at a bound")
            if ci is None:
                continue
            lo, hi = ci[name]
            if not (BETA_DETERMINED[0] < lo and hi < BETA_DETERMINED[1]):
                reasons.append(f"{name}'s 95% interval [{lo:.3g}, {hi:.3g}] is not inside {BETA_DETERMINED}")
        if ci is None:
            reasons.append("no bootstrap (an exponent at a bound is undetermined whatever its interval)"
                           if reasons else "no bootstrap intervals")
        return not reasons, reasons


def fit_joint(P, D, y, settings: FitSettings = FitSettings(), *, seed=0,
              n_bootstrap: Optional[int] = None, what: str = "joint law",
              blocks: Optional[np.ndarray] = None, skip_bootstrap_at_bound: bool = False,
              floor: Optional[float] = None) -> JointFit:
    """Fit the joint law; with `skip_bootstrap_at_bound`, no bootstrap when an exponent
    of the point estimate sits on a bound (the law is undetermined whatever its interval).
    `floor`: a known lower bound of E (None: 0)."""
    P, y = validate_xy(P, y, what)
    D, _ = validate_xy(D, y, what)
    nP, nD = len(np.unique(P)), len(np.unique(D))
    if nP < MIN_DISTINCT or nD < MIN_DISTINCT or len(y) < MIN_POINTS:
        raise FitError(f"{what}: {nP} distinct P and {nD} distinct D values in {len(y)} runs; "
                       f"the joint law needs >= {MIN_DISTINCT} of each and >= {MIN_POINTS} runs")
    B = settings.n_bootstrap if n_bootstrap is None else n_bootstrap
    P_ref, D_ref = (float(np.exp(np.mean(np.log(v)))) for v in (P, D))
    logz = np.stack([np.log(P / P_ref), np.log(D / D_ref)], axis=1)
    # Two reweighting iterations inside each evaluation: the loss at the optimum is then
    # within 1e-10 (median; 1e-7 worst) of fully converged ones, and the Newton search
    # over (a, b) costs a third less.
    lb = usable_floor(floor, y)
    kw = dict(delta=settings.huber_delta, exponent_bounds=settings.beta_bounds,
              grid_size=JOINT_GRID_SIZE, inner_iterations=2, lb=lb)
    vp = fit_batch(logz, y, np.ones((1, len(y))), **kw)

    (E, A_ref, B_ref), (a, b), loss = vp.coef[0], vp.exponents[0], float(vp.loss[0])
    # Polish all five parameters at once from the varpro optimum and the best grid cell.
    start_exps = np.concatenate([vp.exponents, vp.starts[0, :1]])  # (2, 2)
    y_floor = float(floor_bound(logz, y, np.ones(len(y)))[0])
    coef, _ = inner_fit(basis(logz, start_exps), y, np.log(y), np.ones(len(y)),
                        np.full(len(start_exps), y_floor), settings.huber_delta, 3, lb=lb)
    c, e, polished_loss = polish(logz, y, settings.huber_delta, settings.beta_bounds,
                                 list(zip(coef, start_exps)), lb=lb)
    if c is not None and polished_loss <= loss:
        (E, A_ref, B_ref), (a, b), loss = c, e, polished_loss
    E, A_ref, a, B_ref, b = (float(v) for v in (E, A_ref, a, B_ref, b))
    pred = E + A_ref * np.exp(-a * logz[:, 0]) + B_ref * np.exp(-b * logz[:, 1])
    ss_tot = float(((y - y.mean()) ** 2).sum())
    fit = JointFit(E=E, A=A_ref * P_ref ** a, a=a, B=B_ref * D_ref ** b, b=b, P_ref=P_ref,
                   D_ref=D_ref, A_ref=A_ref, B_ref=B_ref, loss=float(loss),
                   r2=1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
                   n_points=len(y), resampling=resampling_for(blocks, len(y), P), y_min=y_floor,
                   beta_bounds=settings.beta_bounds, E_floor=lb)
    lo_b, hi_b = settings.beta_bounds
    at_bound = any(v <= lo_b * (1 + 1e-6) or v >= hi_b * (1 - 1e-6) for v in (a, b))
    if B > 0 and not (skip_bootstrap_at_bound and at_bound):
        rng = np.random.default_rng(seed)
        w, _, fit.resampling.probabilities = bootstrap_weights(P, B, rng, min_distinct=MIN_DISTINCT,
                                                               groups=[P, D], blocks=fit.resampling.blocks)
        bb = fit_batch(logz, y, w, **kw)
        fit.boot = np.stack([bb.coef[:, 0], bb.coef[:, 1], bb.exponents[:, 0],
                             bb.coef[:, 2], bb.exponents[:, 1]], axis=1)
    return fit


def flops_model(P, fps) -> Optional[FlopsModel]:
    """fps = K * P^k by least squares in log-log over the runs, with its r^2."""
    P, fps = np.asarray(P, float), np.asarray(fps, float)
    ok = np.isfinite(P) & np.isfinite(fps) & (P > 0) & (fps > 0)
    if len(np.unique(P[ok])) < 2:
        return None
    lp, lf = np.log(P[ok]), np.log(fps[ok])
    k, logK = np.polyfit(lp, lf, 1)
    ss_tot = float(((lf - lf.mean()) ** 2).sum())
    r2 = 1.0 - float(((lf - (logK + k * lp)) ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return FlopsModel(K=float(np.exp(logK)), k=float(k), log_K=float(logK), r2=r2)


def _optimal_split(E, A_ref, a, B_ref, b, P_ref, D_ref, logK, k, C):
    """P*, D*, NE* for budget C (arrays broadcast); NaN where a term vanishes."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_c = np.log(C) - logK - k * np.log(P_ref) - np.log(D_ref)  # D/D_ref = e^log_c p^-k
        log_p = (np.log(a * A_ref) + b * log_c - np.log(k * b * B_ref)) / (a + k * b)
        p = np.exp(log_p)
        d = np.exp(log_c - k * log_p)
        ne = E + A_ref * p ** -a + B_ref * d ** -b
    return p * P_ref, d * D_ref, ne


def compute_optimal(fit: JointFit, fmodel: FlopsModel, budgets: list[float],
                    P_range: Optional[tuple[float, float]] = None,
                    D_range: Optional[tuple[float, float]] = None) -> list[OptimalSplit]:
    """The compute-optimal (P, D) for each FLOP budget, with bootstrap intervals; each
    flagged `extrapolated` when P* or D* lies outside the measured range."""
    k, logK = fmodel.k, fmodel.log_K
    out = []
    for C in budgets:
        P, D, ne = _optimal_split(fit.E, fit.A_ref, fit.a, fit.B_ref, fit.b, fit.P_ref, fit.D_ref, logK, k, C)
        row = OptimalSplit(budget_flops=float(C), params=float(P), samples=float(D), ne=float(ne))
        outside = []
        for name, v, rng_ in (("params", P, P_range), ("samples", D, D_range)):
            if rng_ is not None and np.isfinite(v) and not (rng_[0] <= v <= rng_[1]):
                factor = v / rng_[1] if v > rng_[1] else rng_[0] / v
                outside.append(f"{name} {factor:.3g}x {'beyond' if v > rng_[1] else 'below'} the measured range")
        row.extrapolated = bool(outside)
        row.extrapolation = "; ".join(outside) or None
        if fit.boot is not None:
            E, Ar, a, Br, b = fit.boot.T
            Pb, Db, neb = _optimal_split(E, Ar, a, Br, b, fit.P_ref, fit.D_ref, logK, k, C)
            ok = np.isfinite(Pb) & np.isfinite(Db) & np.isfinite(neb)
            if fit.resampling.mean(ok) >= 0.975:  # else an interval would hide the degenerate draws
                row.params_ci95 = fit.interval(Pb[ok], P, 0.0, mask=ok)
                row.samples_ci95 = fit.interval(Db[ok], D, 0.0, mask=ok)
                row.ne_ci95 = fit.interval(neb[ok], ne, 0.0, mask=ok)
        out.append(row)
    return out


def split_exponents(fit: JointFit, k: float) -> SplitExponents:
    """P* ~ C^(b/(a+kb)) and D* ~ C^(a/(a+kb)), with bootstrap intervals."""
    out = SplitExponents(params=fit.b / (fit.a + k * fit.b), samples=fit.a / (fit.a + k * fit.b))
    if fit.boot is not None:
        a, b = fit.boot[:, 2], fit.boot[:, 4]
        out.params_ci95 = fit.interval(b / (a + k * b), out.params)
        out.samples_ci95 = fit.interval(a / (a + k * b), out.samples)
    return out
