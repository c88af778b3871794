"""Searches over the exponents of variable projection (analysis.varpro.fit_batch).

Each works in log(exponent), vectorised over rows (bootstrap resamples), in place on the
current exponents u (B, k) and losses L (B,), through `evaluate(u, rows)` -> (coef, loss):
Brent's method for one exponent, a finite-difference Newton search with a box trust
region for several, and a compass (pattern) search for the rows those leave.
"""
from __future__ import annotations

import numpy as np

# Relative loss decrease below which a search step counts as no progress.
_FLAT_LOSS = 1e-10


def pattern_search(evaluate, u, L, rows, step0, lo, hi, tol, max_iterations):
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


def brent_1d(evaluate, u, L, spacing, lo, hi, tol, max_iterations):
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


def newton_nd(evaluate, u, L, lo, hi, tol, max_iterations, h=0.02, radius0=1.0):
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
