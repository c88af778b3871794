"""The conclusions of report.md: sentences, each backed by a determined fit.

A conclusion is stated only from a determined law (analysis.determined); an undetermined
one gets "not determined", its reasons and what the data show without a model, never a
number that sits at a bound.  Comparisons ("data buys more than ...") are stated only
when the 95% intervals do not overlap.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

import rundir
from analysis.checks import data_cannot_fix, planted_table, rolling_line
from analysis.determined import observed_sentence
from analysis.efficiency import ComputeMargin
from analysis.fitrange import range_sentence
from analysis.fmt import ci, g, vci
from analysis.margin import center
from analysis.results import Analysis, SeriesResult, headline
from analysis.series import AXES, SCHEMES

AXIS_WORDS = {
    **{a.name: a.words for a in rundir.SCALING_AXES if a.kind != "shape"}, "params": "Parameters (total)",
    "params_embedding": "Embedding parameters", "params_dense": "Dense parameters",
    "compute": "Compute (frontier)",
}


def axis_word(r: SeriesResult) -> str:
    word = AXIS_WORDS[r.series.axis.name]
    scheme = r.series.group.get("scheme")
    return f"{word} ({AXIS_WORDS[scheme].lower()} scheme)" if scheme else word


Study = tuple[str, Optional[str]]  # (model, data_id): one set of conclusions


def studies(a: Analysis) -> list[Study]:
    """Every (model, data world) with a fit: each gets its own conclusions, since a law, a
    ranking or a floor of one world says nothing about another (the demo has two)."""
    keys = {(r.series.model, r.series.group.get("data_id")) for r in a.fitted}
    keys |= {(str(j.group.get("model")), j.group.get("data_id")) for j in a.joint}
    return sorted(keys, key=lambda k: (k[0], str(k[1])))


def of_study(group: dict, study: Study) -> bool:
    return (str(group.get("model")), group.get("data_id")) == study


def study_title(a: Analysis, study: Study, with_id: bool = True) -> str:
    """The model's name; with more than one data world, the world's name (and id) too."""
    model, data_id = study
    if len({d for _, d in studies(a)}) < 2:
        return model
    names = {r.get("data") for r in a.table.finals if r.get("data_id") == data_id and r.get("data")}
    name = " / ".join(sorted(map(str, names))) or "data"
    return f"{model} on {name} ({data_id})" if with_id else f"{model} on {name}"


def heads_of(a: Analysis, study: Study) -> list[SeriesResult]:
    """The headline series of each axis (and, for parameter counts, of each scheme)."""
    by = defaultdict(list)
    for r in a.series:
        if of_study(r.series.group, study):
            by[r.series.axis.name].append(r)
    heads = []
    for ax in AXES:
        rs = by.get(ax, [])
        if ax == "data":  # the law the compute margins start from (analysis.margin)
            h = center(rs, [r for r in a.series if of_study(r.series.group, study)]) if rs else None
            if h is not None:
                heads.append(h)
        elif AXES[ax].is_param_count:
            for scheme in SCHEMES:
                h = headline([r for r in rs if r.series.group.get("scheme") == scheme])
                if h is not None:
                    heads.append(h)
        else:
            h = headline(rs)
            if h is not None:
                heads.append(h)
    return heads


def _undetermined_sentence(r: SeriesResult, a: Analysis) -> str:
    s = r.series
    what = observed_sentence(r.observed, AXES[s.axis.name].label, a.options.metric) if r.observed else ""
    return (f"**{axis_word(r)}: not determined** — no law, no verdict. What the data show: {what}. "
            f"_(why no law: {'; '.join(r.reasons)}; series: {s.label}; {r.fit.n_points} points)_")


def _range_words(r: SeriesResult) -> str:
    """Which leading x values the fit left out as transient, with the numbers that moved."""
    fr = r.fit_range
    words = [range_sentence(c) for c in fr.checks if not c.overlaps] if fr else []
    if not words or fr.range_sensitive:
        return ""
    return (f" Fitted from {r.series.axis.x_field} = {g(fr.x_from)} on; the smaller x left out as transient ("
            + "; ".join(words) + ").")


def axis_sentence(r: SeriesResult, a: Analysis) -> str:
    if not r.determined:
        return _undetermined_sentence(r, a)
    e, f, s = r.efficiency, r.fit, r.series
    word = axis_word(r)
    m = a.options.metric_word
    head = {"pays": f"**{word}: still pays.**", "saturated": f"**{word}: saturated.**",
            "uncertain": f"**{word}: undecided by these runs.**"}[e.verdict]
    cis = f.ci95()
    text = (f"{head} At the largest measured {s.axis.x_field} ({g(e.x_max)}), doubling it "
            f"lowers {m} by {vci(e.gain_per_doubling, 3)} ({100 * e.gain_per_doubling_relative:.2g}%; "
            f"threshold for 'pays': {g(e.threshold_per_doubling)} per doubling). "
            f"Law: β = {g(f.beta, 3)} {ci(cis['beta'], 3)}, γ = {g(f.gamma)} {ci(cis['gamma'])}")
    gap = r.gamma_vs_floor.gamma_minus_floor if r.gamma_vs_floor else None
    if gap is not None:
        text += f"; γ − Bayes floor = {vci(gap, 3)}"
    text += "." + _range_words(r)
    text += f" _(series: {s.label}; {f.n_points} points; intervals: {f.resampling.description})_"
    return text


def _margin_of(r: SeriesResult) -> Optional[ComputeMargin]:
    return r.efficiency.compute_margin if r.determined and r.efficiency else None


def _compute_sentence(heads: list[SeriesResult]) -> Optional[str]:
    """What a doubling of compute buys through data against each parameter scheme, from one model."""
    rows = [r for r in heads if _margin_of(r) and r.series.axis.name in ("data",) + SCHEMES]
    data = next((r for r in rows if r.series.axis.name == "data"), None)
    if not rows or (data is None and len(rows) < 2):
        return None
    starts = sorted({_margin_of(r).start for r in rows})
    parts = []
    for r in sorted(rows, key=lambda r: r.series.axis.name != "data"):
        mg = _margin_of(r)
        name = axis_word(r).lower()
        move = f"{g(mg.x_from)} → {g(mg.x_to, 3)}" if mg.x_to else g(mg.x_from)
        if mg.stated:
            past = (f", {g(mg.factor_past_range, 2)}× the largest measured" if mg.factor_past_range > 1
                    else ", inside the measured range")
            parts.append(f"{name} ({move}{past}) {vci(mg.gain, 3)}")
        else:
            parts.append(f"{name}: not stated ({mg.why_not}); its whole headroom from {g(mg.x_from)} "
                         f"is {vci(mg.headroom, 3)}")
    where = (f"from {starts[0]}" if len(starts) == 1 else
             "each from its own start (" + "; ".join(f"{axis_word(r).lower()}: {_margin_of(r).start}"
                                                      for r in rows) + ")")
    text = f"**Per doubling of training compute**, {where}, NE drops by: " + "; ".join(parts) + "."
    if data is not None and _margin_of(data).stated:
        verdicts = [_rank(data, r) for r in rows if r is not data]
        if verdicts:
            text += " " + "; ".join(verdicts)[0].upper() + "; ".join(verdicts)[1:] + "."
    return text


def _rank(data: SeriesResult, r: SeriesResult) -> str:
    """Data against one scheme: by the gain per compute doubling where both are stated, else
    by the scheme's whole headroom (what any amount of it buys, under its law)."""
    d_lo, d_hi = _margin_of(data).gain.ci95 or [None, None]
    mg, name = _margin_of(r), axis_word(r).lower()
    other = mg.gain if mg.stated else mg.headroom
    what = "" if mg.stated else "'s whole headroom"
    o_lo, o_hi = other.ci95 or [None, None]
    if None in (d_lo, d_hi, o_lo, o_hi):
        return f"against {name}: no intervals, no ranking"
    if d_lo > o_hi:
        return f"data buys more than {name}{what} (the intervals do not overlap)"
    if o_lo > d_hi and mg.stated:
        return f"{name} buys more than data (the intervals do not overlap)"
    return f"against {name}{what} the intervals overlap: no ranking"


