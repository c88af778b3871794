"""The checks of one study in words: the laws against the known floors and the planted
truth, and the rolling extrapolation by factor.  Each line states only what a determined
fit (or the runs themselves) supports."""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

from analysis.extrapolate import factor_bin
from analysis.fmt import ci, g, table, vci
from analysis.results import SeriesResult
from analysis.series import SCHEMES

# What the oracle of each scheme counts as representable (dlrm/data/teacher.py); none is a
# bound: a student can spread one term over several units or serve several with one.
ORACLE_COUNT = {"embedding_dim": "d − 1 latent coordinates", "dense_arch_width": "W/2 dense terms",
                "over_arch_width": "W − 1 gated terms", "mlp_width": "both widths' counts"}


def data_cannot_fix(heads: list[SeriesResult], axis_word) -> list[str]:
    lines = []
    data = next((h for h in heads if h.series.axis.name == "data"), None)
    if data is not None and data.determined and data.gamma_vs_floor:
        gv = data.gamma_vs_floor
        text = (f"- **What data cannot fix.** With unlimited data this model levels off at γ = {g(data.fit.gamma)} "
                f"{ci(data.fit.ci95()['gamma'])}")
        if gv.gamma_minus_floor is not None:
            text += f": {vci(gv.gamma_minus_floor, 3)} above the Bayes floor {g(gv.floor)} (realised labels)"
        if gv.gamma_minus_oracle is not None:
            text += (f"; its capacity limit (oracle, an approximation) is {g(gv.oracle)}, γ − oracle = "
                     f"{vci(gv.gamma_minus_oracle, 3)}")
        lines.append(text + ". Only a larger or better model removes that share.")
    for h in heads:
        o = h.oracle
        if h.series.axis.name not in SCHEMES or not o or o.gap_observed is None:
            continue
        gaps = o.gap_fitted or o.gap_observed
        src = "fitted" if o.gap_fitted else "observed"
        text = (f"- **{axis_word(h)} against the oracle curve** (N = {g(h.series.group.get('num_train_samples'))}; "
                f"the oracle counts {ORACLE_COUNT.get(h.series.axis.name, 'what the size represents')}, an "
                f"approximation): the {src} curve lies {g(min(gaps), 3)}–{g(max(gaps), 3)} above it. Finite data "
                f"and what training does not find, together: these runs are all at one N.")
        text += _data_share(h, data)
        lines.append(text)
    return lines


def _data_share(h: SeriesResult, data: Optional[SeriesResult]) -> str:
    """What the data law (runs at many N) says more data removes at its model, on this axis."""
    mg = h.efficiency.compute_margin if h.efficiency else None
    o = h.oracle
    if data is None or not data.determined or mg is None or "data law's model" not in mg.start:
        return ""
    x0 = mg.x_from
    if x0 not in o.x:
        return ""
    gap = o.gap_observed[o.x.index(x0)]
    room = data.efficiency.headroom_to_gamma
    return (f" At the data law's model ({g(x0)}), whose runs span many N, more data removes "
            f"{vci(room, 3)} of its {g(gap, 3)} gap to the oracle; the rest is beyond data.")


def planted_table(heads: list[SeriesResult], axis_word) -> list[str]:
    rows = []
    for h in heads:
        p = h.planted
        if not p or h.series.axis.is_param_count:
            continue
        planted = g(p.planted, 3) if p.planted is not None else "none (no law planted)"
        oracle = g(p.oracle_curve_beta, 3) if p.oracle_curve_beta is not None else "flat"
        fitted = f"{g(p.fitted_beta, 3)} {ci(p.fitted_beta_ci95, 3)}" if p.fitted_beta is not None \
            else "not determined"
        covers = {True: "yes", False: "**no**", None: "–"}[p.covers]
        rows.append([axis_word(h), planted, oracle, fitted, covers])
    if not rows:
        return []
    return ["- **Planted against fitted** (β: the exponent of x; planted: the share of its part a size x "
            "leaves missed, x^−e; the oracle curve's: the same law fitted to the capacity limit on this grid; "
            "fitted: the runs' law):\n", table(["axis", "planted e", "oracle curve β on the grid", "fitted β [95%]",
                                                "interval holds the oracle's"], rows), ""]


def rolling_line(checks: list[SeriesResult], axis_word) -> Optional[str]:
    if not checks:
        return None
    flagged = [r for r in checks if r.extrapolation.flagged]
    text = (f"- **Rolling extrapolation.** {len(checks)} determined laws, each refitted on its smallest k x values "
            f"for every k and asked for every larger x: {len(flagged)} flagged (the farthest prediction, the "
            f"largest x from the smallest prefix, outside its interval).")
    if flagged:
        text += " Do not extrapolate these: " + "; ".join(
            f"{axis_word(r).lower()} ({r.extrapolation.n_top_outside} prediction(s) of the largest x outside, "
            f"{100 * r.extrapolation.relative_error_at_max_factor:+.2g}% at {g(r.extrapolation.max_factor, 3)}×)"
            for r in flagged) + "."
    preds = [p for r in checks for p in r.extrapolation.predictions]
    by: dict[float, list[float]] = defaultdict(list)
    for p in preds:
        by[factor_bin(p.factor)].append(p.relative_error)
    parts = [f"{g(f, 3)}×: bias {100 * sum(v) / len(v):+.2g}%, mean |error| {100 * sum(map(abs, v)) / len(v):.2g}% "
             f"(n = {len(v)})" for f, v in sorted(by.items())]
    outside = sum(not p.within for p in preds)
    text += f" By extrapolation factor, over {len(preds)} predictions ({outside} outside their 95% interval): " \
            + "; ".join(parts) + "."
    signs = {p.error > 0 for p in preds if p.error != 0}
    if len(preds) > 2 and len(signs) == 1:
        optimistic = signs.pop()
        text += (" Every error has the same sign: the laws fitted on small x predict a "
                 f"{'lower' if optimistic else 'higher'} metric than larger x reach, so extrapolating "
                 f"them is {'optimistic' if optimistic else 'pessimistic'}.")
    return text
