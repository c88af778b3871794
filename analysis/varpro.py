"""Vectorised variable projection for sums of power laws plus a constant.

Model    y ~ c0 + sum_j c_j * z_j ** (-e_j),   z_j = x_j / x_ref_j  (dimensionless)
Loss     sum_i w_i * huber_delta(log yhat_i - log y_i)          (Huber in log space)
Bounds   lb <= c0 <= ub,  c_j >= 0,  e_lo <= e_j <= e_hi
         (lb: a known floor of y, else 0; ub: the smallest of each size's largest y)

One power law (k = 1) is NE(x) = alpha x^-beta + gamma; the joint law (k = 2) is
NE(P, D) = E + A/P^a + B/D^b.  Fitting all parameters at once is badly conditioned:
along the valley where a smaller exponent trades against a larger coefficient and a
lower constant the loss is nearly flat.  For *fixed exponents* the model is linear in
the coefficients c, so they follow from a small bounded least-squares problem (solved
exactly by enumerating its active sets), and only the k exponents are searched:
variable projection (Golub & Pereyra 1973).

Every array carries leading batch axes (bootstrap resample, candidate exponents), so a
thousand bootstrap refits are a few dozen numpy operations rather than a Python loop.
The bootstrap resample enters only through per-run weights w (multinomial counts).

The bounded linear step is analysis.linsolve; the searches over the exponents are
analysis.search.

The Huber-in-log-space inner problem is solved by iteratively reweighted Gauss-Newton:
linearise log(yhat) around the current prediction p (log yhat ~ log p + (yhat - p)/p),
weight each point by its Huber weight / p^2, and solve the weighted linear problem.
The first iteration (p = y, all Huber weights 1) is plain least squares on relative
residuals, which is what the coarse exponent grid uses.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.optimize import least_squares

from analysis.linsolve import solve_2x2_parts, solve_bounded
from analysis.search import brent_1d, newton_nd, pattern_search

# Predictions are floored here before taking logs (all-zero coefficients predict 0).
_TINY = 1e-12


def huber(r: np.ndarray, delta: float, abs_r: Optional[np.ndarray] = None) -> np.ndarray:
    """Huber loss: quadratic within +-delta, linear beyond (so outliers count linearly).
    `abs_r`: |r|, where the caller has it already."""
    a = np.abs(r) if abs_r is None else abs_r
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def basis(logz: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Power columns z_j^-e_j: logz (n, k), exponents (..., k) -> (..., n, k).
    (The constant column of the design is implicit.)"""
    return np.exp(-exponents[..., None, :] * logz)


def _normal_equations(powers, W, target):
    """M = X'WX and r = X'W target for the design X = [1, powers], summed over n.
    (Sums over the short last axis as a product with ones: a BLAS call, several times
    faster than numpy's reduction over 5-50 points.)"""
    k = powers.shape[-1]
    ones = np.ones(W.shape[-1])
    cols = [None] + [powers[..., j] for j in range(k)]  # None: the constant column
    Wc = [W if c is None else W * c for c in cols]
    M = np.empty(W.shape[:-1] + (k + 1, k + 1))
    r = np.empty(W.shape[:-1] + (k + 1,))
    for i in range(k + 1):
        r[..., i] = (Wc[i] * target) @ ones
        for j in range(i, k + 1):
            M[..., i, j] = M[..., j, i] = (Wc[i] if cols[j] is None else Wc[i] * cols[j]) @ ones
    return M, r


def predict(coef: np.ndarray, powers: np.ndarray) -> np.ndarray:
    """c0 + sum_j c_j powers_j: coef (..., 1 + k), powers (..., n, k) -> (..., n)."""
    out = coef[..., :1] + powers[..., 0] * coef[..., 1:2]
    for j in range(1, powers.shape[-1]):
        out = out + powers[..., j] * coef[..., j + 1:j + 2]
    return out


