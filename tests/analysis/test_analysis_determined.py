"""Every fit says whether it is determined; an undetermined one gives no
law, no efficiency figure, no plan and no verdict, and the report says what the data show
instead."""
import json
import re

import numpy as np
import pytest

from analysis.__main__ import main
from analysis.determined import determinedness, observed, observed_sentence
from analysis.fit import FitSettings, fit_power_law
from analysis.series import AXES, build_series
from synthetic_runs import World, summary

SETTINGS = FitSettings(n_bootstrap=200)


def law(x, a=5.0, b=0.33, g=0.70):
    return a * np.asarray(x, float) ** -b + g


def test_a_clean_law_on_eight_sizes_is_determined():
    x = np.repeat(2.0 ** np.arange(13, 21), 2)
    y = law(x) * np.exp(np.random.default_rng(0).normal(0, 0.003, x.size))
    ok, reasons = determinedness(fit_power_law(x, y, SETTINGS, seed=1))
    assert ok and reasons == []


def test_four_distinct_x_are_too_few():
    x = np.repeat(2.0 ** np.arange(13, 17), 3)
    ok, reasons = determinedness(fit_power_law(x, law(x), SETTINGS, seed=1))
    assert not ok and any("4 distinct x values (need 5)" in r for r in reasons)


def test_a_flat_axis_is_not_determined_and_says_why():
    """The demo's embedding-dim finding: NE flat within noise -- beta runs to a bound."""
    rng = np.random.default_rng(3)
    x = np.repeat([4.0, 8, 16, 32, 64, 128], 2)
    y = 0.745 * np.exp(rng.normal(0, 0.001, x.size))
    f = fit_power_law(x, y, SETTINGS, seed=2)
    ok, reasons = determinedness(f)
    assert not ok
    text = " ".join(reasons)
    assert "R²" in text and ("β's 95% interval" in text or "at a bound" in text)


def test_no_bootstrap_means_no_determined_law():
    x = 2.0 ** np.arange(13, 21)
    ok, reasons = determinedness(fit_power_law(x, law(x), n_bootstrap=0))
    assert not ok and "no bootstrap intervals" in reasons[-1]


def test_what_the_data_show_without_a_model():
    runs = [summary(World(noise=0.001), "dlrm", e, 128, 2 ** 20, s) for e in (4, 8, 16, 32) for s in (0, 1)]
    for r in runs:  # a flat axis: only seed noise
        r["eval_ne"] = 0.75 + 0.0004 * (r["seed"] - 0.5) + 0.0001 * (r["embedding_dim"] == 8)
    (s,), _ = build_series(runs, AXES["embedding_dim"], "eval_ne")
    obs = observed(s, seed_std=0.0004)
    assert obs.measurable is False and obs.ne_range == pytest.approx(0.0001)
    text = observed_sentence(obs, AXES["embedding_dim"].label, "eval_ne")
    assert text.startswith("no measurable gain over embedding dimension 4–32: NE range 0.0001 < 2× "
                           "the between-seed std (0.0004)")


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory, demo_sweep):
    """The demo (v1 run dirs, saturating parameter axes) analysed with a target."""
    root, _ = demo_sweep
    out = tmp_path_factory.mktemp("determined") / "out"
    assert main([str(root), "--out", str(out), "--bootstrap", "100", "--no-plots",
                 "--target-ne", "0.75"]) == 0
    return out


def test_fits_json_says_determined_and_an_undetermined_fit_has_no_law(demo_report):
    fits = json.loads((demo_report / "fits.json").read_text())
    assert {f["determined"] for f in fits} == {True, False}
    for f in fits:
        if f["determined"]:
            assert f["params"] and f["efficiency"]["verdict"] in ("pays", "saturated", "uncertain")
            assert f["undetermined_reasons"] == []
        else:
            assert f["params"] is None and f["ci95"] is None and f["efficiency"] is None
            assert f["extrapolation"] is None and f["undetermined_reasons"]
            assert f["observed"]["ne_range"] >= 0


def test_no_plan_from_an_undetermined_fit(demo_report):
    fits = {f["label"]: f for f in json.loads((demo_report / "fits.json").read_text())}
    plans = json.loads((demo_report / "plan.json").read_text())
    assert plans and all(fits[p["label"]]["determined"] for p in plans)
    undetermined = [f for f in fits.values() if not f["determined"]]
    assert undetermined and not any(p["label"] == f["label"] for f in undetermined for p in plans)


def test_the_conclusions_state_nothing_from_an_undetermined_fit(demo_report):
    report = (demo_report / "report.md").read_text()
    conclusions = report.split("## Conclusions")[1].split("## Fitted laws")[0]
    lines = [ln for ln in conclusions.splitlines() if ln.startswith("- **")]
    undetermined = [ln for ln in lines if ": not determined**" in ln]
    assert undetermined
    for ln in undetermined:
        head = ln.split("_(why no law")[0]
        assert not re.search(r"β =|γ =|saturated|still pays|undecided|per doubling", head), ln
        assert "What the data show:" in ln
    # The verdicts that remain are those of determined laws: data and compute here, never
    # a parameter axis of this saturating world.
    verdicts = [ln for ln in lines if re.search(r": (still pays|saturated|undecided by these runs)\.\*\*", ln)]
    assert verdicts and all(ln.startswith(("- **Data:", "- **Compute (frontier):")) for ln in verdicts)