def _schemes_sentence(heads: list[SeriesResult]) -> Optional[str]:
    native = [r for r in heads if r.series.axis.name in SCHEMES]
    if not native:
        return None
    law = [axis_word(r).lower() for r in native if r.determined]
    none = [axis_word(r).lower() for r in native if not r.determined]
    text = "**Parameter schemes.** "
    text += (f"A measurable law (determined) on: {', '.join(law)}. " if law else "No parameter scheme has a determined law. ")
    if none:
        text += f"Not determined: {', '.join(none)}."
    return text.strip()


def _seed_spread_line(heads: list[SeriesResult]) -> Optional[str]:
    best = None
    for h in heads:
        at = h.seed_spread.at_x_max if h.seed_spread else None
        if at and (best is None or h.series.axis.name == "data"):
            best = (h, at)
    if best is None:
        return None
    h, at = best
    return (f"- **Between-seed spread at the largest point** ({h.series.axis.x_field} = {g(at.x)}, "
            f"{h.series.label}): NE std {g(at.ne_std, 2)} over {at.n_seeds} seeds "
            f"(range {g(at.ne_range, 2)}, mean {g(at.ne_mean)}).")


def _joint_lines(a: Analysis, study: Study) -> list[str]:
    lines = []
    skipped = [j for j in a.joint if of_study(j.group, study) and j.fit is None]
    if skipped:
        schemes = sorted({AXIS_WORDS.get(j.group.get("scheme"), "?").lower() for j in skipped})
        lines.append(f"- **Joint law: not fitted** for {len(skipped)} group(s) ({', '.join(schemes)} schemes) — "
                     f"e.g. {skipped[0].skipped}.")
    for j in a.joint:
        if not of_study(j.group, study) or j.fit is None:
            continue
        name = AXIS_WORDS.get(j.group.get("scheme"), "?").lower()
        if not j.determined:
            lines.append(f"- **Joint law ({name} scheme): not determined** ({'; '.join(j.reasons)}); "
                         "no compute-optimal split is stated.")
            continue
        ex, c = j.exponents, (j.compute_optimal or [None])[0]
        text = (f"- **Joint law ({name} scheme)** E + A/P^a + B/D^b: a = {g(j.fit.a, 3)} "
                f"{ci(j.fit.ci95()['a'], 3)}, b = {g(j.fit.b, 3)} {ci(j.fit.ci95()['b'], 3)}.")
        if ex and c:
            text += (f" Compute-optimal split: parameters grow as C^{g(ex.params, 3)} {ci(ex.params_ci95, 3)}, "
                     f"samples as C^{g(ex.samples, 3)} {ci(ex.samples_ci95, 3)}; at the largest run's "
                     f"budget ({g(c.budget_flops, 3)} FLOPs) {g(c.params, 3)} params × {g(c.samples, 3)} samples")
            text += (f" — an extrapolation ({c.extrapolation}), not a conclusion" if c.extrapolated else "")
            if j.flops_model and j.flops_model.r2 < 0.8:
                text += f"; indicative only (FLOPs per sample vs parameters r² = {g(j.flops_model.r2, 2)})"
            text += ". Larger budgets: see the joint-law table (all extrapolations)."
        lines.append(text)
    return lines