def inner_fit(powers, y, logy, w, ub, delta: float, iterations: int = 3,
              max_iterations: int = 10, rtol: float = 1e-8, lb: float = 0.0):
    """Best bounded coefficients for fixed exponents, Huber in log space.

    powers (..., n, k), y/logy (n,), w (..., n) broadcastable, ub (...); lb the constant's
    lower bound (a known floor), solved as c0 = lb + c0' with 0 <= c0' <= ub - lb.
    Returns (coefficients (..., 1 + k), exact Huber loss (...)).

    At least `iterations` reweighted Gauss-Newton steps: with every point within
    +-delta that is converged (loss within ~1e-12).  Where points lie beyond delta the
    Huber weights keep moving, so those rows (only) go on, up to `max_iterations`, until
    their loss changes by less than `rtol` (relative)."""
    iterations = min(iterations, max_iterations)
    n, k = powers.shape[-2:]
    batch = powers.shape[:-2]
    powers = powers.reshape(-1, n, k)
    R = powers.shape[0]
    w = np.broadcast_to(w, batch + (n,)).reshape(R, n)
    ub = np.maximum(np.broadcast_to(ub, batch).reshape(R) - lb, 0.0)  # a floor above ub pins c0 at it
    coef = np.zeros((R, k + 1))
    loss = np.full(R, np.inf)
    rows = np.arange(R)
    ones = np.ones(n)
    P, Wr, U = powers, w, ub
    P0 = P[..., 0] if k == 1 else None
    p = np.broadcast_to(y, (R, n))
    res = None  # all zero before the first step: Huber weights 1, target y
    counted = Wr > 0
    for it in range(max_iterations):
        if res is None:
            W = Wr / (p * p)
            target = p
        else:
            # The Huber weight delta / max(|res|, delta): exactly 1 within +-delta.
            W = Wr * (delta / np.maximum(np.abs(res), delta)) / (p * p)
            target = p * (1.0 - res)  # Gauss-Newton target for yhat
        if lb:
            target = target - lb  # the shifted constant c0' = c0 - lb
        if k == 1:  # one power law: the 2x2 system directly
            WP = W * P0
            c0, c1, _ = solve_2x2_parts(W @ ones, WP @ ones, (WP * P0) @ ones, (W * target) @ ones,
                                        (WP * target) @ ones, U, objective=False)
            p = np.maximum(lb + c0[:, None] + P0 * c1[:, None], _TINY)
            c = (c0 + lb, c1)
        else:
            M, r = _normal_equations(P, W, target)
            c, _ = solve_bounded(M, r, U)
            p = np.maximum(lb + predict(c, P), _TINY)
            c = (c[:, 0] + lb, *(c[:, j] for j in range(1, k + 1)))
        res = np.log(p) - logy
        if it + 1 < iterations:
            continue
        abs_res = np.abs(res)
        new_loss = (Wr * huber(res, delta, abs_res)) @ ones
        done = ~((abs_res > delta) & counted).any(axis=1) | (np.abs(new_loss - loss[rows]) <= rtol * np.abs(new_loss))
        for j, cj in enumerate(c):
            coef[rows, j] = cj
        loss[rows] = new_loss
        if done.all():
            break
        keep = ~done
        rows, P, Wr, U, p, res, counted = rows[keep], P[keep], Wr[keep], U[keep], p[keep], res[keep], counted[keep]
        if P0 is not None:
            P0 = P[..., 0]
    return coef.reshape(batch + (k + 1,)), loss.reshape(batch)


