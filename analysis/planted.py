"""Planted against fitted: on a world with a known answer, the law a parameter axis should show.

Three exponents per scheme series of a planted world:
- planted: the exponent of the share of its part that a model of size x leaves missed,
  x^-e (the runs' `planted_exponents`, from the world's spec);
- the oracle curve's: the same law, NE = a x^-b + c, fitted to the capacity limit of each
  size on the series' own grid (noise-free).  NE is not exactly linear in the missed
  variance, so this is the exponent the grid can show, and the one a fit is held to;
- fitted: the law of the runs, with its interval.
`covers` says whether the fitted interval holds the oracle curve's exponent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from analysis.errors import FitError
from analysis.fit import fit_power_law
from analysis.jsonable import Jsonable, optional


@dataclass
class Planted(Jsonable):
    """The three exponents of a scheme series; `covers`: whether the fitted interval holds
    the oracle curve's (None without both)."""
    scheme: str
    planted: Optional[float]
    oracle_curve_beta: Optional[float] = None
    fitted_beta: Optional[float] = None
    fitted_beta_ci95: Optional[list[float]] = None
    covers: Optional[bool] = None
    oracle_curve_at_bound: Optional[list[str]] = optional()  # where the oracle curve's law was fitted


def planted_exponent(runs: list[dict], scheme: Optional[str]) -> Optional[float]:
    values = [(r.get("planted_exponents") or {}).get(scheme) for r in runs] if scheme else []
    values = [v for v in values if isinstance(v, (int, float))]
    return float(np.median(values)) if values else None


def planted_vs_fitted(res) -> Optional[Planted]:
    """The three exponents of a scheme series (None off a planted world or off the schemes)."""
    s = res.series
    scheme = s.scheme if s.axis.name == s.scheme else None
    planted = planted_exponent(s.runs, scheme)
    o = res.oracle
    if scheme is None or (planted is None and not o):
        return None
    out = Planted(scheme=scheme, planted=planted)
    if o and len(o.x) >= 4 and np.ptp(o.oracle) > 0:
        try:
            law = fit_power_law(np.array(o.x), np.array(o.oracle), n_bootstrap=0)
            out.oracle_curve_beta = law.beta
            out.oracle_curve_at_bound = law.at_bound
        except FitError:
            pass
    if res.determined:
        ci = res.fit.ci95()["beta"]
        out.fitted_beta, out.fitted_beta_ci95 = res.fit.beta, ci
        if out.oracle_curve_beta is not None:
            out.covers = bool(ci[0] <= out.oracle_curve_beta <= ci[1])
    return out
