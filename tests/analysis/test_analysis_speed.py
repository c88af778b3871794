"""Speed: the work is batched -- every rolling check is one batched fit,
a series' bootstrap one call -- and spread over the cores without changing a number."""
import json

import numpy as np

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
