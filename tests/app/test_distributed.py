"""Several processes and several nodes, as users start them: torchrun by hand (the README's
command as written), two torchrun agents on one machine as two nodes (c10d rendezvous on
127.0.0.1), a NaN on one rank only, preemption and a killed launcher under torchrun, the
sparse-dist pipeline against the plain loop, the planner's topology, NCCL-safe groups.

Every rank here is a gloo process on this machine's CPUs.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import REPO, cli, run_job

pytestmark = pytest.mark.distributed
TORCHRUN = str(Path(sys.executable).parent / "torchrun")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
# Small enough for 2 cores, large enough that 1 and 2 ranks can be compared on NE.
RUN = ["sharding=table_wise", "data.num_train_samples=32768", "data.num_eval_samples=32768",
       "trainer.eval_every_samples=16384", "trainer.checkpoint_every_samples=8192",
       "trainer.log_every_samples=1000000000"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _out(proc) -> str:
    return f"exit {proc.returncode}\n{(proc.stdout or '')[-2000:]}\n{(proc.stderr or '')[-3000:]}"


def _written_once(run_dir: Path) -> None:
    """Global rank 0 alone writes the run dir: one summary, one config, one metrics file,
    and the other ranks' logs in files of their own."""
    names = sorted(p.name for p in run_dir.iterdir())
    assert names.count("summary.json") == 1 and "config.yaml" in names and "env.json" in names, names
    points = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    finals = [p for p in points if p.get("final")]
    assert len(finals) == 1, "a second rank wrote metrics"
    assert "train.log" in names and "train.rank1.log" in names


@pytest.fixture(scope="module")
def one_rank(tmp_path_factory) -> dict:
    return run_job(RUN, tmp_path_factory.mktemp("one") / "run")["summary"]


