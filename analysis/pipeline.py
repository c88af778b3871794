"""The whole analysis as one pure function of the run table.

analyze(): table -> Analysis (the learning-rate envelope, series, fits, whether each is
determined, efficiency, rolling extrapolation checks, joint laws, plans); no file is
touched (analysis.outputs writes them).
"""
from __future__ import annotations

import json
import zlib
from collections import defaultdict

import numpy as np

import rundir

from analysis.determined import determinedness, observed
from analysis.efficiency import Estimate, scaling_efficiency
from analysis.envelope import lr_envelope
from analysis.errors import FitError
from analysis.extrapolate import rolling_extrapolation
from analysis.fitrange import choose_range, fit_with, from_x, range_sentence
from analysis.margin import attach_margins
from analysis.planted import planted_vs_fitted
from analysis.joint import compute_optimal, crossing, fit_joint, flops_model, split_exponents
from analysis.parallel import run_jobs
from analysis.plan import plan_target
from analysis.results import Analysis, GammaVsFloor, JointResult, Options, SeriesResult
from analysis.runs import RunTable, require_points
from analysis.seeds import seed_spread
from analysis.series import AXES, SCHEMES, Series, build_series, floor_of, oracle_curve, value_of
from analysis.values import freeze, positive

# Fewer runs than this and a bootstrap is a handful of distinct resamples.
MIN_POINTS_FOR_RELIABLE_CI = 6


def _gap(fit, boot_gamma, reference: float) -> Estimate:
    value = fit.gamma - reference
    ci = fit.interval(boot_gamma - reference, value) if boot_gamma is not None else None
    return Estimate(value, ci)


def _compare_gamma(res: SeriesResult) -> None:
    """gamma against the Bayes floor (every axis) and, on the data axis, against the
    capacity limit of the model (oracle_ne): what data cannot fix."""
    fit, s = res.fit, res.series
    boot_gamma = fit.boot[:, 2] if fit.boot is not None else None
    out = GammaVsFloor()
    if res.floor is not None:
        out.floor = res.floor
        out.gamma_minus_floor = _gap(fit, boot_gamma, res.floor)
    if s.axis.name == "data" and res.oracle and len(set(res.oracle.oracle)) == 1:
        out.oracle = res.oracle.oracle[0]
        out.gamma_minus_oracle = _gap(fit, boot_gamma, out.oracle)
    res.gamma_vs_floor = out if out.floor is not None or out.oracle is not None else None


def _oracle_gaps(res: SeriesResult) -> None:
    """Observed (seed mean) and fitted curve minus the oracle curve, per x."""
    o, s = res.oracle, res.series
    if not o:
        return
    means = [float(s.y[s.x == x].mean()) for x in o.x]
    o.observed = means
    o.gap_observed = [m - q for m, q in zip(means, o.oracle)]
    if res.law is not None:
        fitted = [float(v) for v in res.fit.predict(o.x)]
        o.fitted = fitted
        o.gap_fitted = [f - q for f, q in zip(fitted, o.oracle)]


def analyze_series(s: Series, options: Options) -> SeriesResult:
    """One series: its fit range (analysis.fitrange), law, determination, efficiency, rolling
    check and what it says against the floors and the planted truth."""
    known_floor, floor_warning = floor_of(s.runs, options.floor_field)
    floor = known_floor if options.floor_bound else None
    fit_one = fit_with(options, floor, lambda t: t.seed_for(options.seed))
    fitted, fit_range = choose_range(s, fit_one, known_floor)
    res = SeriesResult(series=fitted, warnings=list(s.warnings), floor=known_floor, fit_range=fit_range)
    if floor_warning:
        res.warnings.append(floor_warning)
    s = fitted
    res.oracle = oracle_curve(s, options.oracle_field)
    seed = s.seed_for(options.seed)
    what = f"{s.axis.name} series [{s.label}]"
    blocks = s.blocks()
    try:
        res.fit = fit_one(s)  # the fit the range rule made of these points
    except FitError as e:
        res.skipped = str(e)
        return res
    fit = res.fit
    res.seed_spread = seed_spread(s, options.fit, floor=floor)
    res.determined, res.reasons = determinedness(fit, known_floor=known_floor)
    if fit_range.range_sensitive:
        res.determined = False
        res.reasons.append("range-sensitive: " + range_sentence(fit_range.range_check)
                           + ": the intervals do not overlap, and no smaller range can make a law")
    res.observed = observed(s, res.seed_std)
    _compare_gamma(res)
    _oracle_gaps(res)
    res.planted = planted_vs_fitted(res)
    if res.determined:
        res.efficiency = scaling_efficiency(fit, s, options.saturation_threshold)
        try:
            res.extrapolation = rolling_extrapolation(s.x, s.y, options.fit, seed=seed + [1],
                                                      blocks=blocks, what=what, floor=floor)
        except FitError as e:
            res.warnings.append(f"no rolling extrapolation check: {e}")
    if fit.n_points < MIN_POINTS_FOR_RELIABLE_CI:
        res.warnings.append(f"only {fit.n_points} runs: the bootstrap interval is unreliable")
    if fit.resampling.kind == "runs" and s.n_intermediate:
        res.warnings.append("one seed, points from one trajectory: the interval is fit noise only")
    return res


