"""Vectorised variable projection for sums of power laws plus a constant.

Model    y ~ c0 + sum_j c_j * z_j ** (-e_j),   z_j = x_j / x_ref_j  (dimensionless)
Loss     sum_i w_i * huber_delta(log yhat_i - log y_i)          (Huber in log space)
Bounds   0 <= c0 <= ub (the smallest y of the fit),  c_j >= 0,  e_lo <= e_j <= e_hi

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

# Predictions are floored here before taking logs (all-zero coefficients predict 0).
_TINY = 1e-12
# Relative ridge on the normal equations: keeps exactly singular systems (all weight on
# one x value) finite without disturbing well-posed ones (condition numbers ~1e6 at the
# smallest exponents) beyond ~1e-8 relative.
_RIDGE = 1e-14
# Relative loss decrease below which a search step counts as no progress.
_FLAT_LOSS = 1e-10


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Huber loss: quadratic within +-delta, linear beyond (so outliers count linearly)."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


def _faces(m: int) -> list[tuple[tuple[int, ...], str]]:
    """Active sets of the box c0 in [0, ub], c_j >= 0: (free indices, where c0 is fixed).

    The linear subproblem is a convex quadratic, so its bounded minimum is the
    unconstrained minimum of one face; the best feasible face minimum is the answer."""
    faces = []
    for c0 in ("free", "zero", "ub"):
        for free_rest in itertools.product((True, False), repeat=m - 1):
            free = ((0,) if c0 == "free" else ()) + tuple(j + 1 for j, f in enumerate(free_rest) if f)
            faces.append((free, c0))
    return faces


_FACES = {m: _faces(m) for m in (2, 3, 4)}


def _solve_small(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Batched solve of A x = b: closed forms (Cramer) up to 3x3, which beat a batched
    LAPACK call on these tiny systems several times over."""
    f = A.shape[-1]
    ridge = _RIDGE * np.trace(A, axis1=-2, axis2=-1) / f + 1e-300
    if f == 1:
        return b / (A[..., 0, 0] + ridge)[..., None]
    if f == 2:
        a, bb, d = A[..., 0, 0] + ridge, A[..., 0, 1], A[..., 1, 1] + ridge
        det = a * d - bb * bb
        x0 = (d * b[..., 0] - bb * b[..., 1]) / det
        x1 = (a * b[..., 1] - bb * b[..., 0]) / det
        return np.stack([x0, x1], axis=-1)
    A = A + ridge[..., None, None] * np.eye(f)
    if f == 3:
        # Cofactors of a general 3x3 matrix; x = adj(A) b / det(A).
        a00, a01, a02 = A[..., 0, 0], A[..., 0, 1], A[..., 0, 2]
        a10, a11, a12 = A[..., 1, 0], A[..., 1, 1], A[..., 1, 2]
        a20, a21, a22 = A[..., 2, 0], A[..., 2, 1], A[..., 2, 2]
        c00, c01, c02 = a11 * a22 - a12 * a21, a12 * a20 - a10 * a22, a10 * a21 - a11 * a20
        det = a00 * c00 + a01 * c01 + a02 * c02
        b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
        x0 = (c00 * b0 + (a02 * a21 - a01 * a22) * b1 + (a01 * a12 - a02 * a11) * b2) / det
        x1 = (c01 * b0 + (a00 * a22 - a02 * a20) * b1 + (a02 * a10 - a00 * a12) * b2) / det
        x2 = (c02 * b0 + (a01 * a20 - a00 * a21) * b1 + (a00 * a11 - a01 * a10) * b2) / det
        return np.stack([x0, x1, x2], axis=-1)
    return np.linalg.solve(A, b[..., None])[..., 0]


