"""Run dirs of contract version 2 and the scaling schemes: the schemes as axes of their
own, parameter counts only within one scheme, data identity, interrupted runs, the data
axis from intermediate evals, the oracle curve, and recovery of the exponents planted per
axis."""
import csv
import dataclasses
import json

import numpy as np
import pytest

from analysis.__main__ import main
from analysis.runs import load_runs, normalise
from analysis.series import AXES, SCHEMES, build_series
from synthetic_runs import Config, SchemeWorld, World, summary, write_v2_run, write_v2_sweep

QUIET = SchemeWorld(noise_seed=0.0005, noise_walk=0.0002, noise=0.0003)


def test_a_version_1_summary_loads_with_the_widths_derived_from_its_layers():
    s = summary(World(), "dlrm", 16, 128, 2 ** 14, 0)
    assert "rundir_version" not in s and "dense_arch_width" not in s
    r = normalise(s)
    assert r["rundir_version"] == 1 and r["mlp_width"] == 128
    assert r["dense_arch_width"] == 128 and r["over_arch_width"] == 128  # hidden layers [128, 128]
    assert r["data_id"] == "synthetic"  # no data_id: the data set's name
    r = normalise({**s, "dense_arch_layer_sizes": [64, 32, 16]})
    assert r["dense_arch_width"] is None  # hidden layers differ: no single width


def test_runs_of_different_data_are_never_one_series(tmp_path):
    for data_id in ("world-a", "world-b"):
        w = SchemeWorld(data_id=data_id)
        for e in (4, 8, 16, 32, 64):
            write_v2_run(tmp_path / data_id, w, Config(emb=e), 2 ** 14, 0, first_eval_exponent=14)
    table = load_runs([tmp_path])
    series, _ = build_series(table.points, AXES["embedding_dim"], "eval_ne")
    assert sorted(s.group["data_id"] for s in series) == ["world-a", "world-b"]
    assert all(len(s.runs) == 5 for s in series)


def test_runs_of_different_dense_arch_outputs_are_never_one_series(tmp_path):
    w = SchemeWorld()
    for output in ("linear", None):  # None: a summary written before the field, i.e. relu
        for e in (4, 8, 16, 32, 64):
            s = write_v2_run(tmp_path / str(output), w, Config(emb=e), 2 ** 14, 0, first_eval_exponent=14)
            assert "dense_arch_output" not in s
            if output:
                (tmp_path / str(output) / s["run_name"] / "summary.json").write_text(
                    json.dumps({**s, "dense_arch_output": output}))
    series, _ = build_series(load_runs([tmp_path]).points, AXES["embedding_dim"], "eval_ne")
    assert sorted(s.group["dense_arch_output"] for s in series) == ["linear", "relu"]
    assert all(len(s.runs) == 5 for s in series)


def test_an_interrupted_run_is_listed_as_resumable_with_its_progress(tmp_path):
    write_v2_run(tmp_path, SchemeWorld(), Config(), 2 ** 16, 0, status="interrupted")
    (row,) = load_runs([tmp_path]).excluded
    assert row["state"] == "interrupted"
    assert "resumable" in row["reason"] and "samples_seen=" in row["reason"] and "of 65536 samples" in row["reason"]
    assert "unknown status" not in row["reason"]


def test_intermediate_evals_are_data_axis_points_marked_with_their_source(tmp_path):
    s = write_v2_run(tmp_path, QUIET, Config(), 2 ** 16, 3)
    table = load_runs([tmp_path])
    inter = [p for p in table.points if p["intermediate"]]
    assert len(table.finals) == 1 and len(inter) == 6  # 2^10..2^15; 2^16 is the summary itself
    for p in inter:
        assert p["source_run"] == s["run_name"] and p["run_name"].startswith(s["run_name"] + "@")
        assert p["train_flops"] == pytest.approx(s["flops_per_sample"] * p["num_train_samples"])
    (series,), _ = build_series(table.points, AXES["data"], "eval_ne")
    assert series.n_distinct_x == 7 and series.n_intermediate == 6
    # Only the data axis (and the frontier): a parameter axis uses final evals.
    assert not [p for sr in build_series(table.points, AXES["embedding_dim"], "eval_ne")[0] for p in sr.runs
                if p["intermediate"]]


def test_runs_csv_marks_intermediate_points(tmp_path):
    write_v2_run(tmp_path / "s", QUIET, Config(), 2 ** 14, 0)
    out = tmp_path / "out"
    assert main([str(tmp_path / "s"), "--out", str(out), "--bootstrap", "0", "--no-plots"]) == 0
    rows = list(csv.DictReader(open(out / "runs.csv")))
    assert {r["intermediate"] for r in rows} == {"True", "False"}
    assert {"source_run", "intermediate"} <= set(rows[0])


