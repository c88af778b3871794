"""Speed: the work is batched -- every rolling check is one batched fit,
a series' bootstrap one call -- and spread over the cores without changing a number."""
import json

import numpy as np
import pytest

import analysis.extrapolate as extrapolate
from analysis.__main__ import main
from analysis.fit import FitSettings
from synthetic_runs import Config, SchemeWorld, write_v2_grid_sweep


def test_a_rolling_check_is_one_batched_fit(monkeypatch):
    calls = []
    real = extrapolate.fit_batch
    monkeypatch.setattr(extrapolate, "fit_batch", lambda *a, **k: calls.append(a[2].shape) or real(*a, **k))
    x = np.repeat(2.0 ** np.arange(13, 21), 2)
    check = extrapolate.rolling_extrapolation(x, 5.0 * x ** -0.33 + 0.7, FitSettings(n_bootstrap=100), seed=0)
    assert check.n_predictions == 10
    assert calls == [(4 * 101, x.size)]  # 4 prefixes x (point fit + 100 resamples), one call


def test_results_do_not_depend_on_the_number_of_processes(tmp_path):
    configs = [Config(emb=e) for e in (4, 8, 16, 32, 64)] + [Config(w_top=w) for w in (16, 32, 128, 256)]
    write_v2_grid_sweep(tmp_path / "s", SchemeWorld(), configs=configs, sizes=[2 ** e for e in range(13, 19)])
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        assert main([str(tmp_path / "s"), "--out", str(out), "--bootstrap", "100", "--jobs", jobs]) == 0
        outs.append(out)
    for name in ("fits.json", "joint.json", "report.md"):
        assert (outs[0] / name).read_text() == (outs[1] / name).read_text(), name
    assert json.loads((outs[0] / "fits.json").read_text())
    assert sorted(p.name for p in outs[0].glob("*.png")) == sorted(p.name for p in outs[1].glob("*.png"))


def test_each_range_of_a_series_is_fitted_once_and_its_law_is_that_fit(monkeypatch):
    """The range rule fits the series and its refit without the smallest x; the law of the
    range it settles on is the fit it made (no second bootstrap of the same points), and has
    the numbers of a fresh fit."""
    import analysis.fitrange as fitrange
    import analysis.pipeline as pipeline
    from analysis.fit import fit_power_law
    from analysis.pipeline import analyze_series
    from analysis.results import Options
    from test_analysis_trust import XS, data_series, law, seeded

    calls = []
    real = fitrange.fit_power_law
    counted = lambda x, *a, **k: calls.append(x.min()) or real(x, *a, **k)  # noqa: E731
    monkeypatch.setattr(fitrange, "fit_power_law", counted)
    monkeypatch.setattr(pipeline, "fit_power_law", counted, raising=False)  # a fitter of its own, if any
    x, y, blocks = seeded(law, XS, 3, 0.0015, np.random.default_rng(1), 0.0005)
    y = np.where(x == XS[0], y * 1.06, y)  # a transient first size: the rule drops it
    options = Options(fit=FitSettings(n_bootstrap=100))
    res = analyze_series(data_series(x, y, blocks), options)
    assert res.fit_range.transient_x == [XS[0]]
    assert sorted(calls) == [XS[0], XS[1], XS[2]]  # all, without 2^15, without 2^15 and 2^16
    fresh = fit_power_law(res.series.x, res.series.y, options.fit, seed=res.series.seed_for(options.seed),
                          blocks=res.series.blocks())
    assert (res.fit.alpha, res.fit.beta, res.fit.gamma) == (fresh.alpha, fresh.beta, fresh.gamma)
    np.testing.assert_array_equal(res.fit.boot, fresh.boot)


def test_a_series_that_cannot_be_fitted_fails_the_same_way_twice():
    from analysis.errors import FitError
    from analysis.fitrange import fit_with
    from analysis.results import Options
    from test_analysis_trust import XS, data_series

    fit_one = fit_with(Options(), None, lambda s: [0, 1])
    s = data_series(XS[:3], 1.0 / XS[:3], [0, 0, 0])  # three sizes: too few for a law
    for _ in range(2):  # the second time from the fitter's memory
        with pytest.raises(FitError, match="3 distinct x values"):
            fit_one(s)
