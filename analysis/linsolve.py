"""The bounded linear least-squares step of variable projection.

For fixed exponents the model y ~ c0 + sum_j c_j z_j^-e_j is linear in c, so the best
coefficients minimise the convex quadratic c'Mc - 2 r'c over the box 0 <= c0 <= ub,
c_j >= 0.  Its minimum is the unconstrained minimum of one face of the box: solved
exactly by enumerating the active sets (closed forms for the one-law case, the hot path
of the bootstrap).  Every array carries leading batch axes.
"""
from __future__ import annotations

import itertools

import numpy as np

# Relative ridge on the normal equations: keeps exactly singular systems (all weight on
# one x value) finite without disturbing well-posed ones (condition numbers ~1e6 at the
# smallest exponents) beyond ~1e-8 relative.
_RIDGE = 1e-14


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
    """solve_bounded for m = 2 (one power law) in closed form (see solve_2x2)."""
    return solve_2x2(M[..., 0, 0], M[..., 0, 1], M[..., 1, 1], r[..., 0], r[..., 1], ub)


def solve_2x2(a, b, d, r0, r1, ub):
    """argmin over 0 <= c0 <= ub, c1 >= 0 of [c0 c1] [[a b] [b d]] [c0 c1]' - 2 (r0 c0 + r1 c1),
    from the entries as arrays.  Returns (c (..., 2), objective)."""
    c0, c1, q = solve_2x2_parts(a, b, d, r0, r1, ub)
    return np.stack([c0, c1], axis=-1), q


def solve_2x2_parts(a, b, d, r0, r1, ub, objective: bool = True):
    """solve_2x2 as (c0, c1, objective), the hot path of the bootstrap (stacking the two
    coefficients costs more than solving for them).  The interior (unconstrained) minimum
    is computed for every row; the faces c1 = 0, c0 = 0, c0 = ub (each clipped to its
    face) only for the rows where it is infeasible, which are few.  With objective=False
    the objective is None, and the interior minimum is checked for finiteness by its
    coefficients: for finite entries, short of overflow at |c| ~ 1e154, the same rows."""
    if np.ndim(a) == 0:  # one system: solved as a batch of one
        c0, c1, q = solve_2x2_parts(*(np.reshape(v, 1) for v in (a, b, d, r0, r1, ub)), objective=objective)
        return c0[0], c1[0], None if q is None else q[0]
    ridge = _RIDGE * (a + d) + 1e-300
    a_, d_ = a + ridge, d + ridge
    det = a_ * d_ - b * b
    c0 = (d_ * r0 - b * r1) / det
    c1 = (a_ * r1 - b * r0) / det
    if objective:
        q = a * c0 * c0 + 2 * b * c0 * c1 + d * c1 * c1 - 2 * r0 * c0 - 2 * r1 * c1
        finite = np.isfinite(q)
    else:
        q = None
        finite = np.isfinite(c0) & np.isfinite(c1)
    bad = np.nonzero(~((c0 >= 0) & (c0 <= ub) & (c1 >= 0) & finite))
    if bad[0].size:
        a, b, d, r0, r1, a_, d_, u = (v[bad] for v in (a, b, d, r0, r1, a_, d_, np.broadcast_to(ub, c0.shape)))
        f0, f1 = np.empty((3,) + a.shape), np.empty((3,) + a.shape)
        f0[0], f0[1], f0[2] = np.clip(r0 / a_, 0, u), 0.0, u + 0 * a
        f1[0], f1[1], f1[2] = 0.0, np.maximum(r1 / d_, 0), np.maximum((r1 - b * u) / d_, 0)
        fq = a * f0 * f0 + 2 * b * f0 * f1 + d * f1 * f1 - 2 * r0 * f0 - 2 * r1 * f1
        fq = np.where((f0 >= 0) & (f0 <= u) & (f1 >= 0) & np.isfinite(fq), fq, np.inf)
        i, cols = np.argmin(fq, axis=0), np.arange(fq.shape[1])
        c0, c1 = c0.copy(), c1.copy()
        c0[bad], c1[bad] = f0[i, cols], f1[i, cols]
        if objective:
            q = q.copy()
            q[bad] = fq[i, cols]
    return c0, c1, q


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