# The parameter count P of the joint law within each scheme: the parameters the scheme
# scales (a constant embedding part would be an offset no A/P^a can follow).  Runs that name
# no scheme (imported from another tool, or version-1 summaries with counts only) form one
# design per model and data: P = params_total.
JOINT_P_FIELD = {**{a.name: a.joint_params_field for a in rundir.SCALING_AXES if a.is_scheme},
                 "params": "params_total"}

_COUNTS_ONLY_FIELDS = ("model", "data_id", *rundir.TRAINING_SETUP_FIELDS)


def _counts_only(r: dict) -> bool:
    return all(r.get(f) is None for f in SCHEMES) and positive(r.get("params_total")) is not None


def _joint_groups(points: list[dict]) -> dict[tuple, tuple[str, dict, list[dict]]]:
    """Per scaling scheme: the points that share everything but that scheme's x and N; and
    per model and data, the points that give only a parameter count and N."""
    out: dict[tuple, tuple[str, dict, list[dict]]] = {}
    for scheme in SCHEMES:
        fields = tuple(f for f in AXES[scheme].group_fields if f != "num_train_samples")
        p_field = JOINT_P_FIELD[scheme]
        groups: dict[tuple, list[dict]] = defaultdict(list)
        for r in points:
            if positive(r.get(scheme)) and positive(r.get(p_field)) and positive(r.get("num_train_samples")):
                groups[tuple(freeze(value_of(r, f)) for f in fields)].append(r)
        for key, runs in groups.items():
            if len({r[scheme] for r in runs}) < 2:
                continue
            group = {"scheme": scheme, "model": runs[0].get("model"), "data_id": runs[0].get("data_id")}
            group.update({f: runs[0].get(f) for f in (a.summary_field for a in rundir.model_sizes())
                          if f != scheme and f in fields and runs[0].get(f) is not None})
            out[(scheme, key)] = (scheme, group, runs)
    counts: dict[tuple, list[dict]] = defaultdict(list)
    for r in points:
        if _counts_only(r) and positive(r.get("num_train_samples")):
            counts[tuple(freeze(r.get(f)) for f in _COUNTS_ONLY_FIELDS)].append(r)
    for key, runs in counts.items():
        if len({r["params_total"] for r in runs}) >= 2:
            out[("params", key)] = ("params", {"scheme": "params", "model": runs[0].get("model"),
                                               "data_id": runs[0].get("data_id")}, runs)
    return out


def analyze_joint(points: list[dict], options: Options) -> list[JointResult]:
    """One joint law per (model, data, scheme) whose design crosses."""
    return [joint_result(scheme, group, runs, options) for scheme, group, runs in _joint_groups(points).values()]


