"""How much NE and the fitted law move between seeds of the same grid point.

The bootstrap interval contains seed noise when it resamples whole seeds; this is the
direct view a reader asks for: the spread of NE between repeats of one grid point, and,
when every seed alone covers enough x values, the spread of the law fitted per seed.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from analysis.fit import FitSettings, fit_weightings
from analysis.jsonable import Jsonable, optional
from analysis.series import Series


@dataclass
class AtXMax(Jsonable):
    """NE over the seeds at the largest x."""
    x: float
    n_seeds: int
    ne_mean: float
    ne_std: float
    ne_range: float


@dataclass
class SeedSpread(Jsonable):
    """The spread of NE between seeds of one grid point (pooled over the x values run more
    than once) and of the law fitted per seed (`per_seed_params`: {parameter: {min, max, std}})."""
    n_seeds: int
    x_values_with_repeats: int
    ne_std_between_seeds: Optional[float] = optional()
    ne_std_between_seeds_relative: Optional[float] = optional()
    ne_range_between_seeds_max: Optional[float] = optional()
    at_x_max: Optional[AtXMax] = optional()
    per_seed_fits: int = 0
    per_seed_params: Optional[dict[str, dict[str, float]]] = optional()


def seed_spread(series: Series, settings: FitSettings, floor: Optional[float] = None) -> Optional[SeedSpread]:
    """None when the series has a single seed; else the between-seed spread."""
    seeds = [s for s in series.seeds() if s is not None]
    distinct_seeds = sorted(set(seeds), key=str)
    if len(distinct_seeds) < 2:
        return None
    by_x: dict[float, list[float]] = defaultdict(list)
    for x, y in zip(series.x, series.y):
        by_x[float(x)].append(float(y))
    repeated = [np.asarray(v) for v in by_x.values() if len(v) > 1]
    out = SeedSpread(n_seeds=len(distinct_seeds), x_values_with_repeats=len(repeated))
    if repeated:
        dof = sum(len(v) - 1 for v in repeated)
        pooled_var = sum(((v - v.mean()) ** 2).sum() for v in repeated) / dof
        out.ne_std_between_seeds = float(np.sqrt(pooled_var))
        out.ne_std_between_seeds_relative = float(np.sqrt(pooled_var) / np.mean(np.concatenate(repeated)))
        out.ne_range_between_seeds_max = float(max(np.ptp(v) for v in repeated))
    x_max = max(by_x)
    at_max = np.asarray(by_x[x_max])
    if at_max.size > 1:  # the spread where the conclusions are read: the largest x
        out.at_x_max = AtXMax(x=x_max, n_seeds=int(at_max.size), ne_mean=float(at_max.mean()),
                              ne_std=float(at_max.std(ddof=1)), ne_range=float(np.ptp(at_max)))

    # Per-seed laws: one weighting per seed that covers enough x values, fitted together.
    seeds_of_runs = series.seeds()
    masks = [np.array([s == seed for s in seeds_of_runs]) for seed in distinct_seeds]
    masks = [m for m in masks if len(np.unique(series.x[m])) >= settings.min_distinct_x]
    out.per_seed_fits = len(masks)
    if len(masks) >= 2:
        per_seed = fit_weightings(series.x, series.y, np.array(masks, float), settings, floor=floor)
        out.per_seed_params = {
            k: {"min": float(v.min()), "max": float(v.max()), "std": float(np.std(v, ddof=1))}
            for k, v in per_seed.items()
        }
    return out