def _objective(M, r, c):
    """c'Mc - 2 r'c, written out: numpy reductions over an axis of length 3 are slow."""
    m = c.shape[-1]
    q = np.zeros(c.shape[:-1])
    for i in range(m):
        Mc_i = M[..., i, 0] * c[..., 0]
        for j in range(1, m):
            Mc_i = Mc_i + M[..., i, j] * c[..., j]
        q += c[..., i] * (Mc_i - 2.0 * r[..., i])
    return q


def _feasible(c, ub):
    return (c[..., 0] >= 0) & (c[..., 0] <= ub) & np.all(c[..., 1:] >= 0, axis=-1)


def _solve_bounded_2(M, r, ub):
    """solve_bounded for m = 2 (one power law) in closed form: the hot path of the
    bootstrap, about 3x faster than the generic enumeration."""
    a, b, d = M[..., 0, 0], M[..., 0, 1], M[..., 1, 1]
    r0, r1 = r[..., 0], r[..., 1]
    ridge = _RIDGE * (a + d) + 1e-300
    a_, d_ = a + ridge, d + ridge
    det = a_ * d_ - b * b
    # Candidates: interior, then the faces c1 = 0, c0 = 0, c0 = ub (each clipped to its face).
    c0 = np.stack([(d_ * r0 - b * r1) / det, np.clip(r0 / a_, 0, ub), np.zeros_like(a), ub + 0 * a])
    c1 = np.stack([(a_ * r1 - b * r0) / det, np.zeros_like(a),
                   np.maximum(r1 / d_, 0), np.maximum((r1 - b * ub) / d_, 0)])
    q = a * c0 * c0 + 2 * b * c0 * c1 + d * c1 * c1 - 2 * r0 * c0 - 2 * r1 * c1
    ok = (c0 >= 0) & (c0 <= ub) & (c1 >= 0) & np.isfinite(q)
    q = np.where(ok, q, np.inf)
    i = np.argmin(q, axis=0)[None]
    c = np.stack([np.take_along_axis(c0, i, 0)[0], np.take_along_axis(c1, i, 0)[0]], axis=-1)
    return c, np.take_along_axis(q, i, 0)[0]


