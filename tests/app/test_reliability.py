"""Nothing lost: kill -9 and resume, SIGTERM preemption, divergence, corrupt checkpoints."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import REPO, cli, run_job

# 256 steps of 512, a checkpoint every 16 steps: room for three kills at distinct checkpoints.
RUN = ["data.num_train_samples=131072", "data.num_eval_samples=32768", "trainer.log_every_samples=4096",
       "trainer.checkpoint_every_samples=8192"]


def _start(run_dir: Path, extra: list[str] = ()) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "dlrm.train", *RUN, *extra, f"hydra.run.dir={run_dir}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(predicate, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def _state(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / "checkpoint" / "latest" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _kill_all_mentioning(text: str) -> None:
    """SIGKILL every process whose command line mentions `text` (torchrun starts ranks in new sessions)."""
    for pid_dir in Path("/proc").iterdir():
        try:
            if pid_dir.name.isdigit() and text in (pid_dir / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(pid_dir.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict:
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    proc = _start(run_dir)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    return json.loads((run_dir / "summary.json").read_text())


@pytest.mark.slow
def test_sigkill_at_random_steps_resumes_to_the_same_result(uninterrupted, tmp_path):
    rng = random.Random(1234)
    run_dir = tmp_path / "run"
    kills = []
    for _ in range(3):
        proc = _start(run_dir)
        seen = (_state(run_dir) or {}).get("samples_seen", 0)
        # wait until this process has checkpointed past where the last one stopped, then a random extra beat
        _wait_for(lambda: (_state(run_dir) or {}).get("samples_seen", 0) > seen or proc.poll() is not None)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills.append((_state(run_dir) or {}).get("samples_seen"))
        assert not (run_dir / "summary.json").exists()  # a killed run never looks finished
    proc = _start(run_dir)
    assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["status"] == "completed"
    assert resumed["resumed_from_samples"] > 0
    assert sorted(kills) == kills and kills[-1] > kills[0]  # each kill came later in the run
    # Bit-identical on CPU, 1 rank, fixed seed: the data stream is a function of the sample index
    # and the checkpoint holds every table row and optimizer state.
    assert resumed["eval_ne"] == uninterrupted["eval_ne"]
    assert resumed["eval_auc"] == uninterrupted["eval_auc"]
    points = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train_points = [p["samples_seen"] for p in points if "train_loss" in p]
    assert train_points == sorted(set(train_points))  # no point logged twice across restarts


@pytest.mark.slow
def test_sigterm_checkpoints_marks_interrupted_and_exits_for_requeue(uninterrupted, tmp_path):
    from dlrm.checkpoint import REQUEUE_EXIT_CODE

    run_dir = tmp_path / "run"
    proc = _start(run_dir, ["trainer.checkpoint_every_samples=null"])  # only the signal checkpoints
    _wait_for(lambda: (run_dir / "metrics.jsonl").exists() and (run_dir / "metrics.jsonl").stat().st_size > 0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == REQUEUE_EXIT_CODE
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    state = _state(run_dir)
    assert state and 0 < state["samples_seen"] < 131072
    proc = _start(run_dir, ["trainer.checkpoint_every_samples=null"])  # the requeued job
    assert proc.wait(timeout=300) == 0
    done = json.loads((run_dir / "summary.json").read_text())
    assert done["status"] == "completed" and done["resumed_from_samples"] == state["samples_seen"]
    assert done["eval_ne"] == uninterrupted["eval_ne"]


def test_nan_loss_marks_the_run_diverged_and_the_sweep_goes_on(tmp_runs):
    proc = cli(["-m", "faults.nan_at_step=null,3", "data.num_train_samples=4096", "data.num_eval_samples=4096",
                "model.embedding_dim=4", "model.mlp_width=8", f"out_root={tmp_runs}"], cwd=REPO)
    assert proc.returncode != 0  # a diverged run makes the sweep's exit status non-zero
    summaries = {p.parent.name: json.loads(p.read_text()) for p in (tmp_runs / "multirun").glob("*/summary.json")}
    assert sorted(s["status"] for s in summaries.values()) == ["completed", "diverged"]
    diverged = next(s for s in summaries.values() if s["status"] == "diverged")
    assert diverged["diverged_step"] == 4 and "diverged" in diverged["error"]
    assert "diverged" in proc.stdout  # the closing table lists it


def test_corrupt_checkpoint_is_refused_with_the_fix(tmp_path):
    run_dir = tmp_path / "run"
    latest = run_dir / "checkpoint" / "latest"
    latest.mkdir(parents=True)
    (latest / "state.json").write_text('{"samples_seen": 1024, "step": 2}')
    (latest / ".metadata").write_bytes(b"not a checkpoint")
    (latest / "COMPLETE").write_text("ok\n")
    out = run_job(["data.num_train_samples=4096", "model.embedding_dim=4"], run_dir)
    assert out["status"] == "failed"
    assert "is unreadable" in out["summary"]["error"] and f"rm -r {latest}" in out["summary"]["error"]


def test_half_written_checkpoint_is_never_taken_for_complete(tmp_path):
    run_dir = tmp_path / "run"
    for partial in ("tmp-7", "latest"):  # a save killed before its COMPLETE marker
        (run_dir / "checkpoint" / partial).mkdir(parents=True)
        (run_dir / "checkpoint" / partial / "state.json").write_text('{"samples_seen": 2048, "step": 4}')
    out = run_job(["data.num_train_samples=4096", "model.embedding_dim=4"], run_dir)
    assert out["status"] == "completed"
    assert out["summary"]["resumed_from_samples"] == 0


def test_unwritable_run_dir_fails_before_training_naming_the_path(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    from rundir import check_writable

    with pytest.raises(OSError, match=str(blocker / "run")):
        check_writable(blocker / "run")


def test_missing_criteo_path_names_the_expected_files(tmp_path):
    out = run_job(["data=criteo_kaggle", f"data.path={tmp_path / 'nowhere'}", "data.num_train_samples=4096"],
                  tmp_path / "run")
    assert out["status"] == "failed"
    assert "day_0" in out["summary"]["error"] and "preprocess" in out["summary"]["error"]


@pytest.mark.slow
@pytest.mark.distributed
def test_two_rank_run_killed_resumes_to_the_same_result(tmp_path):
    """SIGKILL of torchrun and both ranks after a checkpoint; the relaunch resumes on 2 ranks."""
    args = ["launcher=torchrun", "launcher.nproc_per_node=2", "sharding=table_wise", "data.num_train_samples=65536",
            "data.num_eval_samples=16384", "trainer.checkpoint_every_samples=16384", "trainer.log_every_samples=16384"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def start(run_dir: Path) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "dlrm.train", *args, f"hydra.run.dir={run_dir}"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    ref = start(tmp_path / "ref")
    assert ref.wait(timeout=300) == 0
    run_dir = tmp_path / "run"
    proc = start(run_dir)
    _wait_for(lambda: _state(run_dir) is not None or proc.poll() is not None)
    _kill_all_mentioning(str(run_dir))  # the launcher, torchrun and both ranks (own sessions) at once
    proc.wait()
    state = _state(run_dir)
    assert state and state["samples_seen"] < 65536 and not (run_dir / "summary.json").exists()
    assert len(list((run_dir / "checkpoint" / "latest").glob("__*_0.distcp"))) == 2  # each rank's shards
    proc = start(run_dir)
    assert proc.wait(timeout=300) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    expected = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert resumed["status"] == "completed" and resumed["world_size"] == 2
    assert resumed["resumed_from_samples"] == state["samples_seen"]
    assert resumed["eval_ne"] == expected["eval_ne"]  # bit-identical on CPU with 2 gloo ranks too
