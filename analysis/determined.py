"""Is a fitted law determined by its data?  And what do the data show without one?

A fit always returns numbers; whether they mean anything is a separate question.  A law
is *determined* only when every one of these holds (docs/ANALYSIS.md, "Determined"):

* at least MIN_DISTINCT_X_DETERMINED distinct x values (3 parameters + 2 degrees of freedom);
* no parameter on a bound (alpha = 0, beta at 0.001 or 4, gamma at 0 or at its upper bound, the smallest of the sizes' largest NE: fit.py);
* beta's 95% interval inside BETA_DETERMINED = (0.02, 3.5): an exponent that may be
  0.02 is "no trend" and one that may be 3.5 is "a step", neither a scaling law;
* gamma's interval does not span its whole range [its lower bound, that upper bound] (then
  the floor, and with it the trend, is unknown); its lower bound is the known floor of the
  metric where there is one (the planted world's Bayes floor), else 0;
* gamma's interval does not lie wholly below a known floor (possible only when the floor
  bound is turned off: a law that levels off below what any predictor reaches is wrong);
* alpha's interval does not reach 0 (a law with no trend fits as well);
* R^2 >= R2_DETERMINED: the law explains most of the NE variance across the runs;
* intervals exist (a bootstrap was run).

An undetermined fit gives no law, no efficiency figure, no plan and no verdict; the
report says what the data show instead (`observed`): the NE range over the axis against
the between-seed spread.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Optional

import numpy as np

from analysis.jsonable import Jsonable, optional

MIN_DISTINCT_X_DETERMINED = 5
BETA_DETERMINED = (0.02, 3.5)
R2_DETERMINED = 0.8
# An NE range below this many between-seed standard deviations is no measurable gain.
NOISE_MULTIPLE = 2.0


def determinedness(fit, known_floor: Optional[float] = None) -> tuple[bool, list[str]]:
    """(determined, reasons it is not) for a PowerLawFit; `known_floor`: the metric's
    known floor (e.g. the Bayes floor), whether or not the fit was bounded by it."""
    reasons = []
    if fit.n_distinct_x < MIN_DISTINCT_X_DETERMINED:
        reasons.append(f"{fit.n_distinct_x} distinct x values (need {MIN_DISTINCT_X_DETERMINED})")
    if fit.at_bound:
        reasons.append("at a bound: " + "; ".join(fit.at_bound))
    if not (fit.r2 >= R2_DETERMINED):
        reasons.append(f"R² = {fit.r2:.2f} < {R2_DETERMINED}")
    ci = fit.ci95()
    if ci is None:
        reasons.append("no bootstrap intervals (--bootstrap 0)")
    else:
        lo, hi = ci["beta"]
        if not (BETA_DETERMINED[0] < lo and hi < BETA_DETERMINED[1]):
            reasons.append(f"β's 95% interval [{lo:.3g}, {hi:.3g}] is not inside "
                           f"({BETA_DETERMINED[0]}, {BETA_DETERMINED[1]})")
        g_lo, g_hi = ci["gamma"]
        lb = fit.gamma_floor
        if g_lo <= lb + 1e-3 * (fit.y_min - lb) and g_hi >= fit.y_min - 1e-3 * (fit.y_min - lb):
            reasons.append(f"γ's 95% interval [{g_lo:.4g}, {g_hi:.4g}] spans its whole range "
                           f"[{lb:.4g}, {fit.y_min:.4g}]")
        if known_floor is not None and g_hi < known_floor:
            reasons.append(f"γ's 95% interval [{g_lo:.4g}, {g_hi:.4g}] lies wholly below the known floor "
                           f"{known_floor:.4g}")
        if ci["alpha"][0] <= 0:
            reasons.append("α's 95% interval reaches 0 (no trend cannot be excluded)")
    return not reasons, reasons


@dataclass
class Observed(Jsonable):
    """NE (seed mean) at the smallest and largest x, its range and change over the axis, and
    that range against the between-seed std (`measurable`: None with no spread to compare)."""
    x_min: float
    x_max: float
    ne_at_x_min: float
    ne_at_x_max: float
    ne_range: float
    ne_change: float
    between_seed_std: Optional[float] = None
    measurable: Optional[bool] = None
    range_over_seed_std: Optional[float] = optional()


def observed(series, seed_std: Optional[float]) -> Observed:
    """What the data show without a model: NE (seed mean) at the smallest and largest x,
    the range over the axis, and that range against the between-seed spread."""
    by_x: dict[float, list[float]] = defaultdict(list)
    for x, y in zip(series.x, series.y):
        by_x[float(x)].append(float(y))
    xs = sorted(by_x)
    means = np.array([np.mean(by_x[x]) for x in xs])
    ne_range = float(means.max() - means.min())
    out = Observed(x_min=xs[0], x_max=xs[-1], ne_at_x_min=float(means[0]), ne_at_x_max=float(means[-1]),
                   ne_range=ne_range, ne_change=float(means[-1] - means[0]), between_seed_std=seed_std)
    if seed_std is not None and seed_std > 0:
        out.range_over_seed_std = ne_range / seed_std
        out.measurable = bool(ne_range >= NOISE_MULTIPLE * seed_std)
    return out


def observed_sentence(obs: Observed, axis_label: str, metric: str) -> str:
    """e.g. 'no measurable gain over embedding dimension 4–32: NE range 0.0010 < 2× the
    between-seed std (0.0008)'."""
    span = f"{axis_label} {_num(obs.x_min)}–{_num(obs.x_max)}"
    name = "NE" if metric == "eval_ne" else metric
    std = obs.between_seed_std
    if obs.measurable is False:
        return (f"no measurable gain over {span}: {name} range {obs.ne_range:.4f} < "
                f"{NOISE_MULTIPLE:g}× the between-seed std ({std:.4f})")
    change = obs.ne_change
    direction = "falls" if change < 0 else "rises"
    text = (f"{name} {direction} from {obs.ne_at_x_min:.4f} to {obs.ne_at_x_max:.4f} over {span} "
            f"(range {obs.ne_range:.4f}")
    if std:
        text += f", {obs.range_over_seed_std:.1f}× the between-seed std"
    else:
        text += ", one seed: no between-seed spread to compare with"
    return text + ")"


def _num(v: float) -> str:
    if float(v).is_integer() and abs(v) < 1e5:
        return str(int(v))
    return f"{v:.3g}"
