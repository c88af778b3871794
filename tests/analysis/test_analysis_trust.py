"""Answers a team can plan on: intervals that do not move with the bootstrap seed, a fit range
chosen by a stated rule, known floors as constraints, a rolling check that can fail, the
compute margin from one model by the FLOP formula, and the planted truth held against the fit."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from analysis.__main__ import main
from analysis.bootstrap import bootstrap_weights, n_exact_resamples
from analysis.extrapolate import rolling_extrapolation
from analysis.fit import FitSettings, fit_power_law
from analysis.pipeline import analyze_series
from analysis.results import Options
from analysis.series import AXES, Series
from synthetic_runs import Config, SchemeWorld, write_v2_sweep

XS = 2.0 ** np.arange(15, 21)  # the demo's data axis: 2^15 .. 2^20


def seeded(law, xs, n_seeds, seed_std, rng, walk_std=0.0):
    """Points of a law for n_seeds seeds, each an offset plus a random walk along x (log space)."""
    x, y, blocks = [], [], []
    for s in range(n_seeds):
        noise = seed_std * rng.normal() + np.cumsum(walk_std * rng.normal(size=len(xs)))
        x += list(xs)
        y += list(law(xs) * np.exp(noise))
        blocks += [s] * len(xs)
    return np.array(x), np.array(y), np.array(blocks)


def data_series(x, y, blocks) -> Series:
    runs = [{"seed": int(b), "num_train_samples": float(v), "eval_ne": float(w), "run_name": f"s{b}_{v:g}"}
            for v, w, b in zip(x, y, blocks)]
    return Series(axis=AXES["data"], metric="eval_ne", group={"model": "dlrm", "data_id": "w"}, runs=runs,
                  x=np.asarray(x, float), y=np.asarray(y, float))


def law(xs):
    return 30.0 * xs ** -0.45 + 0.58


# --------------------------------------------------------------------- the bootstrap
def test_seed_resamples_are_enumerated_exactly_so_the_intervals_do_not_move_with_the_seed():
    rng = np.random.default_rng(0)
    x, y, blocks = seeded(law, XS, 6, 0.002, rng, 0.001)
    w, rejected, prob = bootstrap_weights(x, 1000, rng, blocks=blocks)
    assert len(w) + rejected == n_exact_resamples(6) == 462 and prob.sum() == pytest.approx(1.0)
    # Each resample's probability is the multinomial one: all six seeds once is 6!/6^6.
    once = np.all(w.reshape(len(w), 6, len(XS))[:, :, 0] == 1, axis=1)
    assert prob[once][0] == pytest.approx(math.factorial(6) / 6 ** 6 / prob.sum())
    settings = FitSettings()
    a, b = (fit_power_law(x, y, settings, seed=s, blocks=blocks).ci95() for s in (0, 1))
    assert a == b
    # Random draws of the same 462 resamples move the tails with the seed: the error this removes.
    rand = [bootstrap_weights(x, 1000, np.random.default_rng(s), blocks=blocks, exact=False)[2] for s in (0, 1)]
    assert rand == [None, None]


# --------------------------------------------------------------------- the fit range
def test_a_transient_start_is_left_out_by_the_range_rule_and_named():
    """The demo's data axis: its first eval (2^15) sits 6% above the law the rest follow.
    Fitted through it the gain per doubling moves beyond its interval, so 2^15 is transient."""
    rng = np.random.default_rng(1)
    x, y, blocks = seeded(law, XS, 6, 0.0015, rng, 0.0005)
    y = np.where(x == XS[0], y * 1.06, y)
    res = analyze_series(data_series(x, y, blocks), Options())
    assert res.fit_range.transient_x == [XS[0]] and res.fit_range.x_from == XS[1]
    assert res.determined and res.series.x.min() == XS[1]
    assert res.fit.beta == pytest.approx(0.45, abs=0.1)
    dropped = res.fit_range.checks[0]
    assert not dropped.overlaps and dropped.x_left_out == XS[0]


def test_a_clean_law_keeps_every_point_and_a_law_unstable_at_five_sizes_is_range_sensitive():
    rng = np.random.default_rng(2)
    x, y, blocks = seeded(law, XS, 6, 0.0015, rng, 0.0005)
    clean = analyze_series(data_series(x, y, blocks), Options())
    assert clean.determined and clean.fit_range.transient_x == [] and clean.fit_range.range_check.overlaps
    five = x >= XS[1]
    bent = np.where(x == XS[1], y * 1.06, y)
    res = analyze_series(data_series(x[five], bent[five], blocks[five]), Options())
    assert res.fit_range.range_sensitive and not res.determined and res.efficiency is None
    assert any(r.startswith("range-sensitive: without 65536 the gain per doubling is") and ", with it " in r
               for r in res.reasons)


# --------------------------------------------------------------------- floors
def test_a_known_floor_bounds_gamma_and_a_law_below_it_is_not_determined():
    """A law whose true floor is the Bayes floor, seen through noise, fits a gamma below the
    floor; bounded, gamma stays at or above it; unbounded, a gamma interval wholly below the
    floor is not a law."""
    rng = np.random.default_rng(4)
    floor = 0.58
    x, y, blocks = seeded(lambda v: 3.0 * v ** -0.25 + floor, XS, 6, 0.001, rng)
    y = y * (1 - 0.004 * (np.log2(x) - 15))  # a slow extra decline: the free fit overshoots the floor
    s = data_series(x, y, blocks)
    for r in s.runs:
        r["bayes_ne_realised"] = floor
    free = analyze_series(s, Options(floor_bound=False))
    assert free.fit.gamma < floor
    assert not free.determined and any("lies wholly below the known floor" in r for r in free.reasons)
    bounded = analyze_series(s, Options())
    assert bounded.fit.gamma >= floor - 1e-12 and bounded.fit.ci95()["gamma"][0] >= floor - 1e-12


# --------------------------------------------------------------------- the rolling check
ROLL_XS = 2.0 ** np.arange(2, 7)  # a parameter axis: 5 sizes, 4 to 64


def axis_law(xs):
    return 0.08 * xs ** -0.9 + 0.60


def test_a_break_at_the_largest_size_is_caught_and_a_true_law_is_not_flagged():
    """3 seeds of 5 sizes at the demo's seed noise (0.0014 NE); a break of 0.02 NE at the
    largest size (14 seed sigma) is flagged in every draw; without it, rarely."""
    flags_true, flags_break = 0, 0
    for i in range(20):
        rng = np.random.default_rng(100 + i)
        x, y, blocks = seeded(axis_law, ROLL_XS, 3, 0.0023, rng, 0.0005)
        flags_true += rolling_extrapolation(x, y, FitSettings(), seed=i, blocks=blocks).flagged
        broken = np.where(x == ROLL_XS[-1], y + 0.02, y)
        check = rolling_extrapolation(x, broken, FitSettings(), seed=i, blocks=blocks)
        flags_break += check.flagged
        assert check.relative_error_at_max_factor > 0
    assert flags_break == 20
    assert flags_true <= 2


def test_the_rolling_check_reports_bias_and_error_by_factor():
    x = np.repeat(2.0 ** np.arange(13, 21), 3)
    bent = 5.0 * x ** -0.33 + 0.70 + 0.01 * np.maximum(0.0, np.log2(x) - 17.0)
    check = rolling_extrapolation(x, bent, FitSettings(n_bootstrap=200), seed=0)
    by = {b.factor: b for b in check.by_factor}
    assert set(by) == {2.0, 4.0, 8.0, 16.0} and check.one_signed
    assert all(b.mean_relative_error > 0 and b.mean_abs_relative_error == pytest.approx(b.mean_relative_error)
               for b in by.values())
    assert by[16.0].mean_relative_error > by[2.0].mean_relative_error  # the error grows with the factor


# --------------------------------------------------------------- the margin and the truth
@pytest.fixture(scope="module")
def star(tmp_path_factory):
    """A star design around a base model (dim 16, widths 64, 2^20), 4 seeds everywhere."""
    root = tmp_path_factory.mktemp("star")
    world = SchemeWorld()
    grid = {"embedding_dim": [Config(emb=e) for e in (4, 8, 16, 32, 64)],
            "dense_arch_width": [Config(w_bottom=w) for w in (4, 8, 16, 32, 64)]}
    write_v2_sweep(root / "sweep", world, data_seeds=(0, 1, 2, 3), scheme_seeds=(0, 1, 2, 3), grid=grid)
    out = root / "out"
    assert main([str(root / "sweep"), "--out", str(out), "--no-plots"]) == 0
    return world, json.loads((out / "fits.json").read_text()), (out / "report.md").read_text()


def test_each_scheme_doubles_compute_from_the_data_laws_model(star):
    _, fits, report = star
    emb = next(f for f in fits if f["axis"] == "embedding_dim")
    margin = emb["efficiency"]["compute_margin"]
    assert margin["x_from"] == 16 and "the data law's model" in margin["start"]
    # The affine FLOP model of these runs (no compute_doubling_x recorded): fps(x_to) = 2 fps(16).
    from synthetic_runs import architecture_widths
    fps = lambda d: architecture_widths("dlrm", d, 64, 64, 3)["flops_per_sample"]  # noqa: E731
    assert fps(margin["x_to"]) == pytest.approx(2 * fps(16), rel=1e-6)
    line = next(ln for ln in report.splitlines() if ln.startswith("- **Per doubling of training compute**"))
    assert "from the data law's model" in line


def test_the_recorded_flop_formula_wins_over_the_grid(tmp_path):
    from analysis.efficiency import compute_doubling_x
    runs = [{"embedding_dim": d, "flops_per_sample": 100.0 * d, "compute_doubling_x": {"embedding_dim": 3.0 * d}}
            for d in (4, 8, 16)]
    s = Series(axis=AXES["embedding_dim"], metric="eval_ne", group={}, runs=runs, x=np.array([4.0, 8, 16]),
               y=np.ones(3))
    assert compute_doubling_x(s, 8.0) == (24.0, "the model's FLOP formula")
    for r in runs:
        del r["compute_doubling_x"]
    assert compute_doubling_x(s, 8.0)[0] == pytest.approx(16.0)  # the affine fit: 100 d doubles at 2 d


def test_planted_against_fitted_on_the_grid(star):
    world, fits, report = star
    for axis, planted in (("embedding_dim", world.a_e), ("dense_arch_width", world.a_bottom)):
        p = next(f for f in fits if f["axis"] == axis)["planted"]
        assert p["planted"] == planted
        assert p["oracle_curve_beta"] == pytest.approx(planted, rel=1e-3)  # this world's oracle is the law
        assert p["covers"] is True
    assert "**Planted against fitted**" in report


def test_no_gain_is_stated_past_twice_the_measured_range(star):
    _, fits, _ = star
    bottom = next(f for f in fits if f["axis"] == "dense_arch_width")
    m = bottom["efficiency"]["compute_margin"]
    if m["x_to"] is not None and m["x_to"] > 2 * bottom["x_range"][1]:
        assert not m["stated"] and m["gain"] is None and "past the 2x limit" in m["why_not"]
    else:
        assert m["stated"]
    assert bottom["efficiency"]["gain_next_10x"]["extrapolation_factor"] == 10


def test_a_data_world_seed_of_its_own():
    """Runs of another world draw are another study (data_id), never pooled with the first."""
    w2 = dataclasses.replace(SchemeWorld(), data_id="synthetic-v2-other")
    assert w2.data_id != SchemeWorld().data_id
