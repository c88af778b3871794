"""report.md: the conclusions (analysis.conclusions), then every table.

Everything here is formatting: the numbers come from analysis.results.Analysis and are
rounded only for display (fits.json keeps full precision).
"""
from __future__ import annotations

from collections import defaultdict

from rundir import Status

from analysis.conclusions import axis_word, conclusions, heads_of, studies, study_title
from analysis.determined import BETA_DETERMINED, MIN_DISTINCT_X_DETERMINED, R2_DETERMINED, observed_sentence
from analysis.efficiency import Efficiency
from analysis.fmt import ci, g, nbytes, seconds, table, vci
from analysis.results import Analysis
from analysis.series import AXES


def _side_by_side(a: Analysis) -> list[str]:
    ms = studies(a)
    if len(ms) < 2:
        return []
    heads = {m: {axis_word(h): h for h in heads_of(a, m)} for m in ms}
    names = [n for n in dict.fromkeys(n for m in ms for n in heads[m])]
    rows = []
    for name in names:
        row = [name]
        for m in ms:
            h = heads[m].get(name)
            if h is None:
                row += ["–", "–", "–"]
            elif not h.determined:
                row += ["not determined", "–", "–"]
            else:
                c = h.fit.ci95()
                row += [f"{g(h.fit.beta, 3)} {ci(c['beta'], 3)}", f"{g(h.fit.gamma)} {ci(c['gamma'])}",
                        f"{vci(h.efficiency.gain_per_doubling, 3)} ({h.efficiency.verdict})"]
        rows.append(row)
    header = ["axis"] + [f"{study_title(a, m, with_id=False)} {c}" for m in ms for c in ("β", "γ", "gain per doubling")]
    return ["### Side by side: each model on each data world (largest-scale series of each axis)\n",
            table(header, rows), ""]


def _fits_tables(a: Analysis) -> list[str]:
    lines = []
    for ax in AXES:
        rs = [r for r in a.fitted if r.series.axis.name == ax]
        if not rs:
            continue
        rows = []
        for r in sorted(rs, key=lambda r: (r.series.model, r.series.label)):
            f = r.fit
            sp = r.seed_spread
            spread = g(sp.ne_std_between_seeds, 2) if sp else "1 seed"
            if r.determined:
                c = f.ci95()
                law = [f"{g(f.alpha)} {ci(c['alpha'])}", f"{g(f.beta, 3)} {ci(c['beta'], 3)}",
                       f"{g(f.gamma)} {ci(c['gamma'])}"]
            else:
                law = ["not determined", "–", "–"]
            notes = "; ".join(([] if r.determined else ["not determined: " + "; ".join(r.reasons),
                                                        observed_sentence(r.observed, AXES[ax].label,
                                                                          a.options.metric)]) + r.warnings)
            rows.append([r.series.model, r.series.label, f.n_points] + law +
                        [g(f.r2, 4), spread, f.resampling.kind, notes])
        lines += [f"### {ax}  (x = {AXES[ax].x_field})\n",
                  table(["model", "series", "points", "α [95% CI]", "β [95% CI]", "γ [95% CI]", "R²",
                         "std between seeds", "resampled", "notes"], rows), ""]
    return lines


def _margin_cell(e: Efficiency) -> str:
    mg = e.compute_margin
    if mg is None:
        return "–"
    if not mg.stated:
        return f"not stated: {mg.why_not}"
    return f"{vci(mg.gain, 3)} ({g(mg.x_from)} → {g(mg.x_to, 3)})"


def _efficiency_table(a: Analysis) -> list[str]:
    rows = []
    for r in a.determined:
        e = r.efficiency
        rows.append([r.series.axis.name, r.series.model, r.series.label, g(e.x_max), g(e.ne_at_x_max),
                     vci(e.gain_per_doubling, 3), _margin_cell(e), vci(e.headroom_to_gamma, 3),
                     vci(e.gain_next_10x, 3), e.verdict])
    if not rows:
        return ["No determined law: no efficiency figures.", ""]
    return [table(["axis", "model", "series", "largest x", "at largest x", "gain per 2× x",
                   "gain per 2× compute (from → to)", "− γ", "next 10× (an extrapolation)", "verdict"], rows), ""]


