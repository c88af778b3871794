"""report.md: conclusions in words with the numbers behind them, then the tables.

Everything here is formatting: the numbers come from analysis.pipeline.Analysis and are
rounded only for display (fits.json keeps full precision).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Optional

from analysis.pipeline import Analysis, SeriesResult, headline
from analysis.series import AXES

AXIS_WORDS = {
    "data": "Data", "params": "Parameters (total)", "params_embedding": "Embedding parameters",
    "params_dense": "Dense parameters", "embedding_dim": "Embedding dimension",
    "mlp_width": "MLP width", "compute": "Compute (frontier)",
}


def _g(v: Any, sig: int = 4) -> str:
    """A number for display: 4 significant digits, scientific when large or small."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    v = float(v)
    if v != v:
        return "nan"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{sig - 1}e}"
    return f"{v:.{sig}g}"


def _ci(ci: Optional[list], sig: int = 4) -> str:
    if not ci:
        return ""
    return f"[{_g(ci[0], sig)}, {_g(ci[1], sig)}]"


def _vci(d: Optional[dict], sig: int = 4) -> str:
    """`value [lo, hi]` for {"value", "ci95"} dicts."""
    if not d:
        return "–"
    return f"{_g(d['value'], sig)} {_ci(d.get('ci95'), sig)}".strip()


def _bytes(n: Optional[float]) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024


def _seconds(s: Optional[float]) -> str:
    if s is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _models(a: Analysis) -> list[str]:
    return sorted({r.series.model for r in a.fitted} | {str(j.group.get("model")) for j in a.joint})


def _by_model_axis(a: Analysis) -> dict[tuple[str, str], list[SeriesResult]]:
    out = defaultdict(list)
    for r in a.series:
        out[(r.series.model, r.series.axis.name)].append(r)
    return out


# ---------------------------------------------------------------- conclusions
def _axis_sentence(r: SeriesResult) -> str:
    e, f, s = r.efficiency, r.fit, r.series
    word = AXIS_WORDS[s.axis.name]
    head = {"pays": f"**{word}: still pays.**", "saturated": f"**{word}: saturated.**",
            "uncertain": f"**{word}: undecided by these runs.**"}[e["verdict"]]
    text = (f"{head} At the largest measured {s.axis.x_field} ({_g(e['x_max'])}), doubling it "
            f"lowers NE by {_vci(e['gain_per_doubling'], 3)} ({100 * e['gain_per_doubling_relative']:.2g}%); "
            f"the next 10× is predicted to gain {_vci(e['gain_next_10x'], 3)} "
            f"(threshold for 'pays': {_g(e['threshold_next_10x'])}). "
            f"Law: β = {_g(f.beta, 3)} {_ci(f.ci95()['beta'], 3) if f.boot is not None else ''}, "
            f"γ = {_g(f.gamma)} {_ci(f.ci95()['gamma']) if f.boot is not None else ''}")
    ci = f.ci95()
    if ci is not None and ci["gamma"][1] - ci["gamma"][0] > 0.5 * f.gamma:
        text += " (γ is not pinned down by these runs)"
    elif r.floor is not None:
        text += f", {_g(f.gamma - r.floor, 3)} above the Bayes floor {_g(r.floor)}"
    text += f". _(series: {s.label}; {f.n_points} runs)_"
    return text


def _compute_sentence(heads: list[SeriesResult]) -> Optional[str]:
    rows = [r for r in heads if r.efficiency and r.efficiency["gain_per_compute_doubling"]]
    if not rows:
        return None
    rows.sort(key=lambda r: -r.efficiency["gain_per_compute_doubling"]["value"])
    parts = [f"{AXIS_WORDS[r.series.axis.name].lower()} {_vci(r.efficiency['gain_per_compute_doubling'], 3)}"
             for r in rows]
    free = [r for r in heads if r.efficiency and r.efficiency["gain_per_compute_doubling"] is None
            and r.efficiency["compute_elasticity"] is not None]
    best = AXIS_WORDS[rows[0].series.axis.name].lower()
    text = ("**Per doubling of training compute** at the largest measured scale, NE drops by: "
            + "; ".join(parts) + f". The best buy per FLOP is {best}")
    if len(rows) > 1:
        lo_best = (rows[0].efficiency["gain_per_compute_doubling"]["ci95"] or [None])[0]
        hi_next = (rows[1].efficiency["gain_per_compute_doubling"]["ci95"] or [None, None])[1]
        runner_up = AXIS_WORDS[rows[1].series.axis.name].lower()
        if lo_best is not None and hi_next is not None and lo_best <= hi_next:
            text += f", though its interval overlaps that of {runner_up}"
        elif lo_best is not None:
            text += f", clear of {runner_up} (the intervals do not overlap)"
    text += "."
    if free:
        text += " " + " ".join(
            f"{AXIS_WORDS[r.series.axis.name]}: FLOPs grow slowly with it (d log FLOPs / d log x = "
            f"{_g(r.efficiency['compute_elasticity'], 2)}), so a compute doubling would need more than "
            f"10× of it; it costs mostly memory, not compute." for r in free)
    return text


