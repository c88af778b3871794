"""Resampling for the fits' intervals: whole seeds when there are several, else runs.

Under one-pass training the runs of one seed at several data sizes (and the intermediate
evals of one run) share their noise: one trajectory.  Resampling them as independent
points says nothing about the spread between seeds.  So with two or more seeds a
resample draws S seeds with replacement from the S seeds of the series and keeps each
drawn seed's points together (a block bootstrap); with one seed it draws runs, which
measures the noise of the fit only.

S seeds have only C(2S - 1, S) distinct resamples (462 for 6 seeds), each with a known
multinomial probability.  Up to EXACT_MAX_RESAMPLES of them, every one is fitted once and
the intervals are weighted percentiles: the exact bootstrap distribution, with no Monte
Carlo error (random draws of a few hundred atoms move a 2.5% tail visibly with the seed).
Beyond that, and for runs, `n_resamples` random draws are used.

S seeds are few independent units: their bootstrap variance is (S - 1)/S of the usual
estimate and rests on S - 1 degrees of freedom, so percentile intervals from 2-10 seeds
are too short.  Each interval is therefore widened about the point estimate by
    c_S = t_{S-1}(0.975) / z(0.975) * sqrt(S / (S - 1))
(c_2 = 9.2, c_3 = 2.7, c_4 = 1.9, c_10 = 1.2, -> 1) and clipped to the parameter's
bounds: the honest price of few seeds.  Scale parameters (alpha, beta) are widened in
log space, so a skewed interval of a positive quantity stays positive; everything else
linearly.  Run resampling is not widened.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy.special import gammaln, stdtrit

from analysis.errors import FitError

# A bootstrap resample needs four distinct x values: with three, a three-parameter law
# interpolates them exactly and says nothing.
MIN_DISTINCT_RESAMPLE = 4
# Seed resamples are enumerated exactly up to this many (7 seeds: 1716; 8 seeds: 6435 are drawn).
EXACT_MAX_RESAMPLES = 2000
_Z975 = 1.959963984540054


def seed_scale(n_seeds: int) -> float:
    """c_S above (1 for fewer than two seeds)."""
    if n_seeds < 2:
        return 1.0
    return float(stdtrit(n_seeds - 1, 0.975) / _Z975 * np.sqrt(n_seeds / (n_seeds - 1)))


@dataclass
class Resampling:
    """How a fit's resamples were drawn and how its intervals are read off them."""

    kind: str = "runs"  # "runs" or "seeds"
    n_seeds: int = 1
    n_seeds_full: int = 1  # seeds that cover at least half of the series' x values
    scale: float = 1.0
    blocks: Optional[np.ndarray] = None  # block (seed) index per point, for kind "seeds"
    # Probability of each resample (row of the fit's draws) when the resamples are the exact
    # enumeration; None for random draws (each draw weighs the same).
    probabilities: Optional[np.ndarray] = None

    @property
    def description(self) -> str:
        if self.kind == "seeds":
            part = "" if self.n_seeds_full == self.n_seeds else f", {self.n_seeds_full} of them over most sizes"
            return (f"whole seeds resampled ({self.n_seeds} seeds{part}; intervals widened x{self.scale:.2g} "
                    f"for resting on {self.n_seeds_full} seeds)")
        return "fit noise only (one seed: runs resampled, seed-to-seed spread not included)"

    @property
    def exact(self) -> bool:
        return self.probabilities is not None

    def weights_of(self, draws: np.ndarray, mask: Optional[np.ndarray] = None) -> Optional[np.ndarray]:
        """The resample probabilities that go with `draws` (one per row; `mask`: the rows of
        all resamples that `draws` holds), None if the draws are equally likely."""
        if self.probabilities is None:
            return None
        p = self.probabilities if mask is None else self.probabilities[mask]
        if len(draws) != len(p):
            raise ValueError(f"{len(draws)} draws for {len(p)} enumerated resamples")
        return p

    def mean(self, values: np.ndarray) -> float:
        """The bootstrap expectation of per-resample values (e.g. the share of draws that ...)."""
        w = self.weights_of(values)
        return float(np.mean(values) if w is None else np.sum(w * values) / np.sum(w))

    def quantiles(self, draws: np.ndarray, qs) -> np.ndarray:
        """Quantiles (in [0, 1]) of the bootstrap distribution of per-resample values
        (inverted CDF; exact for an enumeration, per column for 2-D draws)."""
        return weighted_quantiles(draws, qs, self.weights_of(draws))

    def interval(self, draws: np.ndarray, value: float, lo_bound: float = -np.inf,
                 hi_bound: float = np.inf, log: bool = False, mask: Optional[np.ndarray] = None) -> list[float]:
        lo, hi = percentile_interval(draws, weights=self.weights_of(draws, mask))
        if self.scale == 1.0:
            return [lo, hi]
        if log and value > 0 and lo > 0:
            lo = value * (lo / value) ** self.scale
            hi = value * (hi / value) ** self.scale
        else:
            lo = value - self.scale * (value - lo)
            hi = value + self.scale * (hi - value)
        return [float(min(max(lo, lo_bound), hi_bound)), float(max(min(hi, hi_bound), lo_bound))]

    def band(self, draws: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise 95% band of a curve from its draws (B, m) about its values (m,)."""
        lo, hi = self.quantiles(draws, [0.025, 0.975])
        if self.scale != 1.0:
            lo, hi = values - self.scale * (values - lo), values + self.scale * (hi - values)
        return lo, hi

    def record(self) -> dict:
        return {"kind": self.kind, "n_seeds": self.n_seeds, "n_seeds_full": self.n_seeds_full,
                "interval_scale": self.scale, "exact": self.exact, "description": self.description}


def resampling_for(blocks: Optional[np.ndarray], n_points: int, x: Optional[np.ndarray] = None) -> Resampling:
    """Seed blocks when `blocks` holds two or more seeds, else runs.

    The widening counts only the seeds that cover at least half of the distinct x values
    (with `x`): a seed run at one point only (e.g. an extra seed of the base model in a
    width sweep) says little about how a curve varies between seeds.  With fewer than two
    such seeds the runs are resampled (fit noise only)."""
    if blocks is None:
        return Resampling()
    blocks = np.asarray(blocks)
    n_blocks = len(np.unique(blocks))
    if n_blocks < 2 or n_blocks == n_points:  # one seed, or every run its own block
        return Resampling()
    _, inverse = np.unique(blocks, return_inverse=True)
    full = n_blocks
    if x is not None:
        x = np.asarray(x)
        half = 0.5 * len(np.unique(x))
        full = sum(len(np.unique(x[inverse == b])) >= half for b in range(n_blocks))
        if full < 2:
            return Resampling()
    return Resampling(kind="seeds", n_seeds=n_blocks, n_seeds_full=full, scale=seed_scale(full), blocks=inverse)


def weighted_quantiles(draws: np.ndarray, qs, weights: Optional[np.ndarray] = None) -> np.ndarray:
    """Quantiles qs (in [0, 1]) of draws (n,) or per column of (n, m); `weights` the
    probability of each row.  With weights, the inverted CDF (the smallest draw whose
    cumulative weight reaches q): for an enumeration, the exact quantile of its
    distribution.  Without, numpy's linear interpolation of equally likely draws."""
    draws = np.asarray(draws, float)
    qs = np.atleast_1d(np.asarray(qs, float))
    if weights is None:
        return np.percentile(draws, 100.0 * qs, axis=0)
    w = np.asarray(weights, float) / np.sum(weights)
    order = np.argsort(draws, axis=0, kind="stable")
    ordered = np.take_along_axis(draws, order, 0)
    cum = np.cumsum(w[order], axis=0)
    idx = np.stack([np.argmax(cum >= q * (1 - 1e-12), axis=0) for q in qs])
    return np.take_along_axis(ordered, idx, 0) if draws.ndim > 1 else ordered[idx]


def percentile_interval(draws: np.ndarray, level: float = 0.95,
                        weights: Optional[np.ndarray] = None) -> list[float]:
    """The bootstrap percentile interval (Efron): the middle `level` of the draws."""
    tail = 0.5 * (1.0 - level)
    lo, hi = weighted_quantiles(draws, [tail, 1.0 - tail], weights)
    return [float(lo), float(hi)]


@lru_cache(maxsize=16)
def _compositions(S: int) -> tuple[np.ndarray, np.ndarray]:
    """Every way of drawing S seeds from S with replacement, as counts (M, S), and the
    multinomial probability of each, S! / prod(k_i!) / S^S."""
    rows = []

    def rec(prefix: list[int], left: int, slots: int) -> None:
        if slots == 1:
            rows.append(prefix + [left])
            return
        for k in range(left, -1, -1):
            rec(prefix + [k], left - k, slots - 1)

    rec([], S, S)
    counts = np.array(rows, dtype=float)
    logp = gammaln(S + 1) - gammaln(counts + 1).sum(axis=1) - S * math.log(S)
    return counts, np.exp(logp)


def n_exact_resamples(S: int) -> int:
    return math.comb(2 * S - 1, S)


def bootstrap_weights(x: np.ndarray, n_resamples: int, rng: np.random.Generator,
                      min_distinct: int = MIN_DISTINCT_RESAMPLE,
                      groups: Optional[list[np.ndarray]] = None,
                      blocks: Optional[np.ndarray] = None, exact: bool = True,
                      fit_mask: Optional[np.ndarray] = None) -> tuple[np.ndarray, int, Optional[np.ndarray]]:
    """Resampling weights (B, n): each row counts how often each point is drawn; the number
    of rows rejected; and the probability of each row (None: random draws, equally likely).

    Without `blocks`, a multinomial draw of n runs; with `blocks` (0..S-1 per point), S
    draws of whole blocks, each point weighted by how often its block was drawn -- every
    distinct one once, with its probability, when there are at most EXACT_MAX_RESAMPLES
    (and `exact`).  Rows with fewer than `min_distinct` distinct values of x (or of each
    array in `groups`) cannot determine the law; they are redrawn, or left out of the
    enumeration (a conditional bootstrap), and their number returned.  `fit_mask`: only
    these points are fitted (e.g. a prefix of the sizes), so only they count as distinct."""
    n = len(x)
    keys = [x] if groups is None else groups
    onehots = [(np.unique(k, return_inverse=True)[1][:, None] == np.arange(len(np.unique(k)))).astype(float)
               for k in keys]
    if fit_mask is not None:
        for oh in onehots:
            oh[~np.asarray(fit_mask, bool)] = 0.0

    def valid(w: np.ndarray) -> np.ndarray:
        ok = np.ones(len(w), bool)
        for oh in onehots:
            ok &= ((w @ oh) > 0).sum(axis=1) >= min_distinct
        return ok

    if blocks is not None and exact and n_exact_resamples(int(np.max(blocks)) + 1) <= EXACT_MAX_RESAMPLES:
        counts, prob = _compositions(int(np.max(blocks)) + 1)
        w = counts[:, np.asarray(blocks)]
        ok = valid(w)
        if not ok.any():
            raise FitError(f"bootstrap: no resample of the seeds has {min_distinct} distinct x values")
        return w[ok], int((~ok).sum()), prob[ok] / prob[ok].sum()
    if blocks is None:
        def draw(m: int) -> np.ndarray:
            return rng.multinomial(n, np.full(n, 1.0 / n), size=m).astype(float)
    else:
        blocks = np.asarray(blocks)
        S = int(blocks.max()) + 1

        def draw(m: int) -> np.ndarray:
            return rng.multinomial(S, np.full(S, 1.0 / S), size=m)[:, blocks].astype(float)
    w = draw(n_resamples)
    rejected = 0
    for _ in range(100):
        bad = ~valid(w)
        if not bad.any():
            break
        rejected += int(bad.sum())
        w[bad] = draw(int(bad.sum()))
    else:
        raise FitError(f"bootstrap: cannot draw resamples with {min_distinct} distinct x values")
    return w, rejected, None
