"""Where a law's fit starts: transient points left out by a stated rule, and the range check.

A law is checked against itself without its smallest x.  Points at the start of a
learning curve (the first evals of a run, before the model has left its initial phase)
follow no power law yet; a fit through them bends to them, and its headline figure -- the
gain per doubling at the largest measured x -- moves when they are dropped.  The rule:

1. fit the series; refit it without its smallest x value;
2. if the two gains' 95% intervals overlap, the range is stable: the law stands;
3. if not, the smallest x value is *transient* -- left out, listed in the report with both
   numbers -- and the check repeats on the rest, as long as five distinct x values (a
   determined law's minimum) remain after dropping;
4. a law still unstable at that minimum is *range-sensitive*: not determined, with both
   gains in the report.

So a headline law never moves beyond its intervals when its smallest point goes.  The joint
law leaves out the data sizes that its world's data law found transient (pipeline).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from analysis.determined import MIN_DISTINCT_X_DETERMINED, determinedness
from analysis.efficiency import Estimate, gain
from analysis.errors import FitError
from analysis.fit import PowerLawFit, fit_power_law
from analysis.jsonable import Jsonable
from analysis.series import Series


@dataclass
class RangeCheck(Jsonable):
    """A law against its refit without its smallest x (`x_left_out`): the gains per doubling
    at the largest x, and whether their intervals overlap."""
    x_left_out: float
    x_max: float
    gain_per_doubling: Estimate
    gain_per_doubling_without: Estimate
    beta_without: float
    gamma_without: float
    overlaps: bool


@dataclass
class FitRange(Jsonable):
    """The record of the rule: the x values left out as transient, the last check made,
    whether the law is range-sensitive, where the fit starts and every check made."""
    transient_x: list[float] = field(default_factory=list)
    range_check: Optional[RangeCheck] = None
    range_sensitive: bool = False
    x_from: float = float("nan")
    checks: list[RangeCheck] = field(default_factory=list)


def from_x(s: Series, x_from: float) -> Series:
    """The series' points at x >= x_from."""
    keep = s.x >= x_from
    return Series(axis=s.axis, metric=s.metric, group=s.group, runs=[r for r, k in zip(s.runs, keep) if k],
                  x=s.x[keep], y=s.y[keep], warnings=list(s.warnings), cloud=s.cloud)


def without_smallest_x(s: Series) -> Series:
    return from_x(s, float(np.unique(s.x)[1]) if len(np.unique(s.x)) > 1 else np.inf)


def _overlap(a: Optional[list[float]], b: Optional[list[float]]) -> bool:
    return a is None or b is None or (a[0] <= b[1] and b[0] <= a[1])


def range_check(fit: PowerLawFit, s: Series, fit_one) -> Optional[RangeCheck]:
    """The law against its refit without the smallest x (None when that cannot be fitted)."""
    reduced = without_smallest_x(s)
    try:
        other = fit_one(reduced)
    except FitError:
        return None
    x = fit.x_max
    with_all, without = gain(fit, x, 2 * x), gain(other, x, 2 * x)
    return RangeCheck(x_left_out=float(s.x.min()), x_max=x, gain_per_doubling=with_all,
                      gain_per_doubling_without=without, beta_without=other.beta, gamma_without=other.gamma,
                      overlaps=_overlap(with_all.ci95, without.ci95))


def choose_range(s: Series, fit_one, known_floor: Optional[float]) -> tuple[Series, FitRange]:
    """The series the law is fitted to (transient leading x values left out) and the
    record of the rule: `transient_x`, `x_from`, every check made (`checks`; the last is
    `range_check`), `range_sensitive`."""
    record = FitRange()
    while True:
        record.x_from = float(np.min(s.x))
        try:
            fit = fit_one(s)
        except FitError:
            return s, record
        if not determinedness(fit, known_floor)[0]:
            return s, record  # not a law: nothing whose range could move it
        check = range_check(fit, s, fit_one)
        record.range_check = check
        if check is not None:
            record.checks.append(check)
        if check is None or check.overlaps:
            return s, record
        reduced = without_smallest_x(s)
        if len(np.unique(reduced.x)) < MIN_DISTINCT_X_DETERMINED:
            record.range_sensitive = True
            return s, record
        record.transient_x.append(float(s.x.min()))
        s = reduced


def range_sentence(check: RangeCheck) -> str:
    """e.g. 'without 32768 the gain per doubling is 0.0084 [0.0072, 0.0100], with it 0.0128
    [0.0116, 0.0157]'."""
    a, b = check.gain_per_doubling_without, check.gain_per_doubling

    def v(g: Estimate):
        ci = g.ci95
        return f"{g.value:.3g}" + (f" [{ci[0]:.3g}, {ci[1]:.3g}]" if ci else "")
    return f"without {check.x_left_out:.6g} the gain per doubling is {v(a)}, with it {v(b)}"


def fit_with(options, floor: Optional[float], seed_of):
    """A one-argument fitter for choose_range and the series' law: the series' own bootstrap
    settings.  It remembers each series it fitted (or failed to), so the law of the range
    the rule settles on is the fit the rule already made, not a second bootstrap of the
    same points with the same seed (a fit is a function of its points, seed and blocks)."""
    done: dict[tuple, object] = {}

    def fit_one(s: Series) -> PowerLawFit:
        seed, blocks = seed_of(s), s.blocks()
        key = (s.x.tobytes(), s.y.tobytes(), blocks.tobytes(), tuple(seed))
        if key not in done:
            try:
                done[key] = fit_power_law(s.x, s.y, options.fit, seed=seed, blocks=blocks, floor=floor,
                                          what=f"{s.axis.name} series [{s.label}]")
            except FitError as e:
                done[key] = e
        result = done[key]
        if isinstance(result, FitError):
            raise result
        return result
    return fit_one
