"""The conclusions of report.md: sentences, each backed by a determined fit.

A conclusion is stated only from a determined law (analysis.determined); an undetermined
one gets "not determined", its reasons and what the data show without a model, never a
number that sits at a bound.  Comparisons ("data buys more than ...") are stated only
when the 95% intervals do not overlap.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional

from analysis.determined import observed_sentence
from analysis.fmt import ci, g, vci
from analysis.results import Analysis, SeriesResult, headline
from analysis.series import AXES, SCHEMES

AXIS_WORDS = {
    "data": "Data", "embedding_dim": "Embedding dimension", "dense_arch_width": "Bottom MLP width",
    "over_arch_width": "Top MLP width", "mlp_width": "Both MLPs' width", "params": "Parameters (total)",
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
        if AXES[ax].is_param_count:
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


def axis_sentence(r: SeriesResult, a: Analysis) -> str:
    if not r.determined:
        return _undetermined_sentence(r, a)
    e, f, s = r.efficiency, r.fit, r.series
    word = axis_word(r)
    m = a.options.metric_word
    head = {"pays": f"**{word}: still pays.**", "saturated": f"**{word}: saturated.**",
            "uncertain": f"**{word}: undecided by these runs.**"}[e["verdict"]]
    cis = f.ci95()
    text = (f"{head} At the largest measured {s.axis.x_field} ({g(e['x_max'])}), doubling it "
            f"lowers {m} by {vci(e['gain_per_doubling'], 3)} ({100 * e['gain_per_doubling_relative']:.2g}%); "
            f"the next 10× is predicted to gain {vci(e['gain_next_10x'], 3)} "
            f"(threshold for 'pays': {g(e['threshold_next_10x'])}). "
            f"Law: β = {g(f.beta, 3)} {ci(cis['beta'], 3)}, γ = {g(f.gamma)} {ci(cis['gamma'])}")
    gap = (r.gamma_vs_floor or {}).get("gamma_minus_floor")
    if gap:
        text += f"; γ − Bayes floor = {vci(gap, 3)}"
    text += f". _(series: {s.label}; {f.n_points} points; intervals: {f.resampling.description})_"
    return text


def _compute_sentence(heads: list[SeriesResult]) -> Optional[str]:
    """What a doubling of compute buys through data against each parameter scheme."""
    rows = [r for r in heads if r.determined and r.efficiency["gain_per_compute_doubling"]
            and r.series.axis.name in ("data",) + SCHEMES]
    if not rows:
        return None
    rows.sort(key=lambda r: -r.efficiency["gain_per_compute_doubling"]["value"])
    parts = [f"{axis_word(r).lower()} {vci(r.efficiency['gain_per_compute_doubling'], 3)}" for r in rows]
    text = "**Per doubling of training compute** at the largest measured scale, NE drops by: " + "; ".join(parts) + "."
    data = next((r for r in rows if r.series.axis.name == "data"), None)
    if data is not None:
        d_lo, d_hi = data.efficiency["gain_per_compute_doubling"]["ci95"] or [None, None]
        verdicts = []
        for r in rows:
            if r is data:
                continue
            o_lo, o_hi = r.efficiency["gain_per_compute_doubling"]["ci95"] or [None, None]
            name = axis_word(r).lower()
            if None in (d_lo, o_hi, d_hi, o_lo):
                verdicts.append(f"against {name}: no intervals, no ranking")
            elif d_lo > o_hi:
                verdicts.append(f"data buys more than {name} (the intervals do not overlap)")
            elif o_lo > d_hi:
                verdicts.append(f"{name} buys more than data (the intervals do not overlap)")
            else:
                verdicts.append(f"against {name} the intervals overlap: no ranking")
        if verdicts:
            text += " " + "; ".join(verdicts)[0].upper() + "; ".join(verdicts)[1:] + "."
    free = [r for r in heads if r.determined and r.efficiency["gain_per_compute_doubling"] is None
            and r.efficiency["compute_elasticity"] is not None and r.series.axis.name in SCHEMES]
    for r in free:
        text += (f" {axis_word(r)}: FLOPs grow slowly with it (d log FLOPs / d log x = "
                 f"{g(r.efficiency['compute_elasticity'], 2)}), so a compute doubling would need more than "
                 f"10× of it; it costs mostly memory, not compute. {_headroom_ranking(r, data)}")
    return text


def _headroom_ranking(r: SeriesResult, data: Optional[SeriesResult]) -> str:
    """A scheme too cheap in FLOPs for a per-compute-doubling figure can still be ranked:
    whatever its compute buys is at most its whole headroom NE(x_max) - gamma (the law's
    gain at infinite x).  Data wins outright when its gain per compute doubling exceeds that."""
    room = r.efficiency["headroom_to_gamma"]
    text = f"Its whole headroom to γ (any amount of it) is {vci(room, 3)}"
    gain = (data.efficiency.get("gain_per_compute_doubling") or {}) if data is not None else {}
    d_lo = (gain.get("ci95") or [None])[0]
    r_hi = (room.get("ci95") or [None, None])[1]
    if d_lo is None or r_hi is None:
        return text + "."
    if d_lo > r_hi:
        return text + ": less than data buys per compute doubling (the intervals do not overlap)."
    return text + ": against data's gain per compute doubling the intervals overlap: no ranking."


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


def _data_cannot_fix(heads: list[SeriesResult]) -> list[str]:
    lines = []
    data = next((h for h in heads if h.series.axis.name == "data"), None)
    if data is not None and data.determined and data.gamma_vs_floor:
        gv = data.gamma_vs_floor
        text = (f"- **What data cannot fix.** With unlimited data this model levels off at γ = {g(data.fit.gamma)} "
                f"{ci(data.fit.ci95()['gamma'])}")
        if "gamma_minus_floor" in gv:
            text += f": {vci(gv['gamma_minus_floor'], 3)} above the Bayes floor {g(gv['floor'])}"
        if "gamma_minus_oracle" in gv:
            text += (f"; its capacity limit (oracle) is {g(gv['oracle'])}, γ − oracle = "
                     f"{vci(gv['gamma_minus_oracle'], 3)}")
        lines.append(text + ". Only a larger or better model removes that share.")
    for h in heads:
        o = h.oracle
        if h.series.axis.name not in SCHEMES or not o or "gap_observed" not in o:
            continue
        gaps = o.get("gap_fitted") or o["gap_observed"]
        src = "fitted" if o.get("gap_fitted") else "observed"
        lines.append(f"- **{axis_word(h)} against the oracle curve** (N = {g(h.series.group.get('num_train_samples'))}): "
                     f"the {src} curve lies {g(min(gaps), 3)}–{g(max(gaps), 3)} above the capacity limit "
                     f"of each size: the part more data would still remove at this N.")
    return lines


def _seed_spread_line(heads: list[SeriesResult]) -> Optional[str]:
    best = None
    for h in heads:
        at = (h.seed_spread or {}).get("at_x_max")
        if at and (best is None or h.series.axis.name == "data"):
            best = (h, at)
    if best is None:
        return None
    h, at = best
    return (f"- **Between-seed spread at the largest point** ({h.series.axis.x_field} = {g(at['x'])}, "
            f"{h.series.label}): NE std {g(at['ne_std'], 2)} over {at['n_seeds']} seeds "
            f"(range {g(at['ne_range'], 2)}, mean {g(at['ne_mean'])}).")


def _rolling_line(a: Analysis, study: Study) -> Optional[str]:
    checks = [r for r in a.determined if of_study(r.series.group, study) and r.extrapolation]
    if not checks:
        return None
    flagged = [r for r in checks if r.extrapolation["flagged"]]
    passed = [r for r in checks if not r.extrapolation["flagged"]]
    text = (f"- **Rolling extrapolation.** {len(checks)} determined laws, each refitted on its smallest k x values "
            f"for every k and asked for every larger x: {len(flagged)} flagged.")
    preds = [p for r in passed for p in r.extrapolation["predictions"]]
    if preds:
        outside = sum(not p["within"] for p in preds)
        worst = max(preds, key=lambda p: abs(p["relative_error"]))
        far = max(preds, key=lambda p: p["factor"])
        text += (f" The other {len(passed)}: {outside} of {len(preds)} predictions outside their 95% interval "
                 f"(about 5% expected); the largest error {100 * worst['relative_error']:+.2g}% at "
                 f"{g(worst['factor'], 3)}× the fitted range, {100 * far['relative_error']:+.2g}% at the farthest "
                 f"factor tested ({g(far['factor'], 3)}×).")
    if flagged:
        text += " Flagged (the data bend away from the law; do not extrapolate these): " + "; ".join(
            f"{axis_word(r).lower()} [{r.series.label}] ({r.extrapolation['n_outside']} of "
            f"{r.extrapolation['n_predictions']} outside, {100 * r.extrapolation['relative_error_at_max_factor']:+.2g}% "
            f"at {g(r.extrapolation['max_factor'], 3)}×)" for r in flagged) + "."
    return text


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
            text += (f" Compute-optimal split: parameters grow as C^{g(ex['params'], 3)} {ci(ex.get('params_ci95'), 3)}, "
                     f"samples as C^{g(ex['samples'], 3)} {ci(ex.get('samples_ci95'), 3)}; at the largest run's "
                     f"budget ({g(c['budget_flops'], 3)} FLOPs) {g(c['params'], 3)} params × {g(c['samples'], 3)} samples")
            text += (f" — an extrapolation ({c['extrapolation']}), not a conclusion" if c["extrapolated"] else "")
            if j.flops_model and j.flops_model["r2"] < 0.8:
                text += f"; indicative only (FLOPs per sample vs parameters r² = {g(j.flops_model['r2'], 2)})"
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
        lines += _data_cannot_fix(heads)
        for line in (_seed_spread_line(heads), _rolling_line(a, study)):
            if line:
                lines.append(line)
        lines += _joint_lines(a, study)
        lines.append("")
    lr = _lr_line(a)
    if lr:
        lines += [lr, ""]
    return lines