def test_intermediate_evals_are_refused_without_the_flag(tmp_path):
    write_v2_run(tmp_path, QUIET, Config(), 2 ** 14, 0, intermediate_evals_usable=False)
    table = load_runs([tmp_path])
    assert len(table.points) == 1 and not table.n_intermediate
    (row,) = table.refused
    assert row["n_points"] == 4 and "the learning-rate schedule depends on N" in row["reason"]


def test_a_separate_run_replaces_the_intermediate_eval_of_a_longer_one(tmp_path):
    long = write_v2_run(tmp_path, QUIET, Config(), 2 ** 16, 0)
    short = write_v2_run(tmp_path, QUIET, Config(), 2 ** 14, 0, first_eval_exponent=14)
    table = load_runs([tmp_path])
    at_14 = [p for p in table.points if p["num_train_samples"] == 2 ** 14]
    assert len(at_14) == 1 and at_14[0]["run_name"] == short["run_name"] and not at_14[0]["intermediate"]
    from analysis.points import eval_points
    long_at_14 = [p for p in eval_points(tmp_path / long["run_name"]) if p["samples_seen"] == 2 ** 14]
    assert at_14[0]["eval_ne"] == pytest.approx(long_at_14[0]["eval_ne"], rel=1e-12)  # as the contract says
    assert any("agree to 0%" in n for n in table.notes)


@pytest.fixture(scope="module")
def v2_demo(tmp_path_factory):
    """The demo's shape: the base model's intermediate evals as the data axis (4 seeds),
    each scheme over 5 values at the largest N (4 seeds), quiet noise."""
    root = tmp_path_factory.mktemp("v2demo")
    write_v2_sweep(root / "sweep", QUIET, n_max=2 ** 20, data_seeds=(0, 1, 2, 3), scheme_seeds=(0, 1, 2, 3))
    out = root / "out"
    assert main([str(root / "sweep"), "--out", str(out), "--bootstrap", "200"]) == 0
    return out


def test_each_scheme_is_an_axis_and_recovers_its_planted_exponent(v2_demo):
    fits = json.loads((v2_demo / "fits.json").read_text())
    planted = QUIET.planted()
    for axis in ("data", "embedding_dim", "dense_arch_width", "over_arch_width"):
        fs = [f for f in fits if f["axis"] == axis]
        assert fs, axis
        head = max(fs, key=lambda f: (f["resampling"]["n_seeds"], f["x_range"][1]))
        assert head["determined"], (axis, head["undetermined_reasons"])
        lo, hi = head["ci95"]["beta"]
        assert lo <= planted[axis] <= hi, (axis, head["ci95"]["beta"])
        assert 0.02 < lo and hi < 3.5
        assert head["resampling"]["kind"] == "seeds" and head["resampling"]["n_seeds"] == 4


def test_parameter_counts_are_fitted_within_one_scheme_only(v2_demo):
    fits = json.loads((v2_demo / "fits.json").read_text())
    table = load_runs([v2_demo.parent / "sweep"])
    by_name = {p["run_name"]: p for p in table.points}
    param = [f for f in fits if AXES[f["axis"]].is_param_count]
    assert param
    for f in param:
        scheme = f["scheme"]
        assert scheme in SCHEMES and f["group"]["scheme"] == scheme
        runs = [by_name[n] for n in f["runs"]]
        for other in set(SCHEMES) - {scheme, "mlp_width"}:
            assert len({r[other] for r in runs}) == 1, (f["axis"], scheme, other)  # only the scheme varies
    assert {f["scheme"] for f in param if f["axis"] == "params_dense"} <= {"dense_arch_width", "over_arch_width"}
    assert not [f for f in param if f["axis"] == "params_embedding" and f["scheme"] != "embedding_dim"]


def test_the_oracle_curve_and_the_floor_are_compared(v2_demo):
    fits = json.loads((v2_demo / "fits.json").read_text())
    for f in fits:
        if f["axis"] in ("embedding_dim", "dense_arch_width", "over_arch_width"):
            o = f["oracle_curve"]
            assert len(o["x"]) == 5 and len(set(o["oracle"])) == 5
            assert all(g > 0 for g in o["gap_observed"])  # data-limited at this N
        if f["axis"] == "data" and f["determined"]:
            gap = f["gamma_vs_floor"]["gamma_minus_oracle"]
            assert gap["ci95"][0] <= 0.005 and gap["ci95"][1] >= -0.005  # gamma is the capacity limit
            assert f["gamma_vs_floor"]["gamma_minus_floor"]["value"] > 0
    report = (v2_demo / "report.md").read_text()
    assert "against the oracle curve" in report and "capacity limit (oracle, an approximation)" in report
    assert "Between-seed spread at the largest point" in report