def _rolling_tables(a: Analysis) -> list[str]:
    rows, detail = [], []
    for r in a.determined:
        x = r.extrapolation
        if not x:
            continue
        by = "; ".join(f"{g(b.factor, 3)}×: {100 * b.mean_relative_error:+.2g}% / "
                       f"{100 * b.mean_abs_relative_error:.2g}%" for b in x.by_factor)
        rows.append([r.series.axis.name, r.series.label, x.n_predictions, x.n_outside,
                     f"{100 * x.median_abs_relative_error_one_step:.2g}%", by,
                     "**FLAGGED**" if x.flagged else "ok"])
        for p in x.predictions:
            detail.append([r.series.axis.name, r.series.label, g(p.fit_x_max), g(p.x), g(p.factor, 3),
                           g(p.observed_ne), f"{g(p.predicted_ne)} {ci(p.interval95)}",
                           f"{100 * p.relative_error:+.2g}%", "yes" if p.within else "**no**"])
    if not rows:
        return [f"No determined law has enough x values for the check (needs {a.options.fit.min_distinct_x + 1}).", ""]
    return [table(["axis", "series", "predictions", "outside 95%", "median |error| one step",
                   "by factor: bias / mean |error|", "check"], rows), "",
            "<details><summary>Every prediction</summary>\n",
            table(["axis", "series", "fitted up to x", "predicted x", "factor", "observed", "predicted [95%]",
                   "relative error", "within"], detail), "\n</details>\n"]


def _joint_tables(a: Analysis) -> list[str]:
    if not a.joint:
        return ["No joint law: no scheme was swept together with the data size.", ""]
    rows, split_rows, lines = [], [], []
    for j in a.joint:
        if j.fit is None:
            lines.append(f"- {j.label}: not fitted: {j.skipped}")
            continue
        f, c = j.fit, j.fit.ci95() or {}
        status = "determined" if j.determined else "not determined: " + "; ".join(j.reasons)
        rows.append([j.label, len(j.y)] + [f"{g(v, 3)} {ci(c.get(k), 3)}" for k, v in f.params().items()]
                    + [g(f.r2), g(j.floor), status])
        for row in (j.compute_optimal or []) if j.determined else []:
            split_rows.append([j.label, g(row.budget_flops, 3), f"{g(row.params, 3)} {ci(row.params_ci95, 3)}",
                               f"{g(row.samples, 3)} {ci(row.samples_ci95, 3)}",
                               f"{g(row.ne)} {ci(row.ne_ci95)}",
                               f"extrapolation: {row.extrapolation}" if row.extrapolated else "within the data"])
        for w in j.warnings:
            lines.append(f"- {j.label}: {w}")
    out = []
    if rows:
        out += [table(["group", "points", "E", "A", "a", "B", "b", "R²", "Bayes floor", "status"], rows), ""]
    if split_rows:
        out += ["Compute-optimal split of a FLOP budget C (C = FLOPs per sample(P) × D, FLOPs per sample "
                "regressed on P over the runs), for 1×, 10× and 100× the largest run:\n",
                table(["group", "budget (FLOPs)", "params P*", "samples D*", "at (P*, D*)", "range"], split_rows), ""]
    return out + lines + [""]


def _plan_tables(a: Analysis) -> list[str]:
    out = []
    for t in a.options.targets:
        rows = []
        for p in (p for p in a.plans if p["target"] == t):
            if p["status"] == "unreachable":
                rows.append([p["axis"], p["label"], f"unreachable: {p['reason']}"] + ["–"] * 7)
                continue
            if p.get("x_needed") is None:
                rows.append([p["axis"], p["label"], f"x = 10^{g(p['log10_x_needed'], 4)}: beyond any practical scale"]
                            + ["–"] * 7)
                continue
            status = p["status"] + (" (far beyond the data: not credible)" if p["far_extrapolation"] else "")
            rows.append([p["axis"], p["label"], status, f"{g(p['x_needed'], 3)} {ci(p.get('x_needed_ci95'), 3)}",
                         g(p["extrapolation_factor"], 3), g(p["num_train_samples"], 3), g(p["params_total"], 3),
                         nbytes(p["embedding_memory_bytes"]), g(p["train_flops"], 3), seconds(p["train_seconds"])])
        out += [f"### Target {a.options.metric} = {t}\n",
                table(["axis", "series", "status", "x needed [95% CI]", "× largest measured", "samples", "params",
                       "embedding memory", "training FLOPs", "training time"], rows) if rows else
                "No determined law to plan with.", ""]
    if out:
        out.insert(0, f"Only determined laws are planned with. Costs extrapolate each quantity log-log along the "
                      f"series; embedding memory at {g(a.options.bytes_per_param)} bytes/parameter; training time "
                      f"at the throughput the runs measured (same hardware and world size). An upper CI of '–' "
                      f"means some bootstrap laws never reach the target.\n")
    return out


def _lr_table(a: Analysis) -> list[str]:
    rows = [[r["label"], r["tried_text"], r["winner_text"], "yes" if r["winner_at_edge"] else "no", r["n_runs"]]
            for r in a.lr_envelope]
    return [table(["point", "learning rates tried", "best (per seed)", "best at the edge", "runs"], rows), ""]


def _excluded(a: Analysis) -> list[str]:
    rows = [[r["run_name"], r["state"], r["reason"]] for r in a.table.excluded + a.table.refused]
    if not rows:
        return ["None: every run directory found is a completed run.", ""]
    return [table(["run", "state", "reason"], rows), ""]