def joint_result(scheme: str, group: dict, runs: list[dict], options: Options) -> JointResult:
    """The joint law of one scheme's runs, or the reason it is not fitted."""
    P = np.array([r[JOINT_P_FIELD[scheme]] for r in runs], float)
    D = np.array([r["num_train_samples"] for r in runs], float)
    y = np.array([r[options.metric] for r in runs], float)
    res = JointResult(group=group, P=P, D=D, y=y, P_field=JOINT_P_FIELD[scheme])
    res.floor, w = floor_of(runs, options.floor_field)
    if w:
        res.warnings.append(w)
    res.crossing = crossing(P, D)
    if not res.crossing.crosses:
        res.skipped = res.crossing.reason
        return res
    key = json.dumps(group, sort_keys=True, default=str)
    blocks = Series(axis=AXES["data"], metric=options.metric, group=group, runs=runs, x=D, y=y).blocks()
    try:
        res.fit = fit_joint(P, D, y, options.fit, seed=[options.seed, zlib.crc32(key.encode()), 2],
                            what=f"joint law [{res.label}]", blocks=blocks, skip_bootstrap_at_bound=True,
                            floor=res.floor if options.floor_bound else None)
    except FitError as e:
        res.skipped = str(e)
        return res
    res.determined, res.reasons = res.fit.determinedness()
    fps = np.array([positive(r.get("flops_per_sample")) or np.nan for r in runs], float)
    res.flops_model = flops_model(P, fps)
    flops = [f for f in (positive(r.get("train_flops")) for r in runs) if f]
    fm = res.flops_model
    if fm is None or not flops:
        res.warnings.append("no flops_per_sample/train_flops: no compute-optimal split")
    elif fm.k < 0.05:
        res.warnings.append(f"FLOPs per sample barely grow with parameters (exponent {fm.k:.3g}): "
                            "the compute-optimal split is unbounded in parameters")
    else:
        c_max = max(flops)
        res.compute_optimal = compute_optimal(res.fit, fm, [c_max, 10 * c_max, 100 * c_max],
                                              P_range=(P.min(), P.max()), D_range=(D.min(), D.max()))
        res.exponents = split_exponents(res.fit, fm.k)
        if fm.r2 < 0.8:
            res.warnings.append(f"FLOPs per sample follow {res.P_field} loosely (log-log r2 "
                                f"{fm.r2:.2f}): the split is indicative only")
    return res


def _after_transients(group: tuple[str, dict, list[dict]], results: list[SeriesResult]) -> tuple:
    """A joint group without the data sizes below where its world's data laws start."""
    scheme, g, runs = group
    starts = [r.fit_range.x_from for r in results if r.series.axis.name == "data" and r.fit_range
              and r.fit_range.transient_x and r.series.group.get("model") == g.get("model")
              and r.series.group.get("data_id") == g.get("data_id")]
    if not starts:
        return group
    cut = max(starts)
    return scheme, {**g, "num_train_samples_from": cut}, [r for r in runs if r["num_train_samples"] >= cut]


def analyze(table: RunTable, options: Options = Options()) -> Analysis:
    """Everything the report says, computed from the run table (raises only when
    nothing at all can be analysed)."""
    require_points(table)
    unknown = [a for a in options.axes if a not in AXES]
    if unknown:
        raise ValueError(f"unknown axes {unknown}; known: {list(AXES)}")
    points = table.points if options.intermediate else table.finals
    points, envelope = lr_envelope(points, options.metric)
    series, notes = [], list(table.notes)
    for axis_name in options.axes:
        series_list, axis_notes = build_series(points, AXES[axis_name], options.metric)
        notes += axis_notes
        series += series_list
    # Every series is independent: fit them on the cores available.
    def series_task(i: int):
        res = analyze_series(series[i], options)
        res.series = None  # the parent has it: do not send the runs back
        return res

    results = run_jobs(series_task, len(series), options.jobs,
                       order=sorted(range(len(series)), key=lambda i: -len(series[i].runs)))
    for res, s in zip(results, series):
        res.series = from_x(s, res.fit_range.x_from) if res.fit_range else s
    attach_margins(results)

    # The joint laws leave out the data sizes their world's data law found transient.
    groups = [_after_transients(g, results) for g in _joint_groups(points).values()] if options.joint else []
    # Two joint laws already fill two cores: each is a bootstrap of seconds.
    joint = run_jobs(lambda i: joint_result(*groups[i], options), len(groups), options.jobs,
                     order=sorted(range(len(groups)), key=lambda i: -len(groups[i][2])), min_jobs_to_fork=2)
    plans = [plan_target(r.fit, r.series, t, options.bytes_per_param, floor=r.floor)
             for t in options.targets for r in results if r.determined]
    return Analysis(table=table, options=options, series=results, joint=joint, plans=plans, notes=notes,
                    lr_envelope=envelope)