def test_the_readmes_by_hand_torchrun_command_works_as_written(tmp_path):
    """README, "Beyond one process": the command as the README writes it, in a fresh directory."""
    readme = (REPO / "README.md").read_text()
    line = next(x.strip() for x in readme.splitlines() if x.strip().startswith("torchrun --nproc_per_node=2"))
    command = line.split("#")[0].split()
    assert command[:2] == ["torchrun", "--nproc_per_node=2"] and "-m" in command, line
    proc = subprocess.run([TORCHRUN, *command[1:], "data.num_train_samples=16384", "data.num_eval_samples=16384"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, _out(proc)
    run_dir = tmp_path / next(a.split("=", 1)[1] for a in command if a.startswith("hydra.run.dir="))
    s = _summary(run_dir)
    assert s["status"] == "completed" and s["world_size"] == 2
    assert set(s["tables_per_rank"]) == {"0", "1"}
    _written_once(run_dir)
    # The same command again finds the run completed and trains nothing.
    again = subprocess.run([TORCHRUN, *command[1:], "data.num_train_samples=16384", "data.num_eval_samples=16384"],
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, _out(again)
    assert "completed already, skipped" in again.stdout + again.stderr
    assert _summary(run_dir) == s


def test_two_nodes_on_one_machine_match_one_rank(one_rank, tmp_path):
    """The README's multi-node command, run twice on this machine as two nodes (--nnodes=2, one
    rank each, c10d rendezvous on 127.0.0.1): global rank 0 owns the run dir; NE within 0.005
    of one rank (the same global batches)."""
    readme = (REPO / "README.md").read_text()
    line = next(x.strip() for x in readme.splitlines() if x.strip().startswith("torchrun --nnodes=2"))
    command = line.replace("HOST:29500", f"127.0.0.1:{_free_port()}").split()
    run_dir = tmp_path / next(a.split("=", 1)[1] for a in command if a.startswith("hydra.run.dir="))
    agents = [subprocess.Popen([TORCHRUN, *command[1:], *RUN], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [a.communicate(timeout=600)[0] for a in agents]
    assert all(a.returncode == 0 for a in agents), "\n---\n".join(o[-3000:] for o in outs)
    s = _summary(run_dir)
    assert s["status"] == "completed" and s["world_size"] == 2
    assert abs(s["eval_ne"] - one_rank["eval_ne"]) < 0.005, (s["eval_ne"], one_rank["eval_ne"])
    assert s["checkpoints_written"] >= 3  # the checkpoint agreement ran every step
    evals = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if '"eval"' in x]
    assert [p["samples_seen"] for p in evals] == [16384, 32768]  # the eval gather, intermediate and final
    _written_once(run_dir)


@pytest.mark.parametrize("sync_every", [1, 8])
def test_a_nan_on_one_rank_ends_the_run_diverged_on_every_rank(tmp_path, sync_every):
    """Also when the losses are read every 8 steps: the ranks agree on the earliest bad step."""
    run_dir = tmp_path / "nan"
    proc = subprocess.run([TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "dlrm.train", *RUN,
                           "faults.nan_at_step=5", "faults.nan_rank=1", f"trainer.sync_every_steps={sync_every}",
                           f"hydra.run.dir={run_dir}"],
                          cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
    s = _summary(run_dir)
    assert s["status"] == "diverged", _out(proc)
    assert s["diverged_step"] == 6  # the step after 5 steps: every rank stopped at the same one
    assert proc.returncode != 0  # a diverged run is not a completed one; nobody hung


def _launcher(run_dir: Path, extra: list[str] = ()) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dlrm.train", "launcher=torchrun", "launcher.nproc_per_node=2", *RUN,
         "data.num_train_samples=262144", "trainer.checkpoint_every_samples=16384", *extra,
         f"hydra.run.dir={run_dir}"], cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, start_new_session=True)


def _wait_for_checkpoint(run_dir: Path, proc, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not (run_dir / "checkpoint" / "latest" / "COMPLETE").exists():
        assert proc.poll() is None, proc.stderr.read()[-3000:]
        assert time.monotonic() < deadline, "no checkpoint"
        time.sleep(0.1)


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and text in (d / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(d.name))
        except OSError:
            pass
    return pids


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGUSR2, signal.SIGTERM], ids=["SIGUSR2", "SIGTERM"])
def test_preempting_the_launcher_checkpoints_the_ranks_and_the_run_resumes(tmp_path, sig):
    """SIGUSR2 (submitit's signal, which torchrun would not pass on) or SIGTERM to the process
    that started torchrun reaches the ranks: they checkpoint, the run is interrupted (never
    failed), the launcher exits with the requeue code, and the same command resumes it."""
    run_dir = tmp_path / "run"
    proc = _launcher(run_dir)
    _wait_for_checkpoint(run_dir, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=300) == 143, proc.stderr.read()[-3000:]
    s = _summary(run_dir)
    assert s["status"] == "interrupted", s
    state = json.loads((run_dir / "checkpoint" / "latest" / "state.json").read_text())
    assert state["samples_seen"] > 0
    assert not _processes_mentioning(str(run_dir))  # no rank left behind
    again = _launcher(run_dir)
    assert again.wait(timeout=600) == 0, again.stderr.read()[-3000:]
    s = _summary(run_dir)
    assert s["status"] == "completed" and s["resumed_from_samples"] == state["samples_seen"]


@pytest.mark.slow
def test_killing_the_launcher_takes_its_ranks_down(tmp_path):
    """SIGKILL of the launching process: torchrun gets SIGTERM (PR_SET_PDEATHSIG), its ranks
    checkpoint and exit, and the run is left resumable, with its lock free."""
    run_dir = tmp_path / "run"
    proc = _launcher(run_dir)
    _wait_for_checkpoint(run_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 120
    while _processes_mentioning(str(run_dir)):
        assert time.monotonic() < deadline, "ranks outlived their launcher"
        time.sleep(0.2)
    assert _summary(run_dir)["status"] == "interrupted"
    from runner.lock import RunLock, RunLocked

    # Free once the ranks are gone.  An exiting process drops its memory (and so the cmdline
    # that _processes_mentioning reads) before its files, so the lock may outlive the last
    # cmdline by a moment: wait for it, but not for long.
    deadline = time.monotonic() + 30
    while True:
        try:
            with RunLock(run_dir):
                break
        except RunLocked:
            assert time.monotonic() < deadline, "the run's lock outlived its ranks by 30 s"
            time.sleep(0.2)


def test_the_sparse_dist_pipeline_gives_the_plain_loops_result(tmp_path):
    """TrainPipelineSparseDist trains the same batches with the same step: bit-identical on CPU."""
    runs = {p: run_job(RUN + [f"trainer.pipeline={p}"], tmp_path / p)["summary"] for p in ("true", "false")}
    assert runs["true"]["status"] == runs["false"]["status"] == "completed"
    for key in ("eval_ne", "eval_auc", "train_loss_last"):
        assert runs["true"][key] == runs["false"][key], key


def test_the_planner_sees_two_hosts_of_one_rank():
    """The topology comes from the machine: 2 nodes x 1 rank is two hosts (cross-host
    bandwidth between them), not one host of 2; the plan places tables on both ranks."""
    import torch
    from torchrec.distributed.sharding_plan import get_default_sharders
    from torchrec.models.dlrm import DLRMTrain

    from dlrm.distributed import DistInfo
    from dlrm.model import ModelShape, build_model
    from dlrm.sharding import planner_for, tables_per_rank, topology

    two_nodes = DistInfo(rank=0, world_size=2, local_rank=0, local_world_size=1, device=torch.device("cpu"))
    one_node = DistInfo(rank=0, world_size=2, local_rank=0, local_world_size=2, device=torch.device("cpu"))
    assert topology(two_nodes).local_world_size == 1 and topology(one_node).local_world_size == 2
    shape = ModelShape(name="dlrm", embedding_dim=16, cardinalities=tuple([1000] * 8 + [100000] * 4),
                       num_dense_features=13, dense_arch_layer_sizes=(64, 16), over_arch_layer_sizes=(64, 1))
    model = DLRMTrain(build_model(shape, torch.device("meta")))
    names = [c.name for c in model.model.sparse_arch.embedding_bag_collection.embedding_bag_configs()]
    plan = planner_for(two_nodes, "table_wise", 256, names).plan(model, get_default_sharders())
    placed = tables_per_rank(plan)
    assert set(placed) == {0, 1} and sum(len(v) for v in placed.values()) == len(names)


def test_every_control_collective_sends_its_tensor_on_the_ranks_device(monkeypatch):
    """NCCL refuses CPU tensors: the per-step agreement and object broadcasts must put their
    tensor on the rank's device (here a stand-in device name is recorded: no GPU in CI)."""
    import torch
    import torch.distributed as dist

    from dlrm import distributed

    assert distributed.backend_for("cuda") == "nccl" and distributed.backend_for("cpu") == "gloo"
    devices = []
    real_tensor = torch.tensor

    def tensor(data, **kw):
        devices.append(kw.pop("device", "cpu (default)"))
        return real_tensor(data, **kw)

    monkeypatch.setattr(distributed.torch, "tensor", tensor)
    monkeypatch.setattr(dist, "all_reduce", lambda t, op=None: None)
    monkeypatch.setattr(dist, "broadcast_object_list", lambda box, src, device=None: devices.append(device))
    gpu = distributed.DistInfo(rank=1, world_size=2, local_rank=1, local_world_size=2, device="cuda:1")
    assert distributed.agree(None, [True, False], gpu) == (None, [True, False])
    assert distributed.broadcast_object("x", gpu) == "x"
    assert devices == ["cuda:1", "cuda:1"]
