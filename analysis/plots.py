"""PNG plots: the metric against each axis with the determined laws and their 95% bands
(and, where known, the capacity limit per x: the oracle curve), the compute frontier,
residuals, the rolling extrapolation errors and the joint law.  Names and axis titles
follow the metric (ne_vs_data.png, logloss_vs_data.png).  Agg backend: no display."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import (FixedLocator, FormatStrFormatter, MaxNLocator,  # noqa: E402
                               NullFormatter)

from analysis.parallel import run_jobs  # noqa: E402
from analysis.results import METRIC_SHORT, METRIC_WORDS  # noqa: E402
from analysis.series import AXES, short_value  # noqa: E402

_DPI = 110
_MODEL_MARKERS = ("o", "s", "^", "D", "v", "P")
_MODEL_LINESTYLES = ("-", "--", "-.", ":")


def _styles(models):
    order = sorted({str(m) for m in models})
    return ({m: _MODEL_MARKERS[i % len(_MODEL_MARKERS)] for i, m in enumerate(order)},
            {m: _MODEL_LINESTYLES[i % len(_MODEL_LINESTYLES)] for i, m in enumerate(order)})


# More laws than this in one plot and their bands only hide each other: drawn without.
MAX_BANDS = 8


def _curve(ax, fit, color, ls, x_lo, x_hi, label, band=True):
    """Fitted law over the measured range (solid) and one decade beyond (thin), with
    the pointwise 95% bootstrap band (as wide as the fit's intervals: see
    analysis.bootstrap)."""
    xs = np.geomspace(x_lo, x_hi * 10, 160)
    inside = xs <= x_hi
    ys = fit.predict(xs)
    ax.plot(xs[inside], ys[inside], ls, color=color, lw=1.6, label=label)
    ax.plot(xs[~inside], ys[~inside], ls, color=color, lw=0.8, alpha=0.7)
    if band and fit.boot is not None:
        lo, hi = fit.resampling.band(fit.predict_boot(xs), ys)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.15, lw=0)


def _floors(ax, results):
    floors = sorted({round(r.floor, 12) for r in results if r.floor is not None})
    for i, f in enumerate(floors):
        ax.axhline(f, color="k", ls=":", lw=1.0, label="Bayes floor" if i == 0 else None)


def oracle_line(r, metric: str):
    """(x, oracle, label) of a model axis' capacity limit per size, or None where unknown.  A
    flat one is drawn too: it is that axis' known answer (e.g. the planted world's top width,
    which limits no part), not a missing curve."""
    o = r.oracle
    if metric != "eval_ne" or not o or not o.oracle:
        return None
    flat = len(set(o.oracle)) == 1
    return o.x, o.oracle, "oracle (capacity limit per size" + (": the same at every size)" if flat else ")")


def _finish(ax, fig, path, title, xlabel, ylabel, n_entries):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
    # NE spans well under a decade: label a few round values instead of 10^k.
    lo, hi = ax.get_ylim()
    ticks = [t for t in MaxNLocator(7).tick_values(lo, hi) if lo <= t <= hi and t > 0]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%.3g"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    # Legend under the axes; the figure grows with it so the axes keep their size.
    legend_in = 0.17 * n_entries + 0.1
    fig.set_size_inches(8.5, 4.6 + legend_in)
    fig.subplots_adjust(left=0.1, right=0.97, top=1 - 0.45 / (4.6 + legend_in),
                        bottom=(legend_in + 0.75) / (4.6 + legend_in))
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, -0.12), frameon=False)
    fig.savefig(path, dpi=_DPI, pil_kwargs={"compress_level": 3})
    plt.close(fig)


def short_labels(series_list) -> list[str]:
    """Legend labels naming only what differs between the series of one plot."""
    keys = [k for k in series_list[0].group if k == "model" or
            len({str(s.group.get(k)) for s in series_list}) > 1]
    return [" ".join(f"{k}={short_value(s.group.get(k))}" if k != "model" else str(s.group.get(k))
                     for k in keys if s.group.get(k) is not None) for s in series_list]


def plot_axis(results, axis_name: str, metric: str, path: Path) -> None:
    axis = AXES[axis_name]
    word = METRIC_WORDS.get(metric, metric)
    markers, styles = _styles(r.series.model for r in results)
    fig, ax = plt.subplots()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = short_labels([r.series for r in results])
    entries = 1
    bands = sum(r.law is not None for r in results) <= MAX_BANDS
    oracles = []  # (label, colour) of each oracle curve drawn
    for i, (r, label) in enumerate(zip(results, labels)):
        s, color = r.series, colors[i % len(colors)]
        ax.scatter(s.x, s.y, s=14, color=color, marker=markers[s.model], alpha=0.8, zorder=3,
                   label=None if r.determined else f"{label}: not determined (no law)")
        f = r.law
        if f is not None:
            _curve(ax, f, color, styles[s.model], f.x_min, f.x_max, f"{label}: β={f.beta:.3g}, γ={f.gamma:.4g}",
                   band=bands)
        entries += 1
        line = oracle_line(r, metric)
        if line is not None:
            ax.plot(*line[:2], "--", color=color, lw=1.0, alpha=0.8, marker="x", ms=4)
            oracles.append((line[2], color))
    if oracles:
        # One legend entry for all oracle curves (each in its series' colour): one per
        # series would double the legend with copies of one sentence.
        words = {w for w, _ in oracles}
        label = words.pop() if len(words) == 1 else "oracle (capacity limit per size)"
        color = oracles[0][1] if len(oracles) == 1 else "0.35"
        ax.plot([], [], "--", color=color, lw=1.0, marker="x", ms=4,
                label=label + (", in each series' colour" if len(oracles) > 1 else ""))
        entries += 1
    _floors(ax, results)
    _finish(ax, fig, path, f"{word} vs {axis.label}: α·x^-β + γ (determined laws)"
            + (" with 95% bootstrap band" if bands else f" (bands omitted: more than {MAX_BANDS} laws)"),
            f"{axis.label}  [{axis.x_field}]", f"{word} [{metric}]", entries)


def plot_frontier(results, metric: str, path: Path) -> None:
    markers, styles = _styles(r.series.model for r in results)
    fig, ax = plt.subplots()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = short_labels([r.series for r in results])
    for i, (r, label) in enumerate(zip(results, labels)):
        s, color = r.series, colors[i % len(colors)]
        cloud = s.cloud or []
        ax.scatter([c["train_flops"] for c in cloud], [c[metric] for c in cloud], s=10,
                   color=color, marker=markers[s.model], alpha=0.25, zorder=2)
        ax.scatter(s.x, s.y, s=22, color=color, marker=markers[s.model], edgecolor="k",
                   lw=0.5, zorder=3, label=f"{label}: frontier runs")
        f = r.law
        if f is not None:
            _curve(ax, f, color, styles[s.model], f.x_min, f.x_max, f"{label}: β={f.beta:.3g}, γ={f.gamma:.4g}")
    _floors(ax, results)
    word = METRIC_WORDS.get(metric, metric)
    _finish(ax, fig, path, f"Compute frontier: lowest {word} per FLOP budget (faint: all runs)",
            "training FLOPs  [train_flops]", f"{word} [{metric}]", 2 * len(results) + 1)


def plot_residuals(results, path: Path, huber_delta: float) -> None:
    """log(NE) - log(fit) per run, one panel per axis: structure here means the form
    does not fit; points beyond the dotted lines are down-weighted by the Huber loss."""
    by_axis = defaultdict(list)
    for r in results:
        by_axis[r.series.axis.name].append(r)
    names = [a for a in AXES if a in by_axis]
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name in zip(axes.flat, names):
        # One collection per panel (each point in its series' colour, drawn in series order):
        # one artist per series costs more to draw than the points themselves.
        rs = by_axis[name]
        ax.scatter(np.concatenate([r.series.x for r in rs]),
                   np.concatenate([np.log(r.series.y) - np.log(r.fit.predict(r.series.x)) for r in rs]), s=10,
                   color=[colors[i % len(colors)] for i, r in enumerate(rs) for _ in r.series.x], alpha=0.8)
        ax.axhline(0, color="k", lw=0.8)
        for sign in (-1, 1):
            ax.axhline(sign * huber_delta, color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # minor labels collide on short ranges
        ax.set_title(AXES[name].label, fontsize=9)
        ax.set_ylabel("log residual", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.25)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle("Residuals of the per-series fits (log metric − log fit)", fontsize=10)
    # Fixed margins: tight_layout measures every tick label and costs ~1 s here.
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.08, top=1 - 0.6 / (3.2 * rows),
                        wspace=0.35, hspace=0.45)
    fig.savefig(path, dpi=_DPI, pil_kwargs={"compress_level": 3})
    plt.close(fig)


def plot_joint(joint_results, metric: str, path: Path) -> None:
    """Observed vs joint-law NE per model (points on the diagonal: the law fits)."""
    fitted = [j for j in joint_results if j.fit is not None]
    fig, axes = plt.subplots(1, len(fitted), figsize=(4.5 * len(fitted), 4.2), squeeze=False)
    for ax, j in zip(axes.flat, fitted):
        pred = j.fit.predict(j.P, j.D)
        sc = ax.scatter(pred, j.y, c=np.log2(j.D), s=14, cmap="viridis")
        lo, hi = min(pred.min(), j.y.min()), max(pred.max(), j.y.max())
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        f = j.fit
        ax.set_title(f"{j.group.get('model')} {j.group.get('scheme')}: E={f.E:.4g}, a={f.a:.3g}, b={f.b:.3g}"
                     + ("" if j.determined else " (not determined)"), fontsize=9)
        ax.set_xlabel(f"joint law E + A/P^a + B/D^b", fontsize=8)
        ax.set_ylabel(f"observed {metric}", fontsize=8)
        fig.colorbar(sc, ax=ax, label="log2 samples")
    fig.subplots_adjust(left=0.1, right=0.95, bottom=0.13, top=0.9, wspace=0.35)
    fig.savefig(path, dpi=_DPI, pil_kwargs={"compress_level": 3})
    plt.close(fig)


def plot_rolling(results, path: Path) -> None:
    """|relative error| of every rolling prediction against its extrapolation factor."""
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = sorted({r.series.axis.name for r in results}, key=list(AXES).index)

    def err(p):  # in per cent, floored so that log axes can show an exact prediction
        return max(100 * abs(p.relative_error), 1e-3)
    # One line (its fits' curves apart by NaN breaks) and one set of crosses per axis: an
    # artist per curve costs more to draw than its few points.
    for i, name in enumerate(names):
        color = colors[i % len(colors)]
        xs, ys, out = [], [], []
        for r in results:
            if r.series.axis.name != name:
                continue
            preds = sorted(r.extrapolation.predictions, key=lambda p: p.factor)
            for k in sorted({p.n_fit_x for p in preds}):
                ps = [p for p in preds if p.n_fit_x == k]
                xs += [p.factor for p in ps] + [np.nan]
                ys += [err(p) for p in ps] + [np.nan]
            out += [p for p in preds if not p.within]
        ax.plot(xs, ys, "-o", color=color, lw=0.7, ms=2.5, alpha=0.5)
        ax.scatter([p.factor for p in out], [err(p) for p in out], marker="x", color=color, s=28, zorder=3)
        ax.plot([], [], "-o", ms=2.5, color=color, label=AXES[name].label)  # a legend entry at full strength
    ax.scatter([], [], marker="x", color="k", label="outside its 95% interval")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("extrapolation factor (predicted x / largest fitted x)")
    ax.set_ylabel("|relative error| (%)")
    ax.set_title("Rolling extrapolation: fit on the smallest k x values, predict every larger one", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.12, top=0.92)
    fig.savefig(path, dpi=_DPI, pil_kwargs={"compress_level": 3})
    plt.close(fig)


def write_all(a, out_dir: Path) -> list[Path]:
    """Every plot the analysis supports (drawn on the cores available); returns the paths."""
    out_dir = Path(out_dir)
    jobs = []  # (path, function, args)
    short = METRIC_SHORT.get(a.options.metric, a.options.metric)
    metric = a.options.metric
    by_axis = defaultdict(list)
    for r in a.fitted:
        by_axis[r.series.axis.name].append(r)
    for name in AXES:
        if not by_axis.get(name):
            continue
        if name == "compute":
            jobs.append((out_dir / "compute_frontier.png", plot_frontier, (by_axis[name], metric)))
        else:
            jobs.append((out_dir / f"{short}_vs_{name}.png", plot_axis, (by_axis[name], name, metric)))
    if a.determined:
        jobs.append((out_dir / "residuals.png", lambda res, path: plot_residuals(res, path, a.options.fit.huber_delta),
                     (a.determined,)))
    rolling = [r for r in a.determined if r.extrapolation]
    if rolling:
        jobs.append((out_dir / "rolling_extrapolation.png", plot_rolling, (rolling,)))
    if any(j.fit is not None for j in a.joint):
        jobs.append((out_dir / "joint_law.png", plot_joint, (a.joint, METRIC_WORDS.get(metric, metric))))

    def draw(i: int) -> None:
        path, fn, args = jobs[i]
        fn(*args, path)
    run_jobs(draw, len(jobs), a.options.jobs, min_jobs_to_fork=3)
    return [path for path, _, _ in jobs]
