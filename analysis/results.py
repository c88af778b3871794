"""What the analysis found: the options it ran with and its results, as plain data.

analysis.pipeline fills these from the run table; analysis.records, analysis.report and
analysis.plots read them.  Nothing here computes a fit or touches a file.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from analysis.determined import Observed
from analysis.efficiency import Efficiency, Estimate
from analysis.extrapolate import RollingCheck
from analysis.fit import FitSettings, PowerLawFit
from analysis.fitrange import FitRange
from analysis.joint import Crossing, FlopsModel, JointFit, OptimalSplit, SplitExponents
from analysis.jsonable import Jsonable, optional
from analysis.planted import Planted
from analysis.runs import FLOOR_FIELD, ORACLE_FIELD, RunTable
from analysis.seeds import SeedSpread
from analysis.series import AXES, OracleCurve, Series

METRIC_WORDS = {"eval_ne": "NE", "eval_logloss": "log loss"}
METRIC_SHORT = {"eval_ne": "ne", "eval_logloss": "logloss"}


@dataclass(frozen=True)
class Options:
    metric: str = "eval_ne"
    fit: FitSettings = FitSettings()
    seed: int = 0  # base seed of every bootstrap (each series derives its own from it)
    targets: tuple[float, ...] = ()  # target metric values to plan for
    saturation_threshold: float = 0.0015  # gain per doubling below which an axis is saturated
    bytes_per_param: float = 4.0  # fp32 embedding tables
    axes: tuple[str, ...] = tuple(AXES)
    joint: bool = True
    intermediate: bool = True  # use intermediate eval points where the runs allow them
    floor_bound: bool = True  # a known floor (the Bayes floor) bounds every gamma and E below
    jobs: int = 1  # processes for the fits (analysis.parallel); results do not depend on it

    @property
    def floor_field(self) -> str:
        return FLOOR_FIELD[self.metric]

    @property
    def oracle_field(self) -> Optional[str]:
        return ORACLE_FIELD[self.metric]

    @property
    def metric_word(self) -> str:
        return METRIC_WORDS.get(self.metric, self.metric)


@dataclass
class GammaVsFloor(Jsonable):
    """gamma against the known Bayes floor and, on the data axis where the model's capacity
    limit is one number, against that limit (analysis.pipeline)."""
    floor: Optional[float] = optional()
    gamma_minus_floor: Optional[Estimate] = optional()
    oracle: Optional[float] = optional()
    gamma_minus_oracle: Optional[Estimate] = optional()


@dataclass
class SeriesResult:
    series: Series
    fit: Optional[PowerLawFit] = None
    skipped: Optional[str] = None
    floor: Optional[float] = None
    oracle: Optional[OracleCurve] = None  # the capacity limit per x, and the gaps to it
    seed_spread: Optional[SeedSpread] = None
    determined: bool = False
    reasons: list[str] = field(default_factory=list)  # why it is not determined
    observed: Optional[Observed] = None  # what the data show without a model
    gamma_vs_floor: Optional[GammaVsFloor] = None
    efficiency: Optional[Efficiency] = None  # determined laws only
    extrapolation: Optional[RollingCheck] = None  # rolling check, determined laws only
    warnings: list[str] = field(default_factory=list)
    fit_range: Optional[FitRange] = None  # analysis.fitrange: transient x left out, the range check
    planted: Optional[Planted] = None  # analysis.planted: planted, oracle-curve and fitted exponents

    @property
    def law(self) -> Optional[PowerLawFit]:
        """The fit when it is a law (determined), else None."""
        return self.fit if self.determined else None

    @property
    def seed_std(self) -> Optional[float]:
        return self.seed_spread.ne_std_between_seeds if self.seed_spread else None


@dataclass
class JointResult:
    group: dict[str, Any]
    P: np.ndarray
    D: np.ndarray
    y: np.ndarray
    P_field: str = "params_total"
    fit: Optional[JointFit] = None
    skipped: Optional[str] = None
    floor: Optional[float] = None
    crossing: Optional[Crossing] = None
    determined: bool = False
    reasons: list[str] = field(default_factory=list)
    flops_model: Optional[FlopsModel] = None
    compute_optimal: Optional[list[OptimalSplit]] = None  # for 1x, 10x and 100x the largest run's FLOPs
    exponents: Optional[SplitExponents] = None
    warnings: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.group.items() if v is not None)


@dataclass
class Analysis:
    table: RunTable
    options: Options
    series: list[SeriesResult]
    joint: list[JointResult]
    plans: list[dict]
    notes: list[str]
    lr_envelope: list[dict] = field(default_factory=list)

    @property
    def fitted(self) -> list[SeriesResult]:
        return [r for r in self.series if r.fit is not None]

    @property
    def determined(self) -> list[SeriesResult]:
        return [r for r in self.series if r.determined]

    @property
    def skipped(self) -> list[SeriesResult]:
        return [r for r in self.series if r.fit is None]


def headline(results: list[SeriesResult]) -> Optional[SeriesResult]:
    """The series that speaks for an axis: the one with the most seeds (its intervals
    rest on most), then the one at the largest scale (median training FLOPs of its runs),
    then a determined one, then the one with more points."""
    fitted = [r for r in results if r.fit is not None]
    if not fitted:
        return None

    def scale(r: SeriesResult):
        flops = r.series.field_values("train_flops")
        return (r.fit.resampling.n_seeds_full, float(np.nanmedian(flops)) if np.isfinite(flops).any() else 0.0,
                r.determined, r.fit.n_points)
    return max(fitted, key=scale)
