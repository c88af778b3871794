"""Loading run directories: discovery, statuses, bad runs reported and skipped."""
import csv
import json

import pytest

from analysis.errors import AnalysisInputError
from analysis.runs import find_run_dirs, load_runs, require_points, write_rows_csv
from synthetic_runs import World, summary, write_run


def completed(**kw):
    args = dict(model="dlrm", embedding_dim=16, mlp_width=128, num_train_samples=2 ** 14, seed=0)
    args.update(kw)
    return summary(World(), **args)


def test_discovery_skips_hidden_and_checkpoint_dirs_and_sweep_roots(tmp_path):
    (tmp_path / "config.yaml").write_text("sweep: demo\n")  # a sweep root, not a run
    a = write_run(tmp_path, "a", completed())
    (a / ".hydra" / "config.yaml").write_text("x: 1\n")
    (a / "checkpoint").mkdir()
    (a / "checkpoint" / "config.yaml").write_text("x: 1\n")
    b = write_run(tmp_path / "nested" / "deeper", "b", None, metrics=False)  # config.yaml only
    (tmp_path / ".git" / "r").mkdir(parents=True)
    (tmp_path / ".git" / "r" / "summary.json").write_text("{}")
    (tmp_path / "not_a_run").mkdir()
    assert find_run_dirs(tmp_path) == sorted([a, b])


def test_statuses_are_sorted_into_points_and_exclusions(tmp_path):
    write_run(tmp_path, "ok", completed())
    write_run(tmp_path, "failed", {**completed(), "status": "failed", "error": "CUDA OOM"})
    write_run(tmp_path, "diverged", {**completed(), "status": "diverged", "diverged_step": 120})
    write_run(tmp_path, "running", completed(), summary_text=None, metrics=True)
    (tmp_path / "running" / "summary.json").unlink()
    write_run(tmp_path, "corrupt", None, summary_text='{"status": "completed", "eval_ne": 0.8')
    write_run(tmp_path, "nan", {**completed(), "eval_ne": float("nan")})
    write_run(tmp_path, "inf", {**completed(), "eval_ne": float("inf")})
    write_run(tmp_path, "strange", {**completed(), "status": "paused"})
    write_run(tmp_path, "no_metric", {k: v for k, v in completed().items() if k != "eval_ne"})
    table = load_runs([tmp_path])
    assert [p["run_dir"].split("/")[-1] for p in table.points] == ["ok"]
    reasons = {row["run_dir"].split("/")[-1]: (row["state"], row["reason"]) for row in table.excluded}
    assert reasons["failed"] == ("failed", "failed (error=CUDA OOM)")
    assert reasons["diverged"] == ("diverged", "diverged (diverged_step=120)")
    assert reasons["running"][0] == "unfinished" and "last logged step=20, samples_seen=10240" in reasons["running"][1]
    assert reasons["corrupt"][0] == "corrupt" and "corrupt summary.json" in reasons["corrupt"][1]
    assert reasons["nan"] == ("invalid", "eval_ne is nan (need a finite positive number)")
    assert reasons["inf"] == ("invalid", "eval_ne is inf (need a finite positive number)")
    assert reasons["strange"] == ("invalid", "unknown status 'paused' in summary.json")
    assert reasons["no_metric"] == ("invalid", "completed but eval_ne is missing")
    assert table.counts() == {"completed": 1, "failed": 1, "diverged": 1, "unfinished": 1,
                              "corrupt": 1, "invalid": 4}


def test_a_path_without_runs_or_that_does_not_exist_is_an_error(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(AnalysisInputError, match="no run directories found"):
        load_runs([tmp_path / "empty"])
    with pytest.raises(AnalysisInputError, match="no such directory"):
        load_runs([tmp_path / "typo"])


def test_no_completed_runs_is_an_error_listing_what_was_found(tmp_path):
    write_run(tmp_path, "f1", {**completed(), "status": "failed", "error": "boom"})
    write_run(tmp_path, "u1", None)
    table = load_runs([tmp_path])
    with pytest.raises(AnalysisInputError, match=r"no completed runs.*1 failed, 1 unfinished(.|\n)*/f1: failed \(error=boom\)"):
        require_points(table)


def test_overlapping_sweep_dirs_load_each_run_once(tmp_path):
    write_run(tmp_path / "s", "a", completed())
    assert len(load_runs([tmp_path, tmp_path / "s"]).points) == 1


def test_runs_csv_keeps_every_field_lists_as_json(tmp_path):
    s = {**completed(), "sharding": "table_wise", "new_field": 3}
    write_run(tmp_path / "sw", "a", s)
    table = load_runs([tmp_path / "sw"])
    write_rows_csv(table.points, tmp_path / "runs.csv")
    rows = list(csv.DictReader(open(tmp_path / "runs.csv")))
    assert len(rows) == 1
    assert set(s) <= set(rows[0])
    assert json.loads(rows[0]["dense_arch_layer_sizes"]) == s["dense_arch_layer_sizes"]
    assert float(rows[0]["eval_ne"]) == s["eval_ne"]  # full precision
    assert rows[0]["new_field"] == "3"