def _skipped(a: Analysis) -> list[str]:
    """Skipped series, counted per axis, then listed in full in a collapsed block."""
    by_axis = defaultdict(list)
    for r in a.skipped:
        by_axis[r.series.axis.name].append(r)
    lines = [f"- {ax}: {len(rs)} series with too few distinct {AXES[ax].x_field} values or no fit "
             f"(e.g. {rs[0].skipped})" for ax, rs in by_axis.items()]
    lines += ["", "<details><summary>All skipped series</summary>", ""]
    lines += [f"- {r.skipped}" for r in a.skipped]
    return lines + ["", "</details>", ""]


def render(a: Analysis, figures: list[str]) -> str:
    counts = a.table.counts()
    o = a.options
    kinds = {r.fit.resampling.kind for r in a.fitted}
    resampling = ("whole seeds are resampled where a series has two or more seeds (a seed's trajectory stays "
                  "together; intervals widened for the few seeds, see docs/ANALYSIS.md), runs where it has one "
                  "(fit noise only)") if "seeds" in kinds else "runs are resampled (one seed per series: fit noise only)"
    n_int = a.table.n_intermediate
    lines = [
        "# Scaling-law report\n",
        f"Run directories under {', '.join(f'`{r}`' for r in a.table.roots)}. Metric `{o.metric}`. "
        f"Each law is {o.metric_word}(x) = α·x^−β + γ fitted per series (all other axes fixed), Huber loss "
        f"(δ = {o.fit.huber_delta}) on log {o.metric_word}; 95% intervals from {o.fit.n_bootstrap} bootstrap "
        f"resamples (seed {o.seed}; every distinct resample of up to 7 seeds, weighted exactly): {resampling}. A law is stated only when it is *determined*: ≥ "
        f"{MIN_DISTINCT_X_DETERMINED} distinct x, no parameter at a bound, β's interval inside "
        f"({BETA_DETERMINED[0]}, {BETA_DETERMINED[1]}), γ's not spanning [its lower bound, smallest "
        f"{o.metric_word}], α's not reaching 0, R² ≥ {R2_DETERMINED}, and stable when its smallest x is left out "
        f"(leading x values whose removal moves the law beyond its interval are left out as transient). "
        + ("γ is bounded below by the known Bayes floor (realised labels) where there is one. " if o.floor_bound
           else "γ is not bounded by a known floor (--no-floor-bound). ")
        + "See docs/ANALYSIS.md for the method and how to read this.\n",
        table(["state", "runs"], [[k, v] for k, v in sorted(counts.items(), key=lambda kv: kv[0] != Status.COMPLETED)]),
        f"\nOnly completed runs are data points (plus {n_int} intermediate eval points of runs that allow them); "
        "the others are listed under *Excluded runs*.\n",
        "## Conclusions\n",
    ]
    lines += conclusions(a)
    lines += _side_by_side(a)
    lines += ["## Fitted laws\n"] + _fits_tables(a)
    lines += ["## Scaling efficiency at the margin (determined laws)\n",
              "Gains are the metric at x minus that at a larger x under the fitted law (positive = better), "
              "with 95% intervals. 'Per 2× compute' grows x from its start (the data law's model where the "
              "design allows) to the size at which the model's FLOPs per sample double, by the model's own FLOP "
              "formula; no such gain is stated past 2× the largest measured x. The next 10× is an extrapolation, "
              f"kept for reference. Verdict: 'pays' if the whole interval of the gain per doubling exceeds "
              f"{o.saturation_threshold}, 'saturated' if it is below, else 'uncertain'.\n"]
    lines += _efficiency_table(a)
    lines += ["## Rolling extrapolation check (determined laws)\n",
              "Each law refitted on its smallest k x values, for every k, and asked for the mean at every larger x; "
              "relative error = (observed − predicted) / observed against the extrapolation factor (predicted x / "
              "largest fitted x). Each interval is that of the error from the same seed resamples as the fit (the "
              "prefix refitted and the held-out mean taken on the drawn seeds). Flagged when the farthest "
              "prediction (the largest x, from the smallest prefix) falls outside its interval.\n"]
    lines += _rolling_tables(a)
    lines += ["## Joint law E + A/P^a + B/D^b (per scheme, where the design crosses)\n"] + _joint_tables(a)
    if a.lr_envelope:
        lines += ["## Learning-rate envelope\n"] + _lr_table(a)
    if o.targets:
        lines += ["## Planning\n"] + _plan_tables(a)
    if figures:
        lines += ["## Plots\n"] + [f"![{name}]({name})\n" for name in figures]
    lines += ["## Excluded runs\n"] + _excluded(a)
    if a.skipped:
        lines += ["## Skipped series\n"] + _skipped(a)
    if a.notes:
        lines += ["## Notes\n"] + [f"- {n}" for n in a.notes] + [""]
    return "\n".join(lines) + "\n"