def test_the_report_weighs_data_against_each_scheme_per_compute_doubling(v2_demo):
    report = (v2_demo / "report.md").read_text()
    line = next(ln for ln in report.splitlines() if ln.startswith("- **Per doubling of training compute**"))
    assert "data " in line and ("data buys more than" in line or "intervals overlap" in line)


def test_a_joint_law_states_no_split_unless_determined_and_flags_extrapolations(v2_demo):
    joint = json.loads((v2_demo / "joint.json").read_text())
    conclusions = (v2_demo / "report.md").read_text().split("## Conclusions")[1].split("## Fitted laws")[0]
    lines = [ln for ln in conclusions.splitlines() if ln.startswith("- **Joint law (")]
    assert joint and len(lines) == len([j for j in joint if j["params"] is not None])
    assert all(j["crossing"]["crosses"] for j in joint)  # every scheme x data size is a grid here
    for j in joint:
        name = {"embedding_dim": "embedding dimension", "dense_arch_width": "bottom mlp width",
                "over_arch_width": "top mlp width"}[j["scheme"]]
        line = next(ln for ln in lines if f"({name} scheme)" in ln)
        if not j["determined"]:
            assert "not determined" in line and "no compute-optimal split is stated" in line
            assert "C^" not in line
        elif j["compute_optimal"] and j["compute_optimal"][0]["extrapolated"]:
            assert "an extrapolation" in line and "not a conclusion" in line


def test_a_scheme_whose_compute_doubling_is_past_the_range_is_ranked_by_its_whole_headroom():
    """No gain is stated past 2x the largest measured size (a FLOP-cheap bottom MLP needs >10x
    of it for one compute doubling); what any amount of it can buy is at most NE(x) - gamma."""
    from types import SimpleNamespace

    from analysis.conclusions import _rank
    from analysis.efficiency import ComputeMargin, Estimate

    def margin(stated, gain=None, headroom=None):
        return SimpleNamespace(compute_margin=ComputeMargin(x_from=64.0, start="the data law's model", x_to=None,
                                                            x_to_source="", factor_past_range=None, stated=stated,
                                                            gain=gain, headroom=headroom))

    def scheme(lo, hi, stated=False):
        est = Estimate((lo + hi) / 2, [lo, hi])
        return SimpleNamespace(efficiency=margin(stated, est if stated else None, est), determined=True,
                               series=SimpleNamespace(axis=SimpleNamespace(name="dense_arch_width"), group={}))

    data = SimpleNamespace(efficiency=margin(True, Estimate(0.013, [0.009, 0.02])), determined=True)
    assert "data buys more than bottom mlp width's whole headroom" in _rank(data, scheme(0.002, 0.008))
    overlap = _rank(data, scheme(0.002, 0.0095))
    assert "intervals overlap: no ranking" in overlap and "buys more" not in overlap
    assert "bottom mlp width buys more than data" in _rank(data, scheme(0.025, 0.03, stated=True))
    assert "buys more" not in _rank(data, scheme(0.025, 0.03))  # a headroom never outranks data


def test_a_flat_oracle_curve_is_drawn_as_that_axis_answer():
    """The planted world's top width limits no part: its oracle is flat, and the plot shows it
    (it once drew only oracles that vary, so the top axis had no oracle curve)."""
    from types import SimpleNamespace

    from analysis.plots import oracle_line
    from analysis.series import OracleCurve

    flat = SimpleNamespace(oracle=OracleCurve(x=[8, 16, 32], oracle=[0.56, 0.56, 0.56]))
    x, y, label = oracle_line(flat, "eval_ne")
    assert list(x) == [8, 16, 32] and list(y) == [0.56] * 3 and "the same at every size" in label
    falling = SimpleNamespace(oracle=OracleCurve(x=[8, 16], oracle=[0.57, 0.56]))
    assert "the same" not in oracle_line(falling, "eval_ne")[2]
    assert oracle_line(flat, "eval_logloss") is None  # the oracle is an NE
    assert oracle_line(SimpleNamespace(oracle=None), "eval_ne") is None


