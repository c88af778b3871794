"""How much NE one more unit of a resource buys, at the margin.

The numbers behind "data scaling is the path forward" (or its opposite), from the fitted
law of a determined series (analysis.determined), each with a bootstrap interval:

- at the largest measured x: the NE gained by doubling the resource, what is left to gain
  (the headroom NE(x_max) - gamma) and a verdict on the doubling's gain against a threshold;
- the gain of the next 10x, kept for reference and marked as an extrapolation far past the
  measured range (the rolling check measures how errors grow with the factor);
- per doubling of *compute* spent through the resource, from a stated start model
  (`compute_margin`): x grows to the size at which the model's FLOPs per sample double,
  read off the model's own FLOP formula (the summary's `compute_doubling_x`), not a slope
  over the grid.

No gain is stated past EXTRAPOLATION_LIMIT times the largest measured x: such a figure is
flagged as beyond the range instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from analysis.fit import PowerLawFit
from analysis.jsonable import Jsonable, optional
from analysis.series import SCHEMES, Series

# A gain is stated up to one doubling past the largest measured x (the data axis' own
# margin); further out it rests on the law's form, not on the runs.
EXTRAPOLATION_LIMIT = 2.0
NEXT_10X = 10.0


@dataclass
class Estimate(Jsonable):
    """A number under the law with its 95% interval (None without a bootstrap)."""
    value: float
    ci95: Optional[list[float]] = None


@dataclass
class FarEstimate(Estimate):
    """An estimate far past the measured range: `extrapolation_factor` times its largest x."""
    extrapolation_factor: float = NEXT_10X


@dataclass
class ComputeMargin(Jsonable):
    """What one doubling of compute through a resource buys from size `x_from` (`start`
    names that model); `why_not` says why no gain is stated."""
    x_from: float
    start: str
    x_to: Optional[float]
    x_to_source: str
    factor_past_range: Optional[float]
    stated: bool = False
    gain: Optional[Estimate] = None
    headroom: Optional[Estimate] = None
    why_not: Optional[str] = optional()


@dataclass
class Efficiency(Jsonable):
    """A determined law's margin at its largest measured x (scaling_efficiency); the
    compute margin is attached later, from the study's central data law (analysis.margin)."""
    x_max: float
    ne_at_x_max: float
    gain_per_doubling: Estimate
    gain_per_doubling_relative: float
    gain_next_10x: FarEstimate
    headroom_to_gamma: Estimate
    threshold_per_doubling: float
    verdict: str  # "pays", "saturated" or "uncertain"
    extrapolation_limit: float
    compute_margin: Optional[ComputeMargin] = optional()


def gain(fit: PowerLawFit, x_from: float, x_to: float) -> Estimate:
    """NE(x_from) - NE(x_to) under the law: positive means the bigger resource lowers NE."""
    out = Estimate(float(fit.predict(x_from) - fit.predict(x_to)))
    if fit.boot is not None:
        pb = fit.predict_boot([x_from, x_to])
        out.ci95 = fit.interval(pb[:, 0] - pb[:, 1], out.value)
    return out


def headroom(fit: PowerLawFit, x: float) -> Estimate:
    """NE(x) - gamma: all that any amount more of the resource can buy, under the law."""
    out = Estimate(float(fit.predict(x)) - fit.gamma)
    if fit.boot is not None:
        out.ci95 = fit.interval(fit.predict_boot([x])[:, 0] - fit.boot[:, 2], out.value)
    return out


def scaling_efficiency(fit: PowerLawFit, series: Series, threshold_per_doubling: float) -> Efficiency:
    x = fit.x_max
    ne_now = float(fit.predict(x))
    per_doubling = gain(fit, x, 2 * x)
    far = gain(fit, x, NEXT_10X * x)
    # The verdict needs the whole interval of the doubling's gain on one side of the threshold.
    lo, hi = per_doubling.ci95 or (per_doubling.value, per_doubling.value)
    verdict = "pays" if lo > threshold_per_doubling else "saturated" if hi < threshold_per_doubling else "uncertain"
    return Efficiency(x_max=x, ne_at_x_max=ne_now, gain_per_doubling=per_doubling,
                      gain_per_doubling_relative=per_doubling.value / ne_now,
                      gain_next_10x=FarEstimate(far.value, far.ci95, NEXT_10X), headroom_to_gamma=headroom(fit, x),
                      threshold_per_doubling=threshold_per_doubling, verdict=verdict,
                      extrapolation_limit=EXTRAPOLATION_LIMIT)


def compute_doubling_x(series: Series, x0: float) -> tuple[Optional[float], str]:
    """The size at which FLOPs per sample double from size x0 along the series' axis, and
    where that number comes from: 2 x0 for data and compute; for a scheme, the runs' own
    `compute_doubling_x` (the model's FLOP formula); for runs that lack it, the affine
    fit FLOPs/sample = a + b x over the series (exact for one hidden layer an MLP)."""
    axis = series.axis.name
    if axis in ("data", "compute"):
        return 2.0 * x0, "FLOPs grow in proportion"
    scheme = series.scheme
    if scheme not in SCHEMES:
        return None, "not a scaling scheme"
    at = [r for r, x in zip(series.runs, series.x) if x == x0]
    recorded = [(r.get("compute_doubling_x") or {}).get(scheme) for r in at]
    recorded = [v for v in recorded if isinstance(v, (int, float)) and v > 0]
    if recorded:
        return float(np.median(recorded)), "the model's FLOP formula"
    fps = series.field_values("flops_per_sample")
    ok = np.isfinite(fps)
    if len(np.unique(series.x[ok])) < 2:
        return None, "no flops_per_sample"
    b, a = np.polyfit(series.x[ok], fps[ok], 1)
    if b <= 0:
        return None, "FLOPs do not grow with it"
    return float((2 * (a + b * x0) - a) / b), "an affine fit of flops_per_sample over the series"


def compute_margin(fit: PowerLawFit, series: Series, x0: float, start: str) -> ComputeMargin:
    """What one doubling of compute spent through the series' resource buys from size x0
    (`start` names the model it starts from), or why no number is stated."""
    x1, source = compute_doubling_x(series, x0)
    out = ComputeMargin(x_from=x0, start=start, x_to=x1, x_to_source=source,
                        factor_past_range=None if x1 is None else x1 / fit.x_max, headroom=headroom(fit, x0))
    if x1 is None:
        out.why_not = f"no compute doubling along it ({source})"
    elif x1 > EXTRAPOLATION_LIMIT * fit.x_max:
        out.why_not = (f"a compute doubling needs {x1:.4g}, {x1 / fit.x_max:.3g}x the largest measured "
                       f"{fit.x_max:.4g} (past the {EXTRAPOLATION_LIMIT:g}x limit)")
    else:
        out.stated, out.gain = True, gain(fit, x0, x1)
    return out
