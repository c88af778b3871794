"""Nothing lost, round three: every job's error is its own outcome, a refused run dir is left
byte-identical, a run is resumed or skipped only on its own data, and the closing table
reports each run's final state.

Jobs run in this process through `runner.job.launch` (tests/harness.py) unless the case is
about the command line itself (Hydra's output, the sweep's closing table).
"""
from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO, cli, compose, compose_hydra, run_job
from test_failure_paths import RUN, _preempted, _summary
from test_sweeps import TINY, _name, _out, _table_rows

pytestmark = pytest.mark.filterwarnings("ignore:.*an autograd kernel was not registered.*:UserWarning")


def _files(run_dir: Path) -> dict[str, bytes]:
    """Every file under the run dir (Hydra's output included) with its bytes; the lock file,
    which says who last took the lock, is the launchers' and not the run's."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".lock")}


# --- an invalid relaunch value never ends a run ------------------------------------------------

def test_a_bad_relaunch_value_leaves_a_resumable_run_resumable(tmp_path, caplog):
    """A result-neutral key (so the run dir is the same one) with a bad value: refused before
    deciding, nothing written over the interrupted run, and the next good relaunch resumes it."""
    import logging

    run_dir = tmp_path / "run"
    _preempted(RUN, run_dir, at_step=6)
    before = _files(run_dir)
    with caplog.at_level(logging.ERROR, logger="dlrm"):
        out = run_job(RUN + ["trainer.checkpoint_every_samples=0"], run_dir)
    assert out["status"] == "refused"
    assert "refused, and the run there is left as it was: trainer.checkpoint_every_samples must be a positive" \
        in caplog.text
    assert _files(run_dir) == before  # still interrupted, its checkpoint untouched
    resumed = run_job(RUN, run_dir)["summary"]
    assert resumed["status"] == "completed" and resumed["resumed_from_samples"] == 6 * 512


def test_a_bad_relaunch_value_leaves_a_completed_run_completed(tmp_path):
    run_dir = tmp_path / "run"
    assert run_job(RUN, run_dir)["status"] == "completed"
    before = _files(run_dir)
    assert run_job(RUN + ["trainer.log_every_samples=0"], run_dir)["status"] == "refused"
    assert _files(run_dir) == before
    assert run_job(RUN, run_dir)["status"] == "skipped"


# --- every per-run error is that run's outcome --------------------------------------------------

def test_a_corrupt_config_yaml_is_that_runs_conflict_not_the_sweeps_end(tmp_path, caplog):
    import logging

    from runner.job import launch

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("model: {embedding_dim: [16\n")
    with caplog.at_level(logging.ERROR, logger="dlrm"):
        assert launch(compose(RUN), run_dir) == "conflict"
    assert f"run directory {run_dir} has an unreadable config.yaml (" in caplog.text
    assert "Restore the file, or delete the directory to start over." in caplog.text
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.yaml"]  # nothing else written


def test_an_unexpected_error_before_training_is_that_runs_failure(tmp_path, monkeypatch, caplog):
    import logging

    from runner import job

    def broken(*args, **kwargs):
        raise KeyError("something no one foresaw")

    monkeypatch.setattr(job, "decide", broken)
    with caplog.at_level(logging.ERROR, logger="dlrm"):
        assert job.launch(compose(RUN), tmp_path / "run") == "failed"
    assert "KeyError: 'something no one foresaw'" in caplog.text


def test_a_sweep_with_a_corrupt_run_dir_goes_on_and_prints_its_closing_table(tmp_path):
    root = tmp_path / "runs" / "multirun"
    good, bad = root / _name(1024, 4), root / _name(1024, 8)
    bad.mkdir(parents=True)
    (bad / "config.yaml").write_text("model: {embedding_dim: [16\n")
    proc = cli(["-m", "model.embedding_dim=4,8", "data.num_train_samples=1024", "model.mlp_width=8", *TINY,
                f"out_root={tmp_path / 'runs'}"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 1, _out(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, _out(proc)
    assert _table_rows(proc.stdout) == {good.name: "completed", bad.name: "conflict"}
    assert _summary(good)["status"] == "completed"


# --- a refused run dir is left byte-identical; only global rank 0 writes Hydra's output -------

def test_a_refused_run_dir_keeps_its_hydra_output_and_log_byte_identical(tmp_path):
    run_dir = tmp_path / "mine"
    args = ["data.num_train_samples=1024", "model.mlp_width=8", *TINY, f"hydra.run.dir={run_dir}"]
    first = cli(args, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, _out(first)
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "data.num_train_samples=1024" in overrides and "model.mlp_width=8" in overrides
    assert "step 2" in (run_dir / "train.log").read_text()  # the job's log, held and then written
    before = _files(run_dir)

    conflict = cli(args + ["trainer.dense_lr=0.37"], cwd=tmp_path, timeout=300)
    assert "trainer.dense_lr: 0.05 -> 0.37" in conflict.stdout, _out(conflict)
    assert _files(run_dir) == before
    skipped = cli(args + ["trainer.progress_bar=false"], cwd=tmp_path, timeout=300)
    assert "completed already, skipped" in skipped.stdout, _out(skipped)
    assert _files(run_dir) == before


def test_only_global_rank_0_saves_hydras_record(tmp_path, monkeypatch):
    from hydra.core.hydra_config import HydraConfig

    from runner.hydra_output import save_hydra_record

    cfg = compose_hydra(["model.mlp_width=8"])
    task_cfg = compose(["model.mlp_width=8"])
    HydraConfig.instance().set_config(cfg)
    try:
        monkeypatch.setenv("RANK", "1")
        save_hydra_record(task_cfg, tmp_path / "rank1")
        assert not (tmp_path / "rank1").exists()
        monkeypatch.setenv("RANK", "0")
        save_hydra_record(task_cfg, tmp_path / "rank0")
        assert sorted(p.name for p in (tmp_path / "rank0" / ".hydra").iterdir()) == \
            ["config.yaml", "hydra.yaml", "overrides.yaml"]
        assert "model.mlp_width=8" in (tmp_path / "rank0" / ".hydra" / "overrides.yaml").read_text()
    finally:
        HydraConfig.instance().cfg = None


# --- a run is resumed or skipped only on the data it trained on -------------------------------

def _preprocessed(tmp_path: Path, name: str, seed: int, table_size: int) -> Path:
    from dlrm.data.criteo.preprocess import preprocess
    from test_train_criteo import _criteo_line

    rng = random.Random(seed)
    raw, out = tmp_path / f"raw_{name}", tmp_path / name
    raw.mkdir()
    (raw / "train.txt").write_text("".join(_criteo_line(rng) for _ in range(7 * 1400)))
    preprocess(str(raw), str(out), "kaggle", num_embeddings_per_feature=[table_size] * 26, workers=1)
    return out


@pytest.fixture(scope="module")
def two_preprocessings(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("criteo")
    # Two preprocessings of other logs with other table sizes (the data id hashes the metadata).
    return _preprocessed(tmp, "a", 0, 97), _preprocessed(tmp, "b", 1, 89)


def _criteo(path: Path) -> list[str]:
    return ["data=criteo_kaggle", f"data.path={path}", "data.num_train_samples=4096", "data.num_eval_samples=512",
            "model.embedding_dim=4", "model.mlp_width=8", "trainer.checkpoint_every_samples=1024"]


def _data_conflict(caplog, run_dir: Path, trained: str, other: str) -> None:
    assert f"run directory {run_dir} holds a run on data {trained}, but this config's data is {other}" in caplog.text


def test_an_interrupted_run_is_not_resumed_on_other_data(two_preprocessings, tmp_path, caplog):
    import logging

    from runner.job import data_id_of

    a, b = two_preprocessings
    id_a, id_b = data_id_of(compose(_criteo(a))), data_id_of(compose(_criteo(b)))
    assert id_a != id_b
    run_dir = tmp_path / "run"
    _preempted(_criteo(a), run_dir, at_step=4)
    before = _files(run_dir)
    with caplog.at_level(logging.ERROR, logger="dlrm"):
        assert run_job(_criteo(b), run_dir)["status"] == "conflict"
    _data_conflict(caplog, run_dir, id_a, id_b)
    assert _files(run_dir) == before  # its checkpoint kept: the run on its own data resumes
    resumed = run_job(_criteo(a), run_dir)["summary"]
    assert resumed["status"] == "completed" and resumed["resumed_from_samples"] == 4 * 512
    assert resumed["data_id"] == id_a


def test_a_completed_run_is_not_skipped_as_done_on_other_data(two_preprocessings, tmp_path, caplog):
    import logging

    from runner.job import data_id_of

    a, b = two_preprocessings
    run_dir = tmp_path / "run"
    done = run_job(_criteo(a), run_dir)["summary"]
    assert done["status"] == "completed"
    with caplog.at_level(logging.ERROR, logger="dlrm"):
        assert run_job(_criteo(b), run_dir)["status"] == "conflict"
    _data_conflict(caplog, run_dir, done["data_id"], data_id_of(compose(_criteo(b))))
    # A run written before data.json existed: its summary's data_id is checked instead.
    (run_dir / "data.json").unlink()
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="dlrm"):
        assert run_job(_criteo(b), run_dir)["status"] == "conflict"
    assert f"holds a run on data {done['data_id']}" in caplog.text
    assert run_job(_criteo(a), run_dir)["status"] == "skipped"


# --- the closing table reads each run's final state ---------------------------------------------

def test_the_closing_table_waits_for_a_run_another_launcher_trains(tmp_path, monkeypatch, capsys):
    """Launcher A found the run locked by launcher B; B completes it after A's last job: A's
    table (and exit status) report it completed, not unfinished."""
    from omegaconf import OmegaConf

    from runner import report

    run_dir = tmp_path / "sweep" / "r"
    run_dir.mkdir(parents=True)
    other = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, json, time\nfrom pathlib import Path\nfrom runner.lock import RunLock\n"
         "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(1.5)\n"
         "    (Path(sys.argv[1]) / 'summary.json').write_text(json.dumps({'status': 'completed', 'eval_ne': 0.5}))\n",
         str(run_dir)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        outcomes = report.Outcomes()
        outcomes.record(run_dir, "locked")
        monkeypatch.setattr(report, "OUTCOMES", outcomes)
        sweep = report.SweepReport()
        sweep.run_dirs = [run_dir]
        sweep.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(run_dir.parent)}}}))
    finally:
        other.wait(timeout=30)
    out = capsys.readouterr().out
    assert _table_rows(out) == {"r": "completed"}
    assert f"sweep {run_dir.parent}: 1 completed" in out
    assert outcomes.exit_code() == 0