def floor_bound(logz: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The constant's upper bound for each row of `weights` (B, n): over the sizes (rows of
    `logz`) in the resample, the smallest of each size's largest NE.  A floor above every run
    of one size is contradicted by that size; a floor above one lucky seed's run, with the
    other seeds of its size above it, is seed noise (with one run a size the rules agree)."""
    logz = np.asarray(logz, float).reshape(len(y), -1)
    _, group = np.unique(logz, axis=0, return_inverse=True)
    group = group.ravel()
    w = np.atleast_2d(np.asarray(weights, float))
    largest = np.full((w.shape[0], group.max() + 1), -np.inf)
    for g in range(group.max() + 1):
        members = group == g
        largest[:, g] = np.where(w[:, members] > 0, y[members], -np.inf).max(axis=1)
    return np.where(np.isfinite(largest), largest, np.inf).min(axis=1)


def polish(logz: np.ndarray, y: np.ndarray, delta: float, exponent_bounds: tuple[float, float],
           starts: list[tuple[np.ndarray, np.ndarray]], lb: float = 0.0
           ) -> tuple[Optional[np.ndarray], Optional[np.ndarray], float]:
    """Refine (coefficients, exponents) with scipy's bounded trust-region least squares
    (Huber loss on log residuals, all parameters at once) from each start; the best
    (coef, exponents, loss), or (None, None, inf) if every start fails.

    The variable-projection optimum is already within the search tolerance; this takes
    it to full precision for the reported point estimate."""
    logz = np.asarray(logz, float).reshape(len(y), -1)
    k = logz.shape[1]
    logy = np.log(y)

    def unpack(t):
        return t[:k + 1], t[k + 1:]

    def residuals(t):
        c, e = unpack(t)
        powers = np.exp(-e * logz)
        return np.log(np.maximum(c[0] + powers @ c[1:], _TINY)) - logy

    def jac(t):
        c, e = unpack(t)
        powers = np.exp(-e * logz)
        p = np.maximum(c[0] + powers @ c[1:], _TINY)
        return np.concatenate([np.ones((len(y), 1)), powers, -c[1:] * logz * powers], axis=1) / p[:, None]

    lower = np.array([lb] + [0.0] * k + [exponent_bounds[0]] * k)
    upper = np.array([max(floor_bound(logz, y, np.ones(len(y)))[0], lb * (1 + 1e-12) + 1e-300)]
                     + [np.inf] * k + [exponent_bounds[1]] * k)
    best = (None, None, np.inf)
    for coef, exps in starts:
        t0 = np.clip(np.concatenate([coef, exps]), lower, upper)
        try:
            r = least_squares(residuals, t0, jac=jac, bounds=(lower, upper), loss="huber",
                              f_scale=delta, method="trf", x_scale="jac", max_nfev=200,
                              ftol=1e-12, xtol=1e-12, gtol=1e-12)
        except (ValueError, np.linalg.LinAlgError):
            continue
        loss = float(huber(residuals(r.x), delta).sum())
        if np.isfinite(loss) and loss < best[2]:
            best = (*unpack(r.x), loss)
    return best


@dataclass
class BatchFit:
    """Fits of one model to B weightings (bootstrap resamples) of the same points."""

    coef: np.ndarray  # (B, 1 + k): constant, then one coefficient per power term
    exponents: np.ndarray  # (B, k)
    loss: np.ndarray  # (B,) Huber loss in log space at the optimum
    starts: np.ndarray  # (B, top, k) exponents of the best grid cells (for polishing)


def fit_batch(
    logz: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    *,
    delta: float,
    exponent_bounds: tuple[float, float],
    grid_size: int,
    inner_iterations: int = 3,
    tol_log_exponent: Optional[float] = None,
    top: int = 3,
    max_iterations: int = 60,
    lb: float = 0.0,
) -> BatchFit:
    """Fit y ~ c0 + sum_j c_j z_j^-e_j for every row of `weights` (B, n).

    Exponents: a log-spaced grid of `grid_size` values per term (the many starting
    points), least squares on relative residuals for every grid cell at once (one matrix
    product over the moments); the `top` best cells are scored by the exact Huber loss;
    the best is refined in log(exponent) (Brent for one exponent, Newton for several,
    a pattern search where those cannot) until the step is below `tol_log_exponent`:
    by default 1e-5 for one exponent (nearly free) and 1e-4 for several, both far
    below any bootstrap spread.  `lb` bounds the constant below (a known floor; it must
    not exceed any row's upper bound, see clamp_floor)."""
    logz = np.asarray(logz, float)
    if logz.ndim == 1:
        logz = logz[:, None]
    n, k = logz.shape
    if tol_log_exponent is None:
        tol_log_exponent = 1e-5 if k == 1 else 1e-4
    y = np.asarray(y, float)
    logy = np.log(y)
    w = np.atleast_2d(np.asarray(weights, float))
    B = w.shape[0]
    m = 1 + k
    ub = floor_bound(logz, y, w)  # gamma <= every size's largest NE, in the resample

    lo, hi = np.log(exponent_bounds[0]), np.log(exponent_bounds[1])
    axis_grid = np.linspace(lo, hi, grid_size)
    grid_u = np.array(list(itertools.product(axis_grid, repeat=k)))  # (G, k)
    G = len(grid_u)
    powers = basis(logz, np.exp(grid_u))  # (G, n, k)
    F = np.concatenate([np.ones(powers.shape[:-1] + (1,)), powers], axis=-1)  # (G, n, m)

    # Grid stage: relative least squares from moments, all resamples x cells in 2 matmuls.
    W = w / (y * y)
    Q = (F[..., :, None] * F[..., None, :]).transpose(1, 0, 2, 3).reshape(n, G * m * m)
    M = (W @ Q).reshape(B, G, m, m)
    R = ((W * (y - lb)) @ F.transpose(1, 0, 2).reshape(n, G * m)).reshape(B, G, m)  # c0 = lb + c0'
    _, q = solve_bounded(M, R, np.maximum(ub[:, None] - lb, 0.0))
    top = min(top, G)
    starts_idx = np.argsort(q, axis=1)[:, :top]  # (B, top)
    starts_u = grid_u[starts_idx]  # (B, top, k)

    def evaluate(u, rows, max_inner=10):
        """(coef, loss) at exponents exp(u) (r, C, k) for the resamples `rows`."""
        return inner_fit(basis(logz, np.exp(u)), y, logy, w[rows][:, None, :], ub[rows][:, None],
                         delta, inner_iterations, max_iterations=max_inner, lb=lb)

    rows_all = np.arange(B)
    # Ranking the starting cells needs no converged Huber weights (far cells have many
    # points beyond delta and would iterate longest): a fixed number of steps.
    _, start_loss = evaluate(starts_u, rows_all, max_inner=inner_iterations + 2)
    best = np.argmin(start_loss, axis=1)
    u = starts_u[rows_all, best]  # (B, k)
    L = start_loss[rows_all, best]

    spacing = (hi - lo) / max(grid_size - 1, 1)
    if k == 1:
        # One exponent: Brent's safeguarded parabolic search between the best cell's grid
        # neighbours converges in ~8 evaluations; rows that end on an edge of that
        # interval (the optimum may lie beyond) go on to the pattern search.
        done = brent_1d(evaluate, u, L, spacing, lo, hi, tol_log_exponent, max_iterations)
        pattern_rows = np.nonzero(~done)[0]
    else:
        # Several exponents sit in a curved valley (they trade against the constant), where
        # a compass search crawls; a finite-difference Newton step follows the valley.
        pattern_rows = newton_nd(evaluate, u, L, lo, hi, tol_log_exponent, max_iterations)
        spacing = min(spacing, 0.1)  # those rows are already near an optimum (or a bound)
    pattern_search(evaluate, u, L, pattern_rows, spacing, lo, hi, tol_log_exponent, max_iterations)

    coef, loss = evaluate(u[:, None, :], rows_all)
    return BatchFit(coef=coef[:, 0], exponents=np.exp(u), loss=loss[:, 0], starts=np.exp(starts_u))

