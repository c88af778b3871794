"""`python -m analysis` end to end on written run dirs, and each bad input's message."""
import csv
import json
import math

import pytest

from analysis.__main__ import main
from synthetic_runs import summary, write_run, write_sweep

FIT_KEYS = {"axis": str, "metric": str, "group": dict, "n_points": int, "raw_params": dict,
            "raw_ci95": dict, "r2": float, "bayes_ne_realised": float, "determined": bool}
# The axes the demo sweep sweeps (v1 summaries: one MLP width, so the bottom and top widths
# move together and are no series of their own; params_embedding is proportional to the
# embedding dim, the same law).
DEMO_AXES = {"data", "embedding_dim", "mlp_width", "params", "params_dense", "compute"}


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """A demo sweep (2 architectures x 2 seeds), plus one of every kind of bad run and a
    series too short to fit, analysed once."""
    from synthetic_runs import World
    world = World()
    tmp = tmp_path_factory.mktemp("cli")
    sweep = tmp / "sweep"
    good = write_sweep(sweep, world, seeds=(0, 1))
    base = summary(world, "dlrm", 16, 128, 2 ** 13, 7)
    write_run(sweep, "bad_failed", {**base, "status": "failed", "error": "NCCL timeout"})
    write_run(sweep, "bad_diverged", {**base, "status": "diverged", "diverged_step": 300})
    write_run(sweep, "bad_unfinished", None)
    write_run(sweep, "bad_corrupt", None, summary_text='{"status": "compl')
    write_run(sweep, "bad_nan", {**base, "eval_ne": float("nan"), "run_name": "bad_nan"})
    short = [summary(world, "dlrm", 8, 64, 2 ** k, 0) for k in (13, 14, 15)]  # 3 data sizes
    for s in short:
        write_run(sweep, s["run_name"], s)
    out = tmp / "out"
    rc = main([str(sweep), "--out", str(out), "--bootstrap", "100", "--target-ne", "0.75",
               "--target-ne", "0.69"])
    return {"rc": rc, "out": out, "world": world, "n_good": len(good) + len(short)}


def test_command_succeeds_and_writes_every_output(analysed):
    out = analysed["out"]
    assert analysed["rc"] == 0
    for name in ["runs.csv", "excluded.csv", "fits.json", "joint.json", "plan.json", "report.md",
                 "compute_frontier.png", "residuals.png", "rolling_extrapolation.png"] + \
            [f"ne_vs_{a}.png" for a in DEMO_AXES if a != "compute"]:
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_csv_has_one_row_per_completed_run(analysed):
    rows = list(csv.DictReader(open(analysed["out"] / "runs.csv")))
    assert len(rows) == analysed["n_good"]
    assert {"eval_ne_stderr", "sharding", "mlp_depth", "batch_size", "run_dir"} <= set(rows[0])
    excluded = {r["state"] for r in csv.DictReader(open(analysed["out"] / "excluded.csv"))}
    assert excluded == {"failed", "diverged", "unfinished", "corrupt", "invalid"}


def test_fits_json_follows_the_schema(analysed):
    fits = json.loads((analysed["out"] / "fits.json").read_text())
    assert {f["axis"] for f in fits} == DEMO_AXES
    for f in fits:
        for key, typ in FIT_KEYS.items():
            assert isinstance(f[key], typ), (key, f[key])
        assert f["metric"] == "eval_ne" and f["bayes_ne_realised"] == pytest.approx(0.70)
        for p in ("alpha", "beta", "gamma"):
            lo, hi = f["raw_ci95"][p]
            assert math.isfinite(f["raw_params"][p]) and lo <= hi
        assert f["raw_params"]["beta"] > 0 and 0 <= f["raw_params"]["gamma"]
        assert f["n_points"] >= 4
        # An undetermined fit gives no law: no params, no efficiency figures.
        assert (f["params"] is None) == (not f["determined"]) == (f["efficiency"] is None)


def test_data_laws_recover_the_planted_world(analysed):
    """Along data, NE = B D^-b + (bayes + A_model P^-a): the fitted laws find it within
    3 standard deviations of the estimator (0.017 for beta, 0.0052 for gamma, measured
    over 200 draws of this design: 8 data sizes x 2 seeds at 0.3% noise)."""
    world = analysed["world"]
    fits = [f for f in json.loads((analysed["out"] / "fits.json").read_text()) if f["axis"] == "data"]
    assert len(fits) == 4
    from synthetic_runs import architecture
    for f in fits:
        g = f["group"]
        P = architecture(g["model"], g["embedding_dim"], g["dense_arch_width"])["params_total"]
        gamma_true = world.bayes_ne + world.A_of(g["model"]) * P ** -world.a
        assert f["raw_params"]["beta"] == pytest.approx(world.b, abs=0.05)
        assert f["raw_params"]["gamma"] == pytest.approx(gamma_true, abs=0.016)
        # Two seeds resampled as blocks: intervals widened x9.2 (analysis.bootstrap), so a
        # law may be undetermined; a determined one pays.
        assert f["resampling"]["kind"] == "seeds" and f["resampling"]["n_seeds"] == 2
        if f["determined"]:
            assert f["efficiency"]["verdict"] in ("pays", "uncertain")  # data never saturates here
            margin = f["efficiency"]["compute_margin"]  # FLOPs are proportional to samples
            assert margin["x_to"] == pytest.approx(2 * margin["x_from"]) and margin["stated"]
    assert sum(f["determined"] for f in fits) >= 2


