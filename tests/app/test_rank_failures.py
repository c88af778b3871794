"""A rank's failure under torchrun gets the status it means: a rank's own error ends the run
`failed` with that error (a relaunch must not resume into it), a lost rank leaves the run
`interrupted` over its checkpoint (a relaunch resumes it).  Both under launcher=torchrun and
under a torchrun started by hand; 2 gloo ranks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO

pytestmark = pytest.mark.distributed
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# 64 steps of 512; the first checkpoint after step 16, the fault after step 24.
RUN = ["sharding=table_wise", "data.num_train_samples=32768", "data.num_eval_samples=16384",
       "trainer.eval_every_samples=1000000000", "trainer.checkpoint_every_samples=8192",
       "trainer.log_every_samples=1000000000", "trainer.collective_timeout_s=120"]
FAULT_STEP = 24


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _out(proc) -> str:
    return f"exit {proc.returncode}\n{(proc.stdout or '')[-2000:]}\n{(proc.stderr or '')[-3000:]}"


def _launcher(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dlrm.train", "launcher=torchrun", "launcher.nproc_per_node=2", *RUN,
                           *extra, f"hydra.run.dir={run_dir}"], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=600)


def _by_hand(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "dlrm.train", *RUN, *extra,
                           f"hydra.run.dir={run_dir}"], cwd=run_dir.parent, env=ENV, capture_output=True, text=True,
                          timeout=600)


def _checkpointed_samples(run_dir: Path) -> int:
    return json.loads((run_dir / "checkpoint" / "latest" / "state.json").read_text())["samples_seen"]


def test_a_ranks_own_error_under_the_torchrun_launcher_fails_the_run_with_that_error(tmp_path):
    run_dir = tmp_path / "run"
    proc = _launcher(run_dir, f"faults.fault_at_step={FAULT_STEP}", "faults.fault_rank=1")
    assert proc.returncode != 0, _out(proc)
    s = _summary(run_dir)
    assert s["status"] == "failed", (s, _out(proc))
    assert s["error"].startswith("rank 1: InjectedFault") and f"after step {FAULT_STEP}" in s["error"], s
    assert [r["rank"] for r in s["rank_errors"]] == [1]
    assert "InjectedFault" in s["traceback"]
    assert _checkpointed_samples(run_dir) > 0  # kept: a retry may still resume from it
    # A plain relaunch keeps the failure; a retry resumes from the checkpoint (the fault is
    # of the first attempt only) and clears the old rank errors.
    _launcher(run_dir)
    assert _summary(run_dir)["status"] == "failed"
    again = _launcher(run_dir, "retry_failed=true")
    assert again.returncode == 0, _out(again)
    s = _summary(run_dir)
    assert s["status"] == "completed" and s["resumed_from_samples"] > 0, s
    assert not list(run_dir.glob("error.rank*.json"))


def test_a_ranks_own_error_under_a_torchrun_by_hand_fails_the_run_with_that_error(tmp_path):
    run_dir = tmp_path / "run"
    proc = _by_hand(run_dir, f"faults.fault_at_step={FAULT_STEP}", "faults.fault_rank=1")
    assert proc.returncode != 0, _out(proc)
    s = _summary(run_dir)
    assert s["status"] == "failed", (s, _out(proc))
    assert s["error"].startswith("rank 1: InjectedFault"), s


def test_a_lost_rank_under_a_torchrun_by_hand_leaves_the_run_resumable(tmp_path):
    """Rank 1 SIGKILLed after the first checkpoint (as by the OOM killer): the survivor must
    not write `failed` over a good checkpoint; the same command then resumes the run."""
    run_dir = tmp_path / "run"
    proc = _by_hand(run_dir, f"faults.fault_at_step={FAULT_STEP}", "faults.fault_rank=1", "faults.fault=kill")
    assert proc.returncode != 0, _out(proc)
    s = _summary(run_dir)
    assert s["status"] == "interrupted", (s, _out(proc))
    saved = _checkpointed_samples(run_dir)
    assert saved > 0
    again = _by_hand(run_dir, f"faults.fault_at_step={FAULT_STEP}", "faults.fault_rank=1", "faults.fault=kill")
    assert again.returncode == 0, _out(again)
    s = _summary(run_dir)
    assert s["status"] == "completed" and s["resumed_from_samples"] == saved, s


def test_a_lost_peer_is_told_from_a_ranks_own_error():
    from runner.rank_errors import peer_lost

    assert peer_lost(RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer "
                                  "[127.0.0.1]:41234"))
    assert peer_lost(RuntimeError("Connection reset by peer"))
    try:
        try:
            raise RuntimeError("Connection reset by peer")
        except RuntimeError as inner:
            raise ValueError("checkpoint save failed") from inner
    except ValueError as wrapped:
        assert peer_lost(wrapped)  # wrapped, e.g. by the distributed checkpoint
    assert not peer_lost(ValueError("shape mismatch in the over arch"))
    assert not peer_lost(ZeroDivisionError("division by zero"))


def test_a_bad_fault_kind_is_refused():
    from dlrm.config import ConfigError
    from dlrm.validate import validate
    from harness import typed

    with pytest.raises(ConfigError, match="faults.fault='segv' is not known: use one of error, kill"):
        validate(typed(["faults.fault=segv"]), 1, "cpu")


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            try:
                kids = [int(k) for k in task.read_text().split()]
            except OSError:
                kids = []
            out += kids
            todo += kids
    return out


@pytest.mark.slow
def test_slurms_signal_to_every_process_of_the_step_ends_interrupted_with_a_complete_checkpoint(tmp_path):
    """SLURM's --signal=USR2@... reaches every process of the job step (with proctrack/cgroup):
    the launcher, torchrun and each rank, at once.  torchrun must not die of it while its
    ranks checkpoint: the launcher exits with the requeue code only once the ranks are done,
    the run is interrupted over a complete checkpoint, and the same command resumes it."""
    import signal
    import time

    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "dlrm.train", "launcher=torchrun", "launcher.nproc_per_node=2", *RUN,
            "data.num_train_samples=262144", "trainer.checkpoint_every_samples=16384", f"hydra.run.dir={run_dir}"]
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not (run_dir / "checkpoint" / "latest" / "COMPLETE").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()[-3000:]
        time.sleep(0.1)
    step = [proc.pid, *_descendants(proc.pid)]
    assert len(step) >= 4  # the launcher, torchrun, two ranks
    for pid in step:
        os.kill(pid, signal.SIGUSR2)
    assert proc.wait(timeout=300) == 143, proc.stderr.read()[-3000:]
    alive = [p for p in step if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()]
    assert not alive, f"processes outlived the launcher: {alive}"
    s = _summary(run_dir)
    assert s["status"] == "interrupted", s
    saved = _checkpointed_samples(run_dir)
    again = _launcher(run_dir, "data.num_train_samples=262144", "trainer.checkpoint_every_samples=16384")
    assert again.returncode == 0, _out(again)
    s = _summary(run_dir)
    assert s["status"] == "completed" and s["resumed_from_samples"] >= saved, s


# Rank 0 of a torchrun by hand meets a lost peer, and torchrun's SIGTERM to the survivors
# arrives while rank 0 writes `interrupted` (as it does on a loaded machine): the summary must
# still be written whole, and the rank then ends as the signal would (128 + SIGTERM).
_SIGTERM_DURING_THE_LAST_WRITE = r"""
import os, signal, sys, time
from pathlib import Path
from types import SimpleNamespace
sys.path.insert(0, "tests")
from harness import compose
import dlrm.checkpoint, dlrm.distributed
from runner import job, rank_errors

run_dir = Path(sys.argv[1])
cfg = compose(["sharding=table_wise"])
dlrm.distributed.init = lambda *a: SimpleNamespace(is_main=True, rank=0, world_size=2)
dlrm.distributed.broadcast_object = lambda obj, info: obj
job.claim = lambda *a: None
dlrm.checkpoint.newest_complete = lambda root: root / "latest"
def lost_peer(*a, **k):
    raise RuntimeError("Connection reset by peer")
job._train = lost_peer
write = rank_errors.interrupted_summary
def torchrun_terminates_meanwhile(*a):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.2)
    write(*a)
rank_errors.interrupted_summary = torchrun_terminates_meanwhile
job._launch_rank(cfg, run_dir, "")
"""


def test_torchruns_sigterm_while_rank0_records_a_lost_peer_does_not_lose_the_status(tmp_path):
    from dlrm.checkpoint import REQUEUE_EXIT_CODE

    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-c", _SIGTERM_DURING_THE_LAST_WRITE, str(run_dir)], cwd=REPO, env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == REQUEUE_EXIT_CODE, _out(proc)
    s = _summary(run_dir)
    assert s["status"] == "interrupted" and "a peer rank was lost" in s["error"], s
