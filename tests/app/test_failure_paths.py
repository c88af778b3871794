"""Nothing lost, round two: each failure path with the behaviour a user needs.

Jobs run in this process through the app's own `runner.job.launch` (tests/harness.py);
a preemption is a real SIGTERM the loop sends itself after a given step
(`faults.sigterm_at_step`, result-neutral), exactly as SLURM's would arrive.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import traceback
import time
from pathlib import Path

import pytest

from harness import compose, run_job

# 32 steps of 512; a checkpoint every 4 steps.
RUN = ["data.num_train_samples=16384", "data.num_eval_samples=8192", "trainer.log_every_samples=4096",
       "trainer.checkpoint_every_samples=2048"]
RESULT = ("eval_ne", "eval_logloss", "eval_auc", "train_loss_last")


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _preempted(overrides: list[str], run_dir: Path, at_step: int) -> None:
    """Train until a SIGTERM after `at_step`: checkpointed, interrupted, exit 143."""
    with pytest.raises(SystemExit) as e:
        run_job(overrides + [f"faults.sigterm_at_step={at_step}"], run_dir)
    assert e.value.code == 143
    assert _summary(run_dir)["status"] == "interrupted"


def _same_result(a: dict, b: dict) -> None:
    assert {k: a[k] for k in RESULT} == {k: b[k] for k in RESULT}


# --- 3, 4: resume is bit-identical for every optimizer, and under warm-up ------------------------

# Every embedding optimizer FBGEMM runs on CPU (fused Adam needs a GPU: refused on CPU, see
# test_config), every dense optimizer, and warm-up.
OPTIMIZERS = [("trainer.embedding_optimizer", o) for o in ("rowwise_adagrad", "adagrad", "sgd")] + \
             [("trainer.dense_optimizer", o) for o in ("adagrad", "adam", "sgd")] + \
             [("trainer.lr_warmup_samples", 8192)]


@pytest.mark.parametrize("key,value", OPTIMIZERS, ids=[f"{k.split('.')[1]}={v}" for k, v in OPTIMIZERS])
def test_a_preempted_run_resumes_bit_identically(tmp_path, key, value):
    """Adam's dense state is created lazily at its first step: restored into a fresh optimizer
    it was lost.  Under warm-up the fused kernels got the new rate one step late.  Both made a
    resumed run differ from an uninterrupted one."""
    overrides = RUN + [f"{key}={value}"]
    whole = run_job(overrides, tmp_path / "whole")["summary"]
    _preempted(overrides, tmp_path / "resumed", at_step=6)
    resumed = run_job(overrides, tmp_path / "resumed")["summary"]
    assert resumed["status"] == "completed" and resumed["resumed_from_samples"] == 6 * 512
    _same_result(resumed, whole)


# --- 1: a failed checkpoint write ends that run failed; the sweep goes on -------------------------

def test_a_checkpoint_write_that_fails_ends_the_run_failed_and_the_next_job_runs(tmp_path, monkeypatch):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException

    def disk_full(*a, **k):
        error = OSError(errno.ENOSPC, "No space left on device")
        raise CheckpointException("write failed", {0: (error, traceback.extract_stack())})

    monkeypatch.setattr(dcp, "save", disk_full)
    out = run_job(RUN, tmp_path / "full")  # a BaseException from dcp must not escape the job
    assert out["status"] == "failed"
    assert "writing checkpoint" in out["summary"]["error"] and "No space left" in out["summary"]["error"]
    monkeypatch.undo()
    assert run_job(RUN, tmp_path / "next")["status"] == "completed"


# --- 2: a crash between the two renames of a checkpoint switch ----------------------------------

def test_a_crash_between_the_renames_of_a_switch_resumes_from_the_newest_checkpoint(tmp_path, monkeypatch):
    from dlrm import checkpoint

    whole = run_job(RUN, tmp_path / "whole")["summary"]
    run_dir = tmp_path / "run"
    real_switch = checkpoint.Checkpointer._switch_to

    def crash_midway(self, complete: Path, step: int):
        if step < 8:
            return real_switch(self, complete, step)
        (self.root / "latest").rename(self.root / f"old-{step}")  # the first rename ...
        raise SystemExit("killed between the renames")  # ... and no second one

    monkeypatch.setattr(checkpoint.Checkpointer, "_switch_to", crash_midway)
    with pytest.raises(SystemExit):
        run_job(RUN, run_dir)
    monkeypatch.undo()
    left = sorted(p.name for p in (run_dir / "checkpoint").iterdir())
    assert left == ["old-8", "tmp-8"], left  # no `latest` at all
    resumed = run_job(RUN, run_dir)["summary"]
    assert resumed["resumed_from_samples"] == 8 * 512  # the newer, complete tmp-8, not sample 0
    _same_result(resumed, whole)
    points = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert points[0]["samples_seen"] == 4096  # the log before the crash was kept, not truncated away


# --- 5: a NaN made by the last update -----------------------------------------------------------

def test_a_nan_made_by_the_last_update_is_diverged_not_completed(tmp_path):
    out = run_job(RUN + ["faults.nan_at_step=31", "faults.nan_update_only=true"], tmp_path / "run")
    assert out["status"] == "diverged"
    assert "final eval" in out["summary"]["error"] and out["summary"]["diverged_step"] == 32


# --- 6, 7: config checks under the lock; a conflicting run is never touched ----------------------

def test_a_completed_run_is_not_reused_for_a_changed_config(tmp_path, caplog):
    """A result-relevant change that is not in the run name (the dir is fixed here): refused,
    naming the key, never "completed already, skipped"."""
    import logging

    run_dir = tmp_path / "run"
    assert run_job(RUN, run_dir)["status"] == "completed"
    before = (run_dir / "summary.json").read_bytes()
    with caplog.at_level(logging.INFO, logger="dlrm"):
        out = run_job(RUN + ["trainer.dense_lr=0.37"], run_dir)
    assert out["status"] == "conflict"
    assert "trainer.dense_lr: 0.05 -> 0.37" in caplog.text and "completed already" not in caplog.text
    assert (run_dir / "summary.json").read_bytes() == before
    assert run_job(RUN, run_dir)["status"] == "skipped"  # its own config still finds it done


def test_a_conflicting_config_leaves_the_other_runs_summary_alone(tmp_path):
    run_dir = tmp_path / "run"
    assert run_job(RUN + ["faults.nan_at_step=3"], run_dir)["status"] == "diverged"
    before = (run_dir / "summary.json").read_bytes()
    out = run_job(RUN + ["retry_failed=true"], run_dir)  # another config, asking to retry
    assert out["status"] == "conflict"
    assert (run_dir / "summary.json").read_bytes() == before


def test_a_run_completed_by_another_sweep_while_waiting_for_the_lock_is_not_retrained(tmp_path, monkeypatch):
    """Status and config are read under the lock: what happened before it was taken counts."""
    from runner import lock as lock_mod

    run_dir = tmp_path / "run"
    done = run_job(RUN, tmp_path / "elsewhere")["summary"]
    (tmp_path / "elsewhere" / "config.yaml").rename(tmp_path / "config.yaml")
    real_enter = lock_mod.RunLock.__enter__

    def other_sweep_finishes_first(self):
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp_path / "config.yaml", run_dir / "config.yaml")
        (run_dir / "summary.json").write_text(json.dumps(done))
        return real_enter(self)

    monkeypatch.setattr(lock_mod.RunLock, "__enter__", other_sweep_finishes_first)
    assert run_job(RUN, run_dir)["status"] == "skipped"
    assert not (run_dir / "metrics.jsonl").exists()  # nothing was retrained


# --- 8: no flock -----------------------------------------------------------------------------------

def test_without_flock_a_lock_file_with_owner_and_stale_detection_serves(tmp_path, monkeypatch):
    from runner import lock as lock_mod

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_mod.fcntl, "flock", no_flock)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with lock_mod.RunLock(run_dir):
        owner = json.loads((run_dir / lock_mod.OWNER_FILE).read_text())
        assert owner["pid"] == os.getpid()
        with pytest.raises(lock_mod.RunLocked, match=f"pid {os.getpid()} on "):
            lock_mod.RunLock(run_dir).__enter__()
    assert not (run_dir / lock_mod.OWNER_FILE).exists()  # released
    # A holder that died without releasing (a pid that no longer exists on this host) is stale.
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = gone.pid
    (run_dir / lock_mod.OWNER_FILE).write_text(json.dumps({**owner, "pid": dead}))
    assert run_job(RUN, run_dir)["status"] == "completed"


# --- 12, 13: bad intervals and paths that leave the root are refused before any work -------------

@pytest.mark.parametrize("override,message", [
    ("trainer.lr_warmup_samples=-5", "trainer.lr_warmup_samples must be an integer >= 0"),
    ("trainer.log_every_samples=0", "trainer.log_every_samples must be a positive integer"),
    ("trainer.eval_every_samples=-1", "trainer.eval_every_samples must be a positive integer"),
    ("trainer.checkpoint_every_samples=0", "trainer.checkpoint_every_samples must be a positive integer"),
    ("trainer.checkpoint_every_minutes=0", "trainer.checkpoint_every_minutes must be a positive number"),
    ("trainer.checkpoint_every_minutes=-2.5", "trainer.checkpoint_every_minutes must be a positive number"),
])
def test_every_interval_and_count_is_validated_before_work(tmp_path, override, message):
    out = run_job(RUN + [override], tmp_path / "run")
    assert out["status"] == "failed" and message in out["summary"]["error"]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


@pytest.mark.parametrize("override", ["sweep_name=../../x", "out_root=runs/../..", "sweep_name=a/../../b"])
def test_a_sweep_name_or_out_root_that_leaves_the_root_is_refused(override):
    from omegaconf.errors import InterpolationResolutionError

    cfg = compose([override], with_hydra=True)
    with pytest.raises(InterpolationResolutionError, match="leaves the runs root"):
        str(cfg.hydra.sweep.dir)


# --- 16: a checkpoint someone else could have written is not restored ----------------------------

def test_a_checkpoint_others_can_write_is_refused_and_kept(tmp_path):
    run_dir = tmp_path / "run"
    _preempted(RUN, run_dir, at_step=6)
    latest = run_dir / "checkpoint" / "latest"
    os.chmod(latest / "state.json", 0o666)
    out = run_job(RUN, run_dir)
    assert out["status"] == "failed"
    assert "cannot be trusted" in out["summary"]["error"] and "chmod -R go-w" in out["summary"]["error"]
    assert (latest / "COMPLETE").exists()  # nothing lost: the checkpoint is still there
    os.chmod(latest / "state.json", 0o644)
    resumed = run_job(RUN + ["retry_failed=true"], run_dir)["summary"]
    assert resumed["status"] == "completed" and resumed["resumed_from_samples"] == 6 * 512


@pytest.mark.parametrize("how", ["group-writable file", "symlinked checkpoint dir"])
def test_a_checkpoint_open_to_others_anywhere_on_its_chain_is_refused(tmp_path, how):
    """A file its group may write (its bytes are unpickled), or a checkpoint/ directory that is
    a link to somewhere else: refused, naming the path, and nothing in the run dir moved."""
    run_dir = tmp_path / "run"
    _preempted(RUN, run_dir, at_step=6)
    root = run_dir / "checkpoint"
    if how == "group-writable file":
        os.chmod(root / "latest" / ".metadata", 0o664)
        bad = root / "latest" / ".metadata"
    else:
        elsewhere = tmp_path / "elsewhere"
        root.rename(elsewhere)
        root.symlink_to(elsewhere)
        bad = root
    out = run_job(RUN, run_dir)
    assert out["status"] == "failed" and f"{bad} cannot be trusted" in out["summary"]["error"], out["summary"]
    assert (root / "latest" / "COMPLETE").exists()


def test_a_cut_short_switch_is_checked_before_it_is_moved(tmp_path):
    """The newest complete checkpoint is still tmp-N (a crash between the renames): an untrusted
    one is refused before rank 0 renames anything."""
    run_dir = tmp_path / "run"
    _preempted(RUN, run_dir, at_step=6)
    root = run_dir / "checkpoint"
    newer = root / "tmp-99"
    shutil.copytree(root / "latest", newer)
    state = json.loads((newer / "state.json").read_text())
    (newer / "state.json").write_text(json.dumps({**state, "step": 99, "samples_seen": 99 * 512}))
    os.chmod(newer / "state.json", 0o666)
    before = sorted(p.name for p in root.iterdir())
    out = run_job(RUN, run_dir)
    assert out["status"] == "failed" and "tmp-99/state.json cannot be trusted" in out["summary"]["error"]
    assert sorted(p.name for p in root.iterdir()) == before


def test_a_checkpoint_saved_under_a_group_umask_is_sealed_and_resumes(tmp_path):
    """With umask 002 the shards would be g+w: the checkpointer takes group write off its own
    files, so the run resumes (and no file of it is writable by others)."""
    run_dir = tmp_path / "run"
    old = os.umask(0o002)
    try:
        _preempted(RUN, run_dir, at_step=6)
    finally:
        os.umask(old)
    files = [p for p in (run_dir / "checkpoint" / "latest").rglob("*") if p.is_file()]
    assert files and not [p for p in files if p.stat().st_mode & 0o022]
    resumed = run_job(RUN, run_dir)["summary"]
    assert resumed["status"] == "completed" and resumed["resumed_from_samples"] == 6 * 512


def test_without_flock_a_requeued_slurm_job_takes_over_its_predecessors_lock(tmp_path, monkeypatch):
    """A SLURM job SIGKILLed on one node and requeued onto another has the same job id and a
    higher restart count: its dead predecessor's fresh owner file must not make it skip its
    own run.  Another job's, or the same incarnation's, still holds."""
    from runner import lock as lock_mod

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock_mod.fcntl, "flock", no_flock)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    owner_file = run_dir / lock_mod.OWNER_FILE

    def held_elsewhere(job: str, restarts: int) -> None:  # a fresh heartbeat, on another host
        owner_file.write_text(json.dumps({"host": "node-that-died", "pid": 4242, "time": time.time(),
                                          "slurm_job_id": job, "slurm_restart_count": restarts}))

    monkeypatch.setenv("SLURM_JOB_ID", "777")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    held_elsewhere("777", 0)
    with lock_mod.RunLock(run_dir):
        owner = json.loads(owner_file.read_text())
        assert owner["pid"] == os.getpid() and owner["slurm_restart_count"] == 1
    for job, restarts in (("778", 0), ("777", 1)):
        held_elsewhere(job, restarts)
        with pytest.raises(lock_mod.RunLocked, match="pid 4242 on node-that-died"):
            lock_mod.RunLock(run_dir).__enter__()
    monkeypatch.delenv("SLURM_JOB_ID")
    held_elsewhere("777", 0)
    with pytest.raises(lock_mod.RunLocked):
        lock_mod.RunLock(run_dir).__enter__()