def solve_bounded(M: np.ndarray, r: np.ndarray, ub: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """argmin_c  c'Mc - 2 r'c  subject to 0 <= c0 <= ub, c_j >= 0.

    M: (..., m, m) symmetric PSD, r: (..., m), ub: (...).  Returns (c, objective)."""
    m = M.shape[-1]
    shape = M.shape[:-2]
    ub = np.broadcast_to(ub, shape)
    if m == 2:
        return _solve_bounded_2(M, r, ub)
    Mf, rf, ubf = M.reshape(-1, m, m), r.reshape(-1, m), ub.reshape(-1)
    # Mostly the unconstrained minimum is feasible; enumerate faces only where it is not.
    c = _solve_small(Mf, rf)
    q = _objective(Mf, rf, c)
    bad = np.nonzero(~(_feasible(c, ubf) & np.isfinite(q)))[0]
    if bad.size:
        Mb, rb, ubb = Mf[bad], rf[bad], ubf[bad]
        best_c = np.zeros(rb.shape)
        best_q = np.full(len(bad), np.inf)
        for free, c0 in _FACES[m][1:]:  # face 0 (all free) was tried above
            cc = np.zeros(rb.shape)
            if c0 == "ub":
                cc[:, 0] = ubb
            if free:
                idx = np.array(free)
                A = Mb[:, idx[:, None], idx[None, :]]
                rhs = rb[:, idx] - Mb[:, idx, 0] * cc[:, :1]  # only c0 can be fixed non-zero
                cc[:, idx] = _solve_small(A, rhs)
            qq = _objective(Mb, rb, cc)
            better = _feasible(cc, ubb) & np.isfinite(qq) & (qq < best_q)
            best_q = np.where(better, qq, best_q)
            best_c = np.where(better[:, None], cc, best_c)
        c[bad], q[bad] = best_c, best_q
    return c.reshape(shape + (m,)), q.reshape(shape)


def basis(logz: np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """Power columns z_j^-e_j: logz (n, k), exponents (..., k) -> (..., n, k).
    (The constant column of the design is implicit.)"""
    return np.exp(-exponents[..., None, :] * logz)


def _normal_equations(powers, W, target):
    """M = X'WX and r = X'W target for the design X = [1, powers], summed over n."""
    k = powers.shape[-1]
    cols = [None] + [powers[..., j] for j in range(k)]  # None: the constant column
    Wc = [W if c is None else W * c for c in cols]
    M = np.empty(W.shape[:-1] + (k + 1, k + 1))
    r = np.empty(W.shape[:-1] + (k + 1,))
    for i in range(k + 1):
        r[..., i] = (Wc[i] * target).sum(-1)
        for j in range(i, k + 1):
            M[..., i, j] = M[..., j, i] = (Wc[i] if cols[j] is None else Wc[i] * cols[j]).sum(-1)
    return M, r


def predict(coef: np.ndarray, powers: np.ndarray) -> np.ndarray:
    """c0 + sum_j c_j powers_j: coef (..., 1 + k), powers (..., n, k) -> (..., n)."""
    out = coef[..., :1] + powers[..., 0] * coef[..., 1:2]
    for j in range(1, powers.shape[-1]):
        out = out + powers[..., j] * coef[..., j + 1:j + 2]
    return out


def inner_fit(powers, y, logy, w, ub, delta: float, iterations: int = 3,
              max_iterations: int = 10, rtol: float = 1e-8):
    """Best bounded coefficients for fixed exponents, Huber in log space.

    powers (..., n, k), y/logy (n,), w (..., n) broadcastable, ub (...).
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
    ub = np.broadcast_to(ub, batch).reshape(R)
    coef = np.zeros((R, k + 1))
    loss = np.full(R, np.inf)
    rows = np.arange(R)
    P, Wr, U = powers, w, ub
    p = np.broadcast_to(y, (R, n))
    res = np.zeros((R, n))
    for it in range(max_iterations):
        abs_res = np.abs(res)
        huber_weight = np.where(abs_res <= delta, 1.0, delta / np.maximum(abs_res, delta))
        W = Wr * huber_weight / (p * p)
        target = p * (1.0 - res)  # Gauss-Newton target for yhat
        M, r = _normal_equations(P, W, target)
        c, _ = solve_bounded(M, r, U)
        p = np.maximum(predict(c, P), _TINY)
        res = np.log(p) - logy
        if it + 1 < iterations:
            continue
        new_loss = (Wr * huber(res, delta)).sum(-1)
        done = (~np.any((np.abs(res) > delta) & (Wr > 0), axis=1)
                | (np.abs(new_loss - loss[rows]) <= rtol * np.abs(new_loss)))
        coef[rows], loss[rows] = c, new_loss
        if done.all():
            break
        keep = ~done
        rows, P, Wr, U, p, res = rows[keep], P[keep], Wr[keep], U[keep], p[keep], res[keep]
    return coef.reshape(batch + (k + 1,)), loss.reshape(batch)


def polish(logz: np.ndarray, y: np.ndarray, delta: float, exponent_bounds: tuple[float, float],
           starts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Optional[np.ndarray], Optional[np.ndarray], float]:
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

    lower = np.array([0.0] + [0.0] * k + [exponent_bounds[0]] * k)
    upper = np.array([y.min()] + [np.inf] * k + [exponent_bounds[1]] * k)
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
) -> BatchFit:
    """Fit y ~ c0 + sum_j c_j z_j^-e_j for every row of `weights` (B, n).

    Exponents: a log-spaced grid of `grid_size` values per term (the many starting
    points), least squares on relative residuals for every grid cell at once (one matrix
    product over the moments); the `top` best cells are scored by the exact Huber loss;
    the best is refined in log(exponent) (Brent for one exponent, Newton for several,
    a pattern search where those cannot) until the step is below `tol_log_exponent`:
    by default 1e-5 for one exponent (nearly free) and 1e-4 for several, both far
    below any bootstrap spread."""
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
    ub = np.where(w > 0, y, np.inf).min(axis=1)  # gamma <= smallest NE in the resample

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
    R = ((W * y) @ F.transpose(1, 0, 2).reshape(n, G * m)).reshape(B, G, m)
    _, q = solve_bounded(M, R, ub[:, None])
    top = min(top, G)
    starts_idx = np.argsort(q, axis=1)[:, :top]  # (B, top)
    starts_u = grid_u[starts_idx]  # (B, top, k)

    def evaluate(u, rows, max_inner=10):
        """(coef, loss) at exponents exp(u) (r, C, k) for the resamples `rows`."""
        return inner_fit(basis(logz, np.exp(u)), y, logy, w[rows][:, None, :], ub[rows][:, None],
                         delta, inner_iterations, max_iterations=max_inner)

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
        done = _brent_1d(evaluate, u, L, spacing, lo, hi, tol_log_exponent, max_iterations)
        pattern_rows = np.nonzero(~done)[0]
    else:
        # Several exponents sit in a curved valley (they trade against the constant), where
        # a compass search crawls; a finite-difference Newton step follows the valley.
        pattern_rows = _newton_nd(evaluate, u, L, lo, hi, tol_log_exponent, max_iterations)
        spacing = min(spacing, 0.1)  # those rows are already near an optimum (or a bound)
    _pattern_search(evaluate, u, L, pattern_rows, spacing, lo, hi, tol_log_exponent, max_iterations)

    coef, loss = evaluate(u[:, None, :], rows_all)
    return BatchFit(coef=coef[:, 0], exponents=np.exp(u), loss=loss[:, 0], starts=np.exp(starts_u))


def _pattern_search(evaluate, u, L, rows, step0, lo, hi, tol, max_iterations):
    """Compass search in log(exponent) for `rows`, in place on u (B, k) and L (B,):
    try +-step along each axis, move to the best improvement, else halve the step."""
    k = u.shape[1]
    step = np.zeros(len(u))
    step[rows] = step0
    directions = np.concatenate([np.eye(k), -np.eye(k)])  # (2k, k)
    for _ in range(max_iterations):
        rows = np.nonzero(step > tol)[0]
        if rows.size == 0:
            break
        cand = np.clip(u[rows, None, :] + step[rows, None, None] * directions, lo, hi)
        _, cand_loss = evaluate(cand, rows)
        j = np.argmin(cand_loss, axis=1)
        cand_best = cand_loss[np.arange(rows.size), j]
        improved = cand_best < L[rows] - _FLAT_LOSS * np.abs(L[rows])
        moved = rows[improved]
        u[moved] = cand[np.nonzero(improved)[0], j[improved]]
        L[moved] = cand_best[improved]
        step[rows[~improved]] *= 0.5


_GOLDEN = 0.3819660112501051


def _brent_1d(evaluate, u, L, spacing, lo, hi, tol, max_iterations):
    """Brent's minimisation (as in Numerical Recipes' `brent`), vectorised over rows,
    in log(exponent) on [u - spacing, u + spacing] (the grid neighbours), in place.

    Each step is the vertex of the parabola through the three best points so far, or a
    golden-section step when that vertex leaves the interval or the steps stop halving.
    Returns the rows that converged inside the interval; a row that ends on an edge of
    it (the optimum may lie beyond) is left to the pattern search."""
    x = u[:, 0].copy()
    a, b = np.maximum(x - spacing, lo), np.minimum(x + spacing, hi)
    w, v = x.copy(), x.copy()
    fx = L.copy()
    fw, fv = fx.copy(), fx.copy()
    d = np.zeros_like(x)
    e = np.zeros_like(x)
    tol1 = 0.5 * tol
    active = np.ones(len(x), bool)
    for _ in range(max_iterations):
        xm = 0.5 * (a + b)
        active &= np.abs(x - xm) > 2 * tol1 - 0.5 * (b - a)
        rows = np.nonzero(active)[0]
        if rows.size == 0:
            break
        ar, br, xr, wr, vr = a[rows], b[rows], x[rows], w[rows], v[rows]
        fxr, fwr, fvr, dr, er, xmr = fx[rows], fw[rows], fv[rows], d[rows], e[rows], xm[rows]
        # Parabola through (x, w, v).
        r = (xr - wr) * (fxr - fvr)
        q = (xr - vr) * (fxr - fwr)
        p = (xr - vr) * q - (xr - wr) * r
        q = 2.0 * (q - r)
        p = np.where(q > 0, -p, p)
        q = np.abs(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            para_d = p / q
        try_para = np.abs(er) > tol1
        bad = (~try_para | (np.abs(p) >= np.abs(0.5 * q * er)) | (p <= q * (ar - xr))
               | (p >= q * (br - xr)) | ~np.isfinite(para_d))
        golden_e = np.where(xr >= xmr, ar - xr, br - xr)
        new_e = np.where(bad, golden_e, dr)
        new_d = np.where(bad, _GOLDEN * golden_e, para_d)
        u_try = xr + new_d
        near_edge = ~bad & (((u_try - ar) < 2 * tol1) | ((br - u_try) < 2 * tol1))
        new_d = np.where(near_edge, np.copysign(tol1, xmr - xr), new_d)
        step = np.where(np.abs(new_d) >= tol1, new_d, np.copysign(tol1, new_d))
        ut = xr + step
        _, fu = evaluate(ut[:, None, None], rows)
        fu = fu[:, 0]
        d[rows], e[rows] = new_d, new_e
        better = fu <= fxr
        # Shrink the interval, then shift the three best points.
        a[rows] = np.where(better, np.where(ut >= xr, xr, ar), np.where(ut < xr, ut, ar))
        b[rows] = np.where(better, np.where(ut >= xr, br, xr), np.where(ut < xr, br, ut))
        to_w = ~better & ((fu <= fwr) | (wr == xr))
        to_v = ~better & ~to_w & ((fu <= fvr) | (vr == xr) | (vr == wr))
        v[rows] = np.where(better | to_w, wr, np.where(to_v, ut, vr))
        fv[rows] = np.where(better | to_w, fwr, np.where(to_v, fu, fvr))
        w[rows] = np.where(better, xr, np.where(to_w, ut, wr))
        fw[rows] = np.where(better, fxr, np.where(to_w, fu, fwr))
        x[rows] = np.where(better, ut, xr)
        fx[rows] = np.where(better, fu, fxr)
    start = u[:, 0]
    on_edge = ((np.abs(x - (start - spacing)) < 4 * tol) & (start - spacing > lo)) | \
              ((np.abs(x - (start + spacing)) < 4 * tol) & (start + spacing < hi))
    improved = fx <= L
    u[improved, 0] = x[improved]
    L[improved] = fx[improved]
    return ~on_edge & ~active


def _newton_nd(evaluate, u, L, lo, hi, tol, max_iterations, h=0.02, radius0=1.0):
    """Newton in log(exponent) with a central finite-difference gradient and Hessian
    (2k + k(k-1) stencil points, spacing h) and a box trust region, in place on u (B, k)
    and L (B,).

    The box (each coordinate's step clipped separately) matters: one exponent is often
    nearly unidentified (a flat direction), and clipping the step's *norm* would let that
    direction starve the others.  Each iteration tries the Newton step, a quarter of it
    and the per-coordinate Newton step, and keeps the best point seen (stencil included),
    so a poor quadratic model only costs time.  (A Gauss-Newton Hessian from the
    variable-projection Jacobian needs one evaluation instead of seven, but it misjudges
    the nearly flat directions and was measured slower to converge here.)  Returns the
    rows left to the pattern search: those within a stencil of a bound, or not converged."""
    B, k = u.shape
    eye = np.eye(k)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    diag_dirs = np.array([eye[i] + eye[j] for i, j in pairs]).reshape(-1, k)
    dirs = np.concatenate([eye, -eye, diag_dirs, -diag_dirs])
    P = len(pairs)
    active = np.ones(B, bool)
    leftover = np.zeros(B, bool)
    radius = np.full(B, radius0)
    for _ in range(max_iterations):
        near_bound = active & ~(np.all(u - lo >= 2 * h, axis=1) & np.all(hi - u >= 2 * h, axis=1))
        leftover |= near_bound
        active &= ~near_bound
        rows = np.nonzero(active)[0]
        if rows.size == 0:
            break
        ur, f0, rad = u[rows], L[rows], radius[rows][:, None]
        stencil = ur[:, None, :] + h * dirs
        _, fs = evaluate(stencil, rows)
        fp, fm = fs[:, :k], fs[:, k:2 * k]
        g = (fp - fm) / (2 * h)
        H = np.zeros((rows.size, k, k))
        H[:, np.arange(k), np.arange(k)] = (fp - 2 * f0[:, None] + fm) / h ** 2
        for p, (i, j) in enumerate(pairs):
            fpp, fmm = fs[:, 2 * k + p], fs[:, 2 * k + P + p]
            H[:, i, j] = H[:, j, i] = (fpp + fmm - fp[:, i] - fm[:, i] - fp[:, j] - fm[:, j]
                                       + 2 * f0) / (2 * h * h)
        # Newton where the model is convex, else a steepest-descent step to the box edge.
        eig = np.linalg.eigvalsh(H)
        convex = eig[:, 0] > 1e-9 * np.maximum(np.abs(eig[:, -1]), 1e-300)
        newton = np.zeros_like(ur)
        if convex.any():
            newton[convex] = -np.linalg.solve(H[convex], g[convex][..., None])[..., 0]
        gmax = np.abs(g).max(axis=1, keepdims=True)
        descent = -g / np.maximum(gmax, 1e-300) * rad
        newton = np.where(convex[:, None], newton, descent)
        hd = np.diagonal(H, axis1=1, axis2=2)
        per_coord = np.where(hd > 0, -g / np.where(hd > 0, hd, 1.0), -np.sign(g) * rad)
        steps = np.clip(np.stack([newton, 0.25 * newton, per_coord], axis=1), -rad[:, None], rad[:, None])
        trials = np.clip(ur[:, None, :] + steps, lo, hi)
        _, ft = evaluate(trials, rows)
        cand = np.concatenate([stencil, trials], axis=1)
        fc = np.concatenate([fs, ft], axis=1)
        j = np.argmin(fc, axis=1)
        best = fc[np.arange(rows.size), j]
        improved = best < f0 - _FLAT_LOSS * np.abs(f0)
        u[rows] = np.where(improved[:, None], cand[np.arange(rows.size), j], ur)
        L[rows] = np.where(improved, best, f0)
        # Widen the box after a successful full step, shrink it when no trial helped.
        trial_won = improved & (j >= len(dirs))
        full_won = improved & (j == len(dirs))
        radius[rows] = np.where(full_won, np.minimum(2 * radius[rows], 4.0),
                                np.where(trial_won, radius[rows], radius[rows] / 4))
        newton_size = np.abs(np.clip(newton, -rad, rad)).max(axis=1)
        converged = ((convex & (newton_size < tol) & trial_won | ~improved & (newton_size < tol))
                     | (radius[rows] < tol) | ~improved & convex & (newton_size < h))
        active[rows[converged]] = False
    leftover |= active
    return np.nonzero(leftover)[0]
