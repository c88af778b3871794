"""No file of a run dir is opened through a symlink (a link planted in a shared runs root must
not turn the harness's writes on its target), and a rank waits for a dead peer only as long as
trainer.collective_timeout_s."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rundir
from runner.lock import RunLock, RunLocked

REPO = Path(__file__).resolve().parents[2]
PRECIOUS = "someone else's file\n"


@pytest.fixture
def target(tmp_path: Path) -> Path:
    t = tmp_path / "precious.txt"
    t.write_text(PRECIOUS)
    return t


def test_a_symlinked_lock_is_refused_and_its_target_left_intact(tmp_path, target):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / rundir.LOCK_FILE).symlink_to(target)
    with pytest.raises(RunLocked, match="symbolic link.*remove the link"):
        with RunLock(run_dir):
            pass
    assert target.read_text() == PRECIOUS


def test_the_write_probe_never_writes_through_a_link(tmp_path, target):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".write-probe").symlink_to(target)
    rundir.check_writable(run_dir)
    assert target.read_text() == PRECIOUS
    assert not (run_dir / ".write-probe").exists() and not (run_dir / ".write-probe").is_symlink()


def test_metrics_are_never_appended_through_a_link(tmp_path, target):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / rundir.METRICS_FILE).symlink_to(target)
    with pytest.raises(OSError):
        rundir.MetricsLog(run_dir)
    assert target.read_text() == PRECIOUS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_rank_whose_peer_never_comes_fails_within_the_collective_timeout():
    """Rank 0 of 2 alone: without a timeout gloo waits 30 minutes; with 3 s it fails in seconds."""
    env = {**os.environ, "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(_free_port())}
    code = "from dlrm import distributed; distributed.init('cpu', 3.0)"
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    elapsed_s = time.monotonic() - t0
    assert p.returncode != 0
    assert elapsed_s < 60, elapsed_s
    assert "timeout" in (p.stderr + p.stdout).lower() or "timed out" in (p.stderr + p.stdout).lower(), p.stderr[-2000:]


def test_the_collective_timeout_is_validated_and_result_neutral():
    from dlrm.config import ConfigError
    from dlrm.validate import validate
    from runner.compose import compose, typed
    from runner.naming import _is_neutral

    cfg = typed(compose(["trainer.collective_timeout_s=0"]))
    with pytest.raises(ConfigError, match="trainer.collective_timeout_s"):
        validate(cfg, 1, "cpu")
    assert _is_neutral("trainer.collective_timeout_s")
