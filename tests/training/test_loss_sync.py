"""The loop reads its losses, and the ranks agree, every trainer.sync_every_steps steps (and
before every eval, samples-due checkpoint and the end), not every step: on a GPU each read
waits for the device.  The result is the same for any interval: the same steps, losses,
logged points, evals and checkpoints; a NaN still ends the run at the step that made it, and a
preemption checkpoints at the next sync step, from which the run resumes to the same result.
Checked on the CPU path, where the interval can be set as on a GPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import run_job

# 32 steps of 512; logged every 8 steps, a checkpoint every 16.
RUN = ["data.num_train_samples=16384", "data.num_eval_samples=8192", "trainer.log_every_samples=4096",
       "trainer.checkpoint_every_samples=8192", "trainer.eval_every_samples=1000000000"]
RESULT = ("eval_ne", "eval_logloss", "eval_auc", "train_loss_last", "steps")


def _train_points(run_dir: Path) -> list[dict]:
    points = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: p[k] for k in ("step", "samples_seen", "train_loss", "lr")} for p in points if p["kind"] == "train"]


@pytest.fixture(scope="module")
def every_step(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("every") / "run"
    assert run_job(RUN + ["trainer.sync_every_steps=1"], run_dir)["status"] == "completed"
    return run_dir


def test_any_sync_interval_gives_the_same_run_with_fewer_reads(every_step, tmp_path, monkeypatch):
    from dlrm import distributed

    calls = []
    real = distributed.agree
    monkeypatch.setattr(distributed, "agree", lambda *a, **k: calls.append(1) or real(*a, **k))
    run_dir = tmp_path / "run"
    s = run_job(RUN + ["trainer.sync_every_steps=8"], run_dir)["summary"]
    base = json.loads((every_step / "summary.json").read_text())
    assert {k: s[k] for k in RESULT} == {k: base[k] for k in RESULT}
    assert _train_points(run_dir) == _train_points(every_step)
    assert len(calls) == 32 // 8  # one read and one agreement per 8 steps, against 32


def test_a_nan_between_syncs_ends_the_run_at_its_own_step(tmp_path):
    s = run_job(RUN + ["trainer.sync_every_steps=8", "faults.nan_at_step=5"], tmp_path / "run")["summary"]
    assert s["status"] == "diverged" and s["diverged_step"] == 6, s  # the step that made it, not the sync's
    points = _train_points(tmp_path / "run")
    assert not [p for p in points if p["step"] >= 6]


def test_a_preemption_between_syncs_checkpoints_at_the_next_and_resumes_to_the_same_result(every_step, tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit):
        run_job(RUN + ["trainer.sync_every_steps=8", "faults.sigterm_at_step=3"], run_dir)
    state = json.loads((run_dir / "checkpoint" / "latest" / "state.json").read_text())
    assert state["step"] == 8  # acted on at the next sync step
    s = run_job(RUN + ["trainer.sync_every_steps=8"], run_dir)["summary"]
    base = json.loads((every_step / "summary.json").read_text())
    assert s["status"] == "completed" and s["resumed_from_samples"] == 8 * 512
    assert {k: s[k] for k in RESULT} == {k: base[k] for k in RESULT}


def test_the_sync_interval_is_validated_and_result_neutral():
    from dlrm.config import ConfigError
    from dlrm.validate import validate
    from harness import typed
    from runner.naming import RESULT_NEUTRAL_KEYS

    with pytest.raises(ConfigError, match="trainer.sync_every_steps must be a positive integer"):
        validate(typed(["trainer.sync_every_steps=0"]), 1, "cpu")
    assert "trainer.sync_every_steps" in RESULT_NEUTRAL_KEYS
