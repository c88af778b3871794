"""Resampling for the fits' intervals: whole seeds when there are several, else runs.

Under one-pass training the runs of one seed at several data sizes (and the intermediate
evals of one run) share their noise: one trajectory.  Resampling them as independent
points says nothing about the spread between seeds.  So with two or more seeds a
resample draws S seeds with replacement from the S seeds of the series and keeps each
drawn seed's points together (a block bootstrap); with one seed it draws runs, which
measures the noise of the fit only.

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

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.special import stdtrit

from analysis.errors import FitError

# A bootstrap resample needs four distinct x values: with three, a three-parameter law
# interpolates them exactly and says nothing.
MIN_DISTINCT_RESAMPLE = 4
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

    @property
    def description(self) -> str:
        if self.kind == "seeds":
            part = "" if self.n_seeds_full == self.n_seeds else f", {self.n_seeds_full} of them over most sizes"
            return (f"whole seeds resampled ({self.n_seeds} seeds{part}; intervals widened x{self.scale:.2g} "
                    f"for resting on {self.n_seeds_full} seeds)")
        return "fit noise only (one seed: runs resampled, seed-to-seed spread not included)"

    def interval(self, draws: np.ndarray, value: float, lo_bound: float = -np.inf,
                 hi_bound: float = np.inf, log: bool = False) -> list[float]:
        lo, hi = percentile_interval(draws)
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
        lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
        if self.scale != 1.0:
            lo, hi = values - self.scale * (values - lo), values + self.scale * (hi - values)
        return lo, hi

    def record(self) -> dict:
        return {"kind": self.kind, "n_seeds": self.n_seeds, "n_seeds_full": self.n_seeds_full,
                "interval_scale": self.scale, "description": self.description}


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


def percentile_interval(draws: np.ndarray, level: float = 0.95) -> list[float]:
    """The bootstrap percentile interval (Efron): the middle `level` of the draws."""
    tail = 50.0 * (1.0 - level)
    lo, hi = np.percentile(draws, [tail, 100.0 - tail])
    return [float(lo), float(hi)]


def bootstrap_weights(x: np.ndarray, n_resamples: int, rng: np.random.Generator,
                      min_distinct: int = MIN_DISTINCT_RESAMPLE,
                      groups: Optional[list[np.ndarray]] = None,
                      blocks: Optional[np.ndarray] = None) -> tuple[np.ndarray, int]:
    """Resampling weights (B, n): each row counts how often each point is drawn.

    Without `blocks`, a multinomial draw of n runs; with `blocks` (0..S-1 per point), S
    draws of whole blocks, each point weighted by how often its block was drawn.  Rows
    with fewer than `min_distinct` distinct values of x (or of each array in `groups`)
    cannot determine the law; they are redrawn (a conditional bootstrap) and their number
    returned."""
    n = len(x)
    keys = [x] if groups is None else groups
    onehots = [(np.unique(k, return_inverse=True)[1][:, None] == np.arange(len(np.unique(k)))).astype(float)
               for k in keys]
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
        bad = np.zeros(n_resamples, bool)
        for oh in onehots:
            bad |= ((w @ oh) > 0).sum(axis=1) < min_distinct
        if not bad.any():
            break
        rejected += int(bad.sum())
        w[bad] = draw(int(bad.sum()))
    else:
        raise FitError(f"bootstrap: cannot draw resamples with {min_distinct} distinct x values")
    return w, rejected