def test_each_data_world_gets_conclusions_of_its_own(tmp_path):
    """The demo sweeps two worlds (the default and data=synthetic_top): a data law, a
    ranking or a floor of one world must never be stated for, or weighed against, the other."""
    steep = dataclasses.replace(QUIET, data_id="world-steep", B=8.0)
    top = dataclasses.replace(QUIET, data_id="world-top", bayes_ne=0.4, B=1.0, A_top=0.4)
    # One sweep dir holding both worlds, as the demo's.
    write_v2_sweep(tmp_path / "sweep" / "a", steep, data_seeds=(0, 1, 2), scheme_seeds=(0, 1, 2),
                   grid={"embedding_dim": [Config(emb=e) for e in (4, 8, 16, 32, 64)]})
    write_v2_sweep(tmp_path / "sweep" / "b", top, data_seeds=(0, 1, 2), scheme_seeds=(0, 1, 2),
                   grid={"over_arch_width": [Config(w_top=w) for w in (8, 16, 32, 64, 128)]})
    out = tmp_path / "out"
    assert main([str(tmp_path / "sweep"), "--out", str(out), "--bootstrap", "200"]) == 0
    report = (out / "report.md").read_text()
    sections = {}
    for block in report.split("\n### ")[1:]:
        title, _, body = block.partition("\n")
        sections[title.strip()] = body
    assert {"dlrm on synthetic (world-steep)", "dlrm on synthetic (world-top)"} <= set(sections), list(sections)
    for mine, other in (("world-steep", "world-top"), ("world-top", "world-steep")):
        body = sections[f"dlrm on synthetic ({mine})"].split("\n### ")[0]
        data_line = next(ln for ln in body.splitlines() if ln.startswith("- **Data"))
        assert f"data={mine}" in data_line and other not in body
    assert "Top MLP width" in sections["dlrm on synthetic (world-top)"]
    assert "Embedding dimension" not in sections["dlrm on synthetic (world-top)"].split("\n### ")[0]
    # The floor of each world is its own.
    assert "Bayes floor 0.4" in sections["dlrm on synthetic (world-top)"]
    assert "Bayes floor 0.7" in sections["dlrm on synthetic (world-steep)"]


def test_every_training_setup_field_is_a_summary_field_and_keeps_points_and_series_apart():
    import rundir
    from analysis.pipeline import _COUNTS_ONLY_FIELDS
    from analysis.points import IDENTITY_FIELDS
    from analysis.series import GRID_FIELDS

    setup = set(rundir.TRAINING_SETUP_FIELDS)
    assert setup <= set(rundir.SUMMARY_FIELDS)
    assert setup <= set(IDENTITY_FIELDS) and setup <= set(GRID_FIELDS) and setup <= set(_COUNTS_ONLY_FIELDS)


def _three_data_laws(tmp_path, largest_exponent: int):
    """The data axis of three embedding dims at 2^13 .. 2^largest_exponent samples, analysed."""
    from analysis.pipeline import analyze
    from analysis.results import Options
    from analysis.fit import FitSettings
    from synthetic_runs import write_v2_grid_sweep

    write_v2_grid_sweep(tmp_path / "s", QUIET, configs=[Config(emb=e) for e in (8, 16, 32)],
                        sizes=[2 ** e for e in range(13, largest_exponent + 1)])
    return analyze(load_runs([tmp_path / "s"]), Options(fit=FitSettings(n_bootstrap=50), axes=("data",), joint=False))


def test_the_oracle_curves_of_one_plot_share_one_legend_entry(tmp_path, monkeypatch):
    """Three data laws, each with its flat oracle curve: the legend names each law once and
    the oracle once (not one copy of the oracle's sentence per law)."""
    import analysis.plots as plots

    a = _three_data_laws(tmp_path, 18)
    data = [r for r in a.fitted if r.series.axis.name == "data"]
    assert len(data) == 3 and all(r.oracle and r.oracle.oracle for r in data)
    seen = {}

    def finish(ax, fig, path, title, xlabel, ylabel, n_entries):
        seen["labels"] = [t.get_text() for t in ax.legend().get_texts()]
        seen["entries"] = n_entries
        plots.plt.close(fig)
    monkeypatch.setattr(plots, "_finish", finish)
    plots.plot_axis(data, "data", "eval_ne", tmp_path / "ne_vs_data.png")
    oracle = [t for t in seen["labels"] if t.startswith("oracle")]
    assert len(oracle) == 1 and "in each series' colour" in oracle[0]
    assert len(seen["labels"]) == seen["entries"] == 3 + 1 + 1  # three laws, the oracle, the floor


def test_the_rolling_plot_draws_each_axis_as_one_line_of_every_prediction(tmp_path, monkeypatch):
    """Every rolling prediction of the data axis's three series is a point of one line (its
    curves apart by NaN breaks), not one artist per curve."""
    import analysis.plots as plots

    a = _three_data_laws(tmp_path, 19)
    rolling = [r for r in a.determined if r.extrapolation]
    assert len(rolling) == 3
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    plots.plot_rolling(rolling, tmp_path / "rolling.png")
    lines = [ln for ln in figures[0].axes[0].lines if len(ln.get_xdata())]
    assert len(lines) == 1
    x = np.asarray(lines[0].get_xdata(), dtype=float)
    assert np.isfinite(x).sum() == sum(len(r.extrapolation.predictions) for r in rolling)