def test_parameter_axes_do_not_pay_in_a_world_where_they_saturate(analysed):
    """A saturated axis is no law (4 values, flat) -- no verdict at all."""
    fits = json.loads((analysed["out"] / "fits.json").read_text())
    params = [f for f in fits if f["axis"] in ("embedding_dim", "mlp_width")]
    assert params and not any(f["determined"] for f in params)
    assert all(f["efficiency"] is None for f in params)


def test_report_states_conclusions_and_lists_every_problem(analysed):
    report = (analysed["out"] / "report.md").read_text()
    assert "## Conclusions" in report and "**Data: still pays.**" in report
    assert "**Embedding dimension: not determined** — no law, no verdict" in report
    assert "Per doubling of training compute" in report
    for text in ["failed (error=NCCL timeout)", "diverged (diverged_step=300)", "no summary.json",
                 "corrupt summary.json", "eval_ne is nan", "bad_nan"]:
        assert text in report, text
    assert "3 distinct x values, need at least 4" in report  # the short series, skipped
    for png in analysed["out"].glob("*.png"):
        assert f"]({png.name})" in report


def test_planning_marks_a_target_below_the_floor_unreachable(analysed):
    plans = json.loads((analysed["out"] / "plan.json").read_text())
    below = [p for p in plans if p["target"] == 0.69]  # below the Bayes floor 0.70
    assert below and all(p["status"] == "unreachable" for p in below)
    # Either the law levels off above the target, or (gamma poorly determined) the known
    # Bayes floor rules it out.
    assert all("levels off" in p["reason"] or "Bayes floor" in p["reason"] for p in below)
    # Only determined laws are planned with.
    fits = {f["label"]: f for f in json.loads((analysed["out"] / "fits.json").read_text())}
    assert all(fits[p["label"]]["determined"] for p in plans)
    data = [p for p in plans if p["target"] == 0.75 and p["axis"] == "data"]
    assert data and all(p["status"] in ("reachable", "reached") for p in data)
    for p in data:
        assert p["num_train_samples"] == pytest.approx(p["x_needed"]) and p["train_seconds"] > 0


def test_joint_law_is_not_fitted_on_an_l_shaped_design(analysed):
    """An L-shaped design (data sizes at two models, models at the largest data size)
    crosses in neither direction: the joint law is skipped with the reason."""
    joint = json.loads((analysed["out"] / "joint.json").read_text())
    assert {j["group"]["model"] for j in joint} == {"dcn", "dlrm"}
    for j in joint:
        assert j["params"] is None and "the design does not cross" in j["skipped"]
        assert j["crossing"]["crosses"] is False


def test_no_run_directories_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no run directories found" in capsys.readouterr().err
    assert main([str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such directory" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_no_completed_runs_is_a_clear_error_naming_the_runs(tmp_path, capsys):
    from synthetic_runs import World
    write_run(tmp_path / "s", "r1", {**summary(World(), "dlrm", 16, 128, 2 ** 13, 0), "status": "failed"})
    write_run(tmp_path / "s", "r2", None)
    assert main([str(tmp_path / "s"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no completed runs" in err and "1 failed, 1 unfinished" in err and "/r2: no summary.json" in err


def test_bad_options_are_refused(tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "o"), "--min-points", "3"]) == 2
    assert "--min-points must be >= 4" in capsys.readouterr().err
    assert main([str(tmp_path), "--out", str(tmp_path / "o"), "--axes", "depth"]) == 2


def test_logloss_metric_and_a_sweep_in_progress(tmp_path, demo_sweep):
    """Re-running on a sweep where some runs have not finished: they are listed, the rest
    is fitted; and the log loss can be fitted instead of NE."""
    root, summaries = demo_sweep
    import shutil
    sweep = tmp_path / "sweep"
    shutil.copytree(root, sweep)
    for s in summaries[:5]:
        (sweep / s["run_name"] / "summary.json").unlink()
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out), "--bootstrap", "50", "--no-plots", "--no-joint",
                 "--axes", "data", "--metric", "eval_logloss"]) == 0
    fits = json.loads((out / "fits.json").read_text())
    assert fits and all(f["metric"] == "eval_logloss" and f["axis"] == "data" for f in fits)
    assert all(f["bayes_logloss_realised"] == pytest.approx(0.70 * 0.5623351446188083) for f in fits)
    assert all("bayes_ne_realised" not in f and f["floor_field"] == "bayes_logloss_realised" for f in fits)
    assert "| unfinished | 5 |" in (out / "report.md").read_text()
    assert not list(out.glob("*.png"))


def test_labels_follow_the_metric(tmp_path, demo_sweep):
    """With --metric eval_logloss nothing is called NE or bayes_ne."""
    root, _ = demo_sweep
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--bootstrap", "20", "--no-joint", "--axes", "data",
                 "--metric", "eval_logloss"]) == 0
    assert (out / "logloss_vs_data.png").exists() and not list(out.glob("ne_vs_*"))
    report = (out / "report.md").read_text()
    assert "Each law is log loss(x) = α·x^−β + γ" in report and "![logloss_vs_data.png]" in report
    fits = json.loads((out / "fits.json").read_text())
    assert all(f["floor_field"] == "bayes_logloss_realised" and "bayes_ne_realised" not in f for f in fits)