def _conclusions(a: Analysis) -> list[str]:
    lines = []
    by = _by_model_axis(a)
    for model in _models(a):
        lines.append(f"### {model}\n")
        heads = [h for h in (headline(by.get((model, ax), [])) for ax in AXES) if h is not None]
        if not heads:
            lines.append("No series of this model could be fitted.\n")
        for h in heads:
            lines.append("- " + _axis_sentence(h))
        sentence = _compute_sentence(heads)
        if sentence:
            lines.append("- " + sentence)
        data = next((h for h in heads if h.series.axis.name == "data"), None)
        if data is not None and data.floor is not None:
            gap = data.fit.gamma - data.floor
            lines.append(f"- **What data cannot fix.** With unlimited data at this model size NE levels off "
                         f"at γ = {_g(data.fit.gamma)} {_ci(data.fit.ci95()['gamma']) if data.fit.boot is not None else ''}: "
                         f"{_g(gap, 3)} above the Bayes floor {_g(data.floor)}, the share only a "
                         f"larger or better model can remove.")
        checks = [r for r in a.fitted if r.series.model == model and r.extrapolation]
        if checks:
            flagged = [r for r in checks if r.extrapolation["flagged"]]
            text = (f"- **Extrapolation check.** {len(checks) - len(flagged)} of {len(checks)} laws, fitted without "
                    f"their largest x, predicted it within their own 95% interval.")
            if flagged:
                text += " Flagged (the data bend away from the law; do not extrapolate these): " + "; ".join(
                    f"{r.series.axis.name} [{r.series.label}] observed {_g(r.extrapolation['observed_ne'])} vs "
                    f"predicted {_g(r.extrapolation['predicted_ne'])} {_ci(r.extrapolation['interval95'])}"
                    for r in flagged) + "."
            lines.append(text)
        for j in a.joint:
            if str(j.group.get("model")) != model or j.fit is None or not j.compute_optimal:
                continue
            c = j.compute_optimal[-1]
            ex = j.exponents
            lines.append(
                f"- **Compute-optimal split (joint law).** Parameters should grow as C^{_g(ex['params'], 3)} "
                f"{_ci(ex.get('params_ci95'), 3)} and samples as C^{_g(ex['samples'], 3)} "
                f"{_ci(ex.get('samples_ci95'), 3)}; at {_g(c['budget_flops'], 3)} FLOPs (100× the largest run) "
                f"the best split is {_g(c['params'], 3)} params × {_g(c['samples'], 3)} samples for NE "
                f"{_g(c['ne'])} {_ci(c.get('ne_ci95'))}"
                + (f" — indicative only: FLOPs per sample follow total parameters loosely "
                   f"(log-log r² = {_g(j.flops_model['r2'], 2)})" if j.flops_model["r2"] < 0.8 else "")
                + ".")
        lines.append("")
    return lines


def _side_by_side(a: Analysis) -> list[str]:
    models = _models(a)
    if len(models) < 2:
        return []
    by = _by_model_axis(a)
    rows = []
    for ax in AXES:
        heads = [headline(by.get((m, ax), [])) for m in models]
        if all(h is None for h in heads):
            continue
        row = [ax]
        for h in heads:
            if h is None:
                row += ["–", "–", "–"]
                continue
            ci = h.fit.ci95()
            row += [f"{_g(h.fit.beta, 3)} {_ci(ci['beta'], 3) if ci else ''}",
                    f"{_g(h.fit.gamma)} {_ci(ci['gamma']) if ci else ''}",
                    f"{_vci(h.efficiency['gain_next_10x'], 3)} ({h.efficiency['verdict']})"]
        rows.append(row)
    header = ["axis"] + [f"{m} {c}" for m in models for c in ("β", "γ", "next 10× gain")]
    return ["### Architectures side by side (largest-scale series of each axis)\n", _table(header, rows), ""]