def _lr_line(a: Analysis) -> Optional[str]:
    if not a.lr_envelope:
        return None
    edge = [row["label"] for row in a.lr_envelope if row["winner_at_edge"]]
    # One phrase per (config, rates tried, winner), over its data sizes.
    phrases: dict[tuple, list] = defaultdict(list)
    for row in a.lr_envelope:
        config = row["label"].rsplit(" N=", 1)[0]
        phrases[(config, row["tried_text"], row["winner_text"])].append(row["point"]["num_train_samples"])
    parts = [f"{config}: {winner} won (of {tried}) at {len(ns)} data size(s) {g(min(ns))}–{g(max(ns))}"
             for (config, tried, winner), ns in phrases.items()]
    text = (f"- **Learning rates.** Tuned at {len(a.lr_envelope)} point(s); each point takes its best rate per seed: "
            + "; ".join(parts[:6]) + ("; ..." if len(parts) > 6 else "") + ".")
    if edge:
        text += f" The winner is at the edge of the rates tried at {len(edge)} point(s) (e.g. {edge[0]}): widen the range there."
    return text


def conclusions(a: Analysis) -> list[str]:
    lines = []
    for study in studies(a):
        lines.append(f"### {study_title(a, study)}\n")
        heads = heads_of(a, study)
        if not heads:
            lines.append("No series of this model could be fitted.\n")
        # A parameter count restates its scheme's axis: said only when it is a law.
        quiet = [h for h in heads if h.series.axis.is_param_count and not h.determined]
        for h in heads:
            if h not in quiet:
                lines.append("- " + axis_sentence(h, a))
        if quiet:
            lines.append("- **Parameter-count laws not determined** (each scheme's own axis above says what its "
                         "runs show): " + "; ".join(f"{axis_word(h).lower()}: {h.reasons[0]}" for h in quiet) + ".")
        for sentence in (_compute_sentence(heads), _schemes_sentence(heads)):
            if sentence:
                lines.append("- " + sentence)
        lines += planted_table(heads, axis_word)
        lines += data_cannot_fix(heads, axis_word)
        checked = [r for r in a.determined if of_study(r.series.group, study) and r.extrapolation]
        for line in (_seed_spread_line(heads), rolling_line(checked, axis_word)):
            if line:
                lines.append(line)
        lines += _joint_lines(a, study)
        lines.append("")
    lr = _lr_line(a)
    if lr:
        lines += [lr, ""]
    return lines
