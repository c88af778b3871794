"""Scaling efficiency and planning against closed-form answers."""
import pytest

from analysis.efficiency import compute_margin, scaling_efficiency
from analysis.fit import FitSettings, fit_power_law
from analysis.plan import plan_target, x_needed
from analysis.series import AXES, build_series
from synthetic_runs import World, summary

NOISELESS = World(noise=0.0)


def data_series(world=NOISELESS, seeds=(0,)):
    runs = [summary(world, "dlrm", 16, 128, 2 ** k, s) for k in range(13, 21) for s in seeds]
    (s,), _ = build_series(runs, AXES["data"], "eval_ne")
    return s


def test_efficiency_numbers_match_the_law():
    s = data_series()
    f = fit_power_law(s.x, s.y, FitSettings(n_bootstrap=50))
    a, b = f.alpha, f.beta
    x = 2.0 ** 20
    e = scaling_efficiency(f, s, threshold_per_doubling=0.0015)
    assert b == pytest.approx(NOISELESS.b, rel=1e-6)
    assert e.gain_per_doubling.value == pytest.approx(a * x ** -b * (1 - 2 ** -b), rel=1e-9)
    assert e.gain_next_10x.value == pytest.approx(a * x ** -b * (1 - 10 ** -b), rel=1e-9)
    margin = compute_margin(f, s, x, "its largest size")
    assert margin.x_to == pytest.approx(2 * x)  # FLOPs are proportional to samples
    assert margin.gain.value == pytest.approx(e.gain_per_doubling.value)
    assert e.verdict == "pays"
    lo, hi = e.gain_next_10x.ci95
    v = e.gain_next_10x.value
    assert lo * (1 - 1e-6) <= v <= hi * (1 + 1e-6)  # noiseless: a point interval
    assert scaling_efficiency(f, s, threshold_per_doubling=1.0).verdict == "saturated"


def test_plan_inverts_the_law_and_costs_the_answer():
    s = data_series()
    f = fit_power_law(s.x, s.y, FitSettings(n_bootstrap=50))
    target = 0.74
    p = plan_target(f, s, target, bytes_per_param=4)
    assert p["status"] == "reachable"
    assert f.predict(p["x_needed"]) == pytest.approx(target, rel=1e-12)
    assert p["num_train_samples"] == pytest.approx(p["x_needed"])
    run = s.runs[0]
    assert p["params_total"] == pytest.approx(run["params_total"])
    assert p["embedding_memory_bytes"] == pytest.approx(4 * run["params_embedding"])
    assert p["train_flops"] == pytest.approx(run["flops_per_sample"] * p["x_needed"], rel=1e-9)
    assert p["train_seconds"] == pytest.approx(p["x_needed"] / run["train_samples_per_second"], rel=1e-9)
    assert p["extrapolation_factor"] == pytest.approx(p["x_needed"] / 2 ** 20)


def test_a_target_below_gamma_is_unreachable():
    s = data_series()
    f = fit_power_law(s.x, s.y, FitSettings(n_bootstrap=50))
    p = plan_target(f, s, f.gamma - 0.001)
    assert p["status"] == "unreachable" and p["x_needed"] is None
    assert "levels off above it" in p["reason"]
    assert x_needed(f, f.gamma) == float("inf")
    assert plan_target(f, s, 0.95)["status"] == "reached"  # already measured