# ---------------------------------------------------------------- tables
def _fits_tables(a: Analysis) -> list[str]:
    lines = []
    for ax in AXES:
        rs = [r for r in a.fitted if r.series.axis.name == ax]
        if not rs:
            continue
        rows = []
        for r in sorted(rs, key=lambda r: (r.series.model, r.series.label)):
            f, ci = r.fit, r.fit.ci95() or {}
            sp = r.seed_spread or {}
            rows.append([r.series.model, r.series.label, f.n_points,
                         f"{_g(f.alpha)} {_ci(ci.get('alpha'))}",
                         f"{_g(f.beta, 3)} {_ci(ci.get('beta'), 3)}",
                         f"{_g(f.gamma)} {_ci(ci.get('gamma'))}",
                         _g(f.r2, 4), _g(sp.get("ne_std_between_seeds"), 2) if sp else "1 seed",
                         "; ".join(r.warnings) or ""])
        lines += [f"### {ax}  (x = {AXES[ax].x_field})\n",
                  _table(["model", "series", "runs", "α [95% CI]", "β [95% CI]", "γ [95% CI]", "R²",
                          "NE std between seeds", "notes"], rows), ""]
    return lines


def _efficiency_table(a: Analysis) -> list[str]:
    rows = []
    for r in a.fitted:
        e = r.efficiency
        rows.append([r.series.axis.name, r.series.model, r.series.label, _g(e["x_max"]), _g(e["ne_at_x_max"]),
                     _vci(e["gain_per_doubling"], 3), _vci(e["gain_per_compute_doubling"], 3),
                     _vci(e["gain_next_10x"], 3), _vci(e["headroom_to_gamma"], 3), e["verdict"]])
    return [_table(["axis", "model", "series", "largest x", "NE there", "gain per 2× x",
                    "gain per 2× compute", "gain next 10×", "NE − γ", "verdict"], rows), ""]


def _extrapolation_table(a: Analysis) -> list[str]:
    rows = []
    for r in a.fitted:
        x = r.extrapolation
        if not x:
            continue
        rows.append([r.series.axis.name, r.series.label, _g(x["x_held_out"]), x["n_held_out"],
                     _g(x["observed_ne"]), f"{_g(x['predicted_ne'])} {_ci(x['interval95'])}",
                     f"{_g(x['error'], 3)} ({100 * x['relative_error']:.2g}%)",
                     "**FLAGGED**" if x["flagged"] else "ok"])
    if not rows:
        return ["No series has enough x values to hold the largest out (needs "
                f"{a.options.fit.min_distinct_x + 1}).", ""]
    return [_table(["axis", "series", "held-out x", "runs", "observed NE", "predicted [95% interval]",
                    "error (obs − pred)", "check"], rows), ""]


def _joint_tables(a: Analysis) -> list[str]:
    if not a.joint:
        return ["No joint law: no runs with both params_total and num_train_samples.", ""]
    rows, split_rows, lines = [], [], []
    for j in a.joint:
        label = " ".join(f"{k}={v}" for k, v in j.group.items() if v is not None)
        if j.fit is None:
            lines.append(f"- {label}: skipped: {j.skipped}")
            continue
        f, ci = j.fit, j.fit.ci95() or {}
        rows.append([label, len(j.y)] + [f"{_g(v, 3)} {_ci(ci.get(k), 3)}" for k, v in f.params().items()]
                    + [_g(f.r2), _g(j.floor)])
        for c in j.compute_optimal or []:
            split_rows.append([label, _g(c["budget_flops"], 3), f"{_g(c['params'], 3)} {_ci(c.get('params_ci95'), 3)}",
                               f"{_g(c['samples'], 3)} {_ci(c.get('samples_ci95'), 3)}",
                               f"{_g(c['ne'])} {_ci(c.get('ne_ci95'))}"])
        for w in j.warnings:
            lines.append(f"- {label}: {w}")
    out = []
    if rows:
        out += [_table(["group", "runs", "E", "A", "a", "B", "b", "R²", "Bayes floor"], rows), ""]
    if split_rows:
        out += ["Compute-optimal split of a FLOP budget C (C = FLOPs per sample(P) × D, FLOPs per "
                "sample regressed on P over the runs):\n",
                _table(["group", "budget (FLOPs)", "params P*", "samples D*", "NE at (P*, D*)"], split_rows), ""]
    return out + lines + [""]


def _plan_tables(a: Analysis) -> list[str]:
    out = []
    for t in a.options.targets:
        rows = []
        for p in (p for p in a.plans if p["target"] == t):
            if p["status"] == "unreachable":
                rows.append([p["axis"], p["label"], f"unreachable: {p['reason']}",
                             "–", "–", "–", "–", "–", "–", "–"])
                continue
            if p.get("x_needed") is None:
                rows.append([p["axis"], p["label"], f"x = 10^{_g(p['log10_x_needed'], 4)}: beyond any practical scale",
                             "–", "–", "–", "–", "–", "–", "–"])
                continue
            status = p["status"] + (" (far beyond the data: not credible)" if p["far_extrapolation"] else "")
            rows.append([p["axis"], p["label"], status,
                         f"{_g(p['x_needed'], 3)} {_ci(p.get('x_needed_ci95'), 3)}",
                         _g(p["extrapolation_factor"], 3), _g(p["num_train_samples"], 3),
                         _g(p["params_total"], 3), _bytes(p["embedding_memory_bytes"]),
                         _g(p["train_flops"], 3), _seconds(p["train_seconds"])])
        out += [f"### Target {a.options.metric} = {t}\n",
                _table(["axis", "series", "status", "x needed [95% CI]", "× largest measured",
                        "samples", "params", "embedding memory", "training FLOPs", "training time"], rows), ""]
    if out:
        out.insert(0, f"Costs extrapolate each quantity log-log along the series; embedding memory at "
                      f"{_g(a.options.bytes_per_param)} bytes/parameter; training time at the throughput the "
                      f"runs measured (same hardware and world size). An upper CI of '–' means some bootstrap "
                      f"laws never reach the target.\n")
    return out


def _excluded(a: Analysis) -> list[str]:
    rows = [[r["run_name"], r["state"], r["reason"]] for r in a.table.excluded]
    if not rows:
        return ["None: every run directory found is a completed run.", ""]
    return [_table(["run", "state", "reason"], rows), ""]


def _skipped(a: Analysis) -> list[str]:
    """Skipped series, counted per axis (a sweep of one axis leaves many two-point
    'series' along the others), then listed in full in a collapsed block."""
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
    lines = [
        "# Scaling-law report\n",
        f"Run directories under {', '.join(f'`{r}`' for r in a.table.roots)}. Metric `{o.metric}`. "
        f"Each law is NE(x) = α·x^−β + γ fitted per series (all other axes fixed), Huber loss "
        f"(δ = {o.fit.huber_delta}) on log NE; 95% intervals from {o.fit.n_bootstrap} bootstrap "
        f"resamples of runs (seed {o.seed}). See docs/ANALYSIS.md for the method and how to read this.\n",
        _table(["state", "runs"], [[k, v] for k, v in sorted(counts.items(), key=lambda kv: kv[0] != "completed")]),
        "\nOnly completed runs are data points; the others are listed under *Excluded runs*.\n",
        "## Conclusions\n",
    ]
    lines += _conclusions(a)
    lines += _side_by_side(a)
    lines += ["## Fitted laws\n"] + _fits_tables(a)
    lines += ["## Scaling efficiency at the largest measured scale\n",
              "Gains are NE(x_max) − NE(k·x_max) under the fitted law (positive = better), with "
              "bootstrap 95% intervals. 'Per 2× compute' scales x by 2^(1/s), s = d log FLOPs / d log x "
              f"within the series. Verdict: 'pays' if the whole interval of the next-10× gain exceeds "
              f"{o.saturation_threshold}, 'saturated' if it is below, else 'uncertain'.\n"]
    lines += _efficiency_table(a)
    lines += ["## Extrapolation check\n",
              "Each law refitted without the runs at its largest x, then asked to predict them. "
              "Flagged when the observed mean falls outside the refit's 95% interval (bootstrap band "
              "widened by the noise of the held-out mean).\n"]
    lines += _extrapolation_table(a)
    lines += ["## Joint law NE(P, D) = E + A/P^a + B/D^b\n"] + _joint_tables(a)
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
