"""Sweeps end to end: real tiny multiruns into a temp dir, as a user launches them.

`python -m dlrm.train -m ...` (and `sweep=NAME`) in a subprocess: every run dir complete and
stably named, the closing table, the exit status; relaunching skips what is done; a failing
job is recorded and does not stop the others; the grids sweeper, the submitit and torchrun
launchers; the per-run lock; refusing to resume a run dir of another config.

Costs: one `python -m dlrm.train` process is ~5 s of imports, its jobs run in-process one
after the other (~1 s each at this size), so the jobs of a case share one process.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from harness import CONFIGS, REPO, cli

# FBGEMM's CPU lookup has no autograd kernel registered; torch says so on every in-process backward.
pytestmark = pytest.mark.filterwarnings("ignore:.*an autograd kernel was not registered.*:UserWarning")

# Tiny jobs: ~1 s each.  trainer.log_every_samples is excluded from run names.
TINY = ["data.num_eval_samples=4096", "trainer.log_every_samples=1000000000"]
PREFIX = "data.num_eval_samples=4096,"  # every run name of these sweeps starts with this override
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "env.json")
TABLE_RUN_WIDTH = 48  # the run column of format_table (runner/report.py)
TRAINING_LINE = re.compile(r"step \d+ +\d+/\d+ samples")  # the loop's progress line: a run really trained


def _sweep(tmp: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return cli(["-m", *args, *TINY, f"out_root={tmp / 'runs'}"], cwd=tmp, timeout=timeout)


def _out(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


def _summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def _run_dirs(root: Path) -> set[str]:
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}


def _fingerprint(run_dir: Path) -> dict:
    """mtime and bytes of every file a run writes: unchanged means nothing was redone."""
    return {f: ((run_dir / f).stat().st_mtime_ns, (run_dir / f).read_bytes())
            for f in RUN_FILES if (run_dir / f).exists()}


def _assert_complete(run_dir: Path, n: int, d: int, w: int, world_size: int = 1) -> dict:
    for f in RUN_FILES:
        assert (run_dir / f).is_file(), f"{run_dir.name}: no {f}"
    s = _summary(run_dir)
    assert s["status"] == "completed", s
    assert s["run_name"] == run_dir.name
    assert (s["num_train_samples"], s["embedding_dim"], s["mlp_width"]) == (n, d, w)
    assert s["world_size"] == world_size
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert (cfg.data.num_train_samples, cfg.model.embedding_dim, cfg.model.mlp_width) == (n, d, w)
    points = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert points and points[-1]["samples_seen"] == n and "eval_ne" in points[-1]
    assert json.loads((run_dir / "env.json").read_text())["world_size"] == world_size
    return s


def _table_rows(stdout: str) -> dict[str, str]:
    """The closing table's rows: run column (as printed) -> status."""
    rows = {}
    lines = stdout.splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("run ") and "status" in line)
    for line in lines[start + 2:]:
        if not line.strip():
            break
        if line.startswith("    "):  # the error line under a failed run
            continue
        rows[line[:TABLE_RUN_WIDTH].rstrip()] = line[TABLE_RUN_WIDTH:].split()[0]
    return rows


# --- a real multirun: 4 tiny jobs -------------------------------------------------------------

GRID = {(n, d) for n in (1024, 2048) for d in (4, 8)}


def _name(n: int, d: int, w: int = 8) -> str:
    return f"{PREFIX}n={n},d={d},w={w}"


@pytest.fixture(scope="module")
def multirun(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multirun")
    proc = _sweep(tmp, "model.embedding_dim=4,8", "data.num_train_samples=1024,2048", "model.mlp_width=8")
    return SimpleNamespace(tmp=tmp, root=tmp / "runs" / "multirun", proc=proc)


def test_multirun_trains_every_job_into_a_complete_run_dir(multirun):
    proc, root = multirun.proc, multirun.root
    assert proc.returncode == 0, _out(proc)
    assert _run_dirs(root) == {_name(n, d) for n, d in GRID}
    for n, d in GRID:
        _assert_complete(root / _name(n, d), n, d, 8)
    # Nothing is written outside out_root (no outputs/, multirun/, timestamped dirs).
    assert [p.name for p in multirun.tmp.iterdir()] == ["runs"]
    assert [p.name for p in (multirun.tmp / "runs").iterdir()] == ["multirun"]


def test_multirun_names_are_the_swept_values_without_timestamps(multirun):
    for name in _run_dirs(multirun.root):
        assert re.fullmatch(r"data\.num_eval_samples=4096,n=(1024|2048),d=(4|8),w=8", name), name


def test_multirun_prints_progress_and_a_table_of_every_run(multirun):
    out = multirun.proc.stdout
    assert "4 runs, 0 completed already" in out
    for k in range(1, 5):
        assert f"run [{k}/4] " in out
    rows = _table_rows(out)
    assert rows == {_name(n, d)[:TABLE_RUN_WIDTH]: "completed" for n, d in GRID}, out[-3000:]
    assert f"sweep {multirun.root}: 4 completed" in out


def test_relaunch_retrains_nothing_and_redoes_only_a_deleted_run(multirun):
    root = multirun.root
    assert multirun.proc.returncode == 0, _out(multirun.proc)
    before = {name: _fingerprint(root / name) for name in _run_dirs(root)}
    args = ("model.embedding_dim=4,8", "data.num_train_samples=1024,2048", "model.mlp_width=8")

    again = _sweep(multirun.tmp, *args)
    assert again.returncode == 0, _out(again)
    assert {name: _fingerprint(root / name) for name in _run_dirs(root)} == before
    assert "4 runs, 4 completed already (skipped)" in again.stdout
    assert again.stdout.count("completed already, skipped") == 4
    assert not TRAINING_LINE.search(again.stdout), again.stdout[-3000:]
    assert set(_table_rows(again.stdout).values()) == {"completed"}

    gone = _name(2048, 8)
    shutil.rmtree(root / gone)
    third = _sweep(multirun.tmp, *args)
    assert third.returncode == 0, _out(third)
    assert _run_dirs(root) == set(before)  # the same names again: the relaunch found its runs
    _assert_complete(root / gone, 2048, 8, 8)
    for name in set(before) - {gone}:
        assert _fingerprint(root / name) == before[name], f"{name} was redone"
    assert "4 runs, 3 completed already (skipped)" in third.stdout
    assert third.stdout.count("completed already, skipped") == 3
    trained = [line for line in third.stdout.splitlines() if TRAINING_LINE.search(line)]
    assert len(trained) == 1 and gone in trained[0], trained


# --- a failing job -----------------------------------------------------------------------------

def test_a_failing_job_is_recorded_and_retried_only_with_retry_failed(tmp_path):
    args = ("model.embedding_dim=4,6", "data.num_train_samples=1024", "model.mlp_width=8")
    root = tmp_path / "runs" / "multirun"
    good, bad = root / _name(1024, 4), root / _name(1024, 6)

    first = _sweep(tmp_path, *args)
    assert first.returncode != 0, _out(first)
    _assert_complete(good, 1024, 4, 8)  # the failure did not stop the other job
    s = _summary(bad)
    assert s["status"] == "failed" and s["run_name"] == bad.name
    assert s["error"].startswith("ConfigError: model.embedding_dim=6 is not a multiple of 4"), s["error"]
    assert _table_rows(first.stdout) == {good.name: "completed", bad.name: "failed"}
    assert "    ConfigError: model.embedding_dim=6" in first.stdout  # the table says why
    assert f"sweep {root}: 1 completed, 1 failed" in first.stdout
    good_before, bad_before = _fingerprint(good), _fingerprint(bad)

    # Relaunched as is: the failed run is not retried (and the completed one not retrained).
    second = _sweep(tmp_path, *args)
    assert second.returncode != 0, _out(second)
    assert _fingerprint(good) == good_before and _fingerprint(bad) == bad_before
    assert f"{bad}: failed before, skipped (retry with retry_failed=true)" in second.stdout
    assert f"{good}: completed already, skipped" in second.stdout
    assert _table_rows(second.stdout) == {good.name: "completed", bad.name: "failed"}

    # retry_failed=true: the failed run is tried again (and fails again), nothing else changes.
    third = _sweep(tmp_path, *args, "retry_failed=true")
    assert third.returncode != 0, _out(third)
    assert _run_dirs(root) == {good.name, bad.name}  # retry_failed is not part of the names
    assert _fingerprint(good) == good_before
    assert _fingerprint(bad)["summary.json"][0] > bad_before["summary.json"][0]
    s = _summary(bad)
    assert s["status"] == "failed" and "not a multiple of 4" in s["error"]
    assert "failed before, skipped" not in third.stdout
    assert f"{bad} failed: model.embedding_dim=6 is not a multiple of 4" in third.stdout
    assert _table_rows(third.stdout) == {good.name: "completed", bad.name: "failed"}


def test_table_rows_tell_every_run_apart():
    from runner.report import format_table

    rows = [{"run": f"data.num_eval_samples=4096,n=1024,d=4,w=8,trainer.embedding_lr={lr}", "status": "completed"}
            for lr in ("0.01", "0.05")]
    body = format_table(rows).splitlines()[2:]
    assert len(body) == 2 and len({line.split()[0] for line in body}) == 2, body


# --- the grids sweeper and named sweeps ----------------------------------------------------------

def test_expand_is_the_union_of_grids_with_each_point_once():
    from runner.grids import expand

    jobs = expand({}, [{"n": "1,2", "d": "4"}, {"n": "2", "d": "4,8"}], [])
    assert jobs == [["n=1", "d=4"], ["n=2", "d=4"], ["n=2", "d=8"]]  # n=2,d=4 is shared: one job
    # Key order inside a grid does not matter to the dedup.
    assert expand({}, [{"n": "1", "d": "4"}, {"d": "4", "n": "1"}], []) == [["n=1", "d=4"]]
    # No grids: one product, like Hydra's basic sweeper.
    assert expand({"a": "1"}, [], ["b=1,2"]) == [["a=1", "b=1"], ["a=1", "b=2"]]


def test_expand_precedence_is_command_line_then_grid_then_params():
    from runner.grids import expand

    params = {"a": "1", "b": "1,2", "c": "1"}
    grids = [{"b": "3,4", "c": "x"}, {"c": "y"}, {"b": "3", "c": "x"}]
    jobs = [sorted(j) for j in expand(params, grids, [])]
    assert jobs == [["a=1", "b=3", "c=x"], ["a=1", "b=4", "c=x"],  # grid 1 overrides params' b and c
                    ["a=1", "b=1", "c=y"], ["a=1", "b=2", "c=y"]]  # grid 2 keeps params' b; grid 3 is a dup
    # The command line beats both, for plain values and sweeps; the grids' own axes remain.
    jobs = [tuple(sorted(j)) for j in expand(params, grids, ["c=z", "a=5,6"])]
    assert len(jobs) == 8 and set(jobs) == {(f"a={a}", f"b={b}", "c=z") for a in (5, 6) for b in (1, 2, 3, 4)}


def _compose_sweep(overrides: list[str]):
    from runner.compose import compose

    return compose(overrides, with_hydra=True)


def _values(run_dir: Path) -> dict:
    return dict(part.split("=") for part in run_dir.name.split(","))


def test_demo_sweep_spans_the_data_and_parameter_axes(tmp_path):
    from runner.grids import expand
    from runner.report import expected_run_dirs

    cfg = _compose_sweep(["sweep=demo", f"out_root={tmp_path}"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("GridsSweeper") and cfg.sweep_name == "demo"
    jobs = expand(dict(sweeper.params or {}), [dict(g) for g in sweeper.grids], list(cfg.hydra.overrides.task))
    points = {tuple(sorted(j)) for j in jobs}
    assert len(points) == len(jobs) >= 20

    dirs = expected_run_dirs(cfg)
    assert len(dirs) == len(jobs) and len(set(dirs)) == len(dirs)  # every job its own run dir
    assert all(d.parent == tmp_path / "demo" for d in dirs)
    assert dirs == expected_run_dirs(_compose_sweep(["sweep=demo", f"out_root={tmp_path}"]))  # stable
    # Names carry exactly the values; the top width's runs name their world (data=synthetic_top).
    named = [_values(d) for d in dirs]
    assert all(set(v) - {"data"} == {"n", "d", "bottom", "top", "seed"} for v in named)
    runs = [{"data": "synthetic", **{k: (v if k == "data" else int(v)) for k, v in values.items()}}
            for values in named]
    assert {r["data"] for r in runs} == {"synthetic", "synthetic_top"}

    # The data axis from one run, in each world: the largest data size at the base model, >= 3 seeds.
    largest = max(r["n"] for r in runs)
    assert largest == 2 ** 20
    base = (16, 64, 64)
    for world in ("synthetic", "synthetic_top"):
        assert len({r["seed"] for r in runs if r["n"] == largest and r["data"] == world
                    and (r["d"], r["bottom"], r["top"]) == base}) >= 3, world
    # Each scheme over >= 5 values sharing the base point, >= 2 seeds each, at one data size:
    # the embedding dim and the bottom width on the default world, the top width on its own.
    n = 2 ** 20
    for key, others, world in (("d", ("bottom", "top"), "synthetic"), ("bottom", ("d", "top"), "synthetic"),
                               ("top", ("d", "bottom"), "synthetic_top")):
        at_n = [r for r in runs if r["n"] == n and r["data"] == world]
        axis = [r for r in at_n if all(r[o] == dict(zip(("d", "bottom", "top"), base))[o] for o in others)]
        values = {r[key] for r in axis}
        assert len(values) >= 5, (key, values)
        assert all(len({r["seed"] for r in axis if r[key] == v}) >= 2 for v in values), key
    # The joint law's crossing on the default world: every embedding dim of the scheme (the base
    # included) is evaluated at log-spaced data sizes from 2^16 or earlier, so >= 3 model sizes
    # meet >= 3 data sizes.
    overrides = [dict(o.split("=", 1) for o in job) for job in jobs]
    scheme = [o for o in overrides if o.get("data", "synthetic") == "synthetic"
              and (o["model.dense_arch_width"], o["model.over_arch_width"]) == ("64", "64")]
    assert len({o["model.embedding_dim"] for o in scheme}) >= 5
    assert all(int(o.get("trainer.eval_log_spaced_from") or 2 ** 40) <= 2 ** 16 for o in scheme), scheme


def test_named_sweep_runs_through_the_grids_sweeper(tmp_path):
    """sweep=demo with the data size and seed pinned on the command line: the 56 jobs collapse to
    the 14 model sizes of the two worlds, tiny (and two at a time, the demo's joblib launcher)."""
    from runner.report import expected_run_dirs

    args = ["sweep=demo", "data.num_train_samples=1024", "seed=0", "trainer.eval_log_spaced_from=null",
            *TINY, f"out_root={tmp_path / 'runs'}"]
    proc = cli(args, cwd=tmp_path, timeout=600)  # no -m: the sweep file sets hydra.mode=MULTIRUN
    assert proc.returncode == 0, _out(proc)
    expected = expected_run_dirs(_compose_sweep(args))
    assert len(expected) == 14 and len(set(expected)) == 14
    root = tmp_path / "runs" / "demo"
    assert _run_dirs(root) == {d.name for d in expected}
    for d in expected:
        v = _values(d)
        s = _summary(d)
        assert s["status"] == "completed" and s["num_train_samples"] == 1024
        assert (s["embedding_dim"], s["dense_arch_width"], s["over_arch_width"]) == (
            int(v["d"]), int(v["bottom"]), int(v["top"]))
    launched = re.findall(r"run \[(\d+)/14\] (\S+)", proc.stdout)
    # [k/14] is the sweeper's order (two jobs run at a time, so their log lines may interleave).
    assert sorted((int(k), name) for k, name in launched) == [(k + 1, d.name) for k, d in enumerate(expected)]
    assert f"sweep {root}: 14 completed" in proc.stdout
    assert {_summary(d)["data"] for d in expected} == {"synthetic", "synthetic_top"}


# --- launchers ---------------------------------------------------------------------------------

def test_submitit_local_launcher_runs_the_sweep(tmp_path):
    proc = _sweep(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10",
                  "data.num_train_samples=1024,2048", "model.embedding_dim=4", "model.mlp_width=8")
    assert proc.returncode == 0, _out(proc)
    root = tmp_path / "runs" / "multirun"
    assert _run_dirs(root) == {_name(1024, 4), _name(2048, 4)}
    for n in (1024, 2048):
        _assert_complete(root / _name(n, 4), n, 4, 8)
    assert "Submitit 'local' sweep" in proc.stdout
    job_logs = list((root / ".submitit").glob("*/*_log.out"))
    assert len(job_logs) == 2, job_logs  # each job ran in its own submitit process
    assert _table_rows(proc.stdout) == {_name(1024, 4): "completed", _name(2048, 4): "completed"}


def test_joblib_launcher_runs_jobs_in_parallel_and_its_outcomes_reach_the_exit_status(tmp_path):
    """hydra/launcher=joblib (the demo's, two jobs at a time): on_job_end runs in the worker
    processes, so the sweeper records the outcomes from the jobs' returns; a failed job still
    makes the sweep exit non-zero, and does not stop the others."""
    proc = _sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.num_threads=1",
                  "model.embedding_dim=4,6,8", "data.num_train_samples=1024", "model.mlp_width=8")
    assert proc.returncode != 0, _out(proc)
    root = tmp_path / "runs" / "multirun"
    _assert_complete(root / _name(1024, 4), 1024, 4, 8)
    _assert_complete(root / _name(1024, 8), 1024, 8, 8)
    assert _summary(root / _name(1024, 6))["status"] == "failed"
    assert "Joblib.Parallel(n_jobs=2" in proc.stdout + proc.stderr
    assert _table_rows(proc.stdout) == {_name(1024, 4): "completed", _name(1024, 6): "failed",
                                        _name(1024, 8): "completed"}
    # Without the failing job the same parallel sweep exits 0: the outcomes were read, not assumed.
    ok = _sweep(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer.num_threads=1",
                "model.embedding_dim=4,8", "data.num_train_samples=1024", "model.mlp_width=8")
    assert ok.returncode == 0, _out(ok)
    assert f"{root / _name(1024, 4)}: completed already, skipped" in ok.stdout + ok.stderr


@pytest.fixture(scope="module")
def torchrun_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("torchrun")
    proc = _sweep(tmp, "launcher=torchrun", "launcher.nproc_per_node=2", "sharding=table_wise",
                  "data.num_train_samples=1024", "model.embedding_dim=4", "model.mlp_width=8")
    run_dir = tmp / "runs" / "multirun" / f"{PREFIX}n=1024,d=4,w=8,sharding=table_wise"
    return SimpleNamespace(proc=proc, run_dir=run_dir)


@pytest.mark.distributed
def test_torchrun_launcher_trains_a_sweep_job_on_two_gloo_ranks(torchrun_sweep):
    proc, run_dir = torchrun_sweep.proc, torchrun_sweep.run_dir
    assert proc.returncode == 0, _out(proc)
    assert _run_dirs(run_dir.parent) == {run_dir.name}  # launcher keys stay out of the name
    s = _assert_complete(run_dir, 1024, 4, 8, world_size=2)
    assert set(s["tables_per_rank"]) == {"0", "1"}
    cfg = OmegaConf.load(run_dir / "config.yaml")  # the frozen config the ranks read
    assert cfg.launcher.nproc_per_node == 2 and cfg.sharding.type == "table_wise"
    assert "starting 2 ranks" in proc.stdout and "-m runner.worker" in proc.stdout
    assert f"sweep {run_dir.parent}: 1 completed" in proc.stdout


@pytest.mark.distributed
def test_torchrun_config_is_written_once_by_the_hydra_job(torchrun_sweep):
    proc, run_dir = torchrun_sweep.proc, torchrun_sweep.run_dir
    assert proc.returncode == 0, _out(proc)
    stamp = re.search(r"^\[([\d\- :,]+)\]\[dlrm\]\[INFO\] - starting 2 ranks", proc.stdout, re.M)
    assert stamp, proc.stdout[-3000:]
    ranks_started = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    # Written before torchrun started (the ranks need seconds to start), never after.
    assert (run_dir / "config.yaml").stat().st_mtime < ranks_started + 0.5


# --- the per-run lock ----------------------------------------------------------------------------

def _tiny_cfg(*overrides: str):
    from harness import compose

    return compose([*TINY, "data.num_train_samples=1024", "model.embedding_dim=4", *overrides])


def test_run_lock_is_exclusive_and_released():
    from runner.lock import RunLock, RunLocked

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        with RunLock(Path(d)):
            with pytest.raises(RunLocked, match="is being trained by pid"):
                with RunLock(Path(d)):
                    pass
        with RunLock(Path(d)):  # released on exit
            pass


def test_a_run_being_trained_elsewhere_is_skipped_with_a_clear_message(tmp_path, caplog):
    from runner.job import launch

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom pathlib import Path\nfrom runner.lock import RunLock\n"
         "with RunLock(Path(sys.argv[1])):\n    print('held', flush=True)\n    sys.stdin.read()\n", str(run_dir)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with caplog.at_level(logging.INFO, logger="dlrm"):
            status = launch(_tiny_cfg("model.mlp_width=8"), run_dir)
        assert status == "locked"
        assert sorted(p.name for p in run_dir.iterdir()) == [".lock"]  # wrote nothing
        message = " ".join(r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)
        assert f"{run_dir} is being trained by pid {holder.pid}" in message
        assert "skipped here" in message
    finally:
        holder.kill()  # a killed holder must not leave the lock stale
        holder.wait(timeout=30)
    assert launch(_tiny_cfg("model.mlp_width=8"), run_dir) == "completed"
    assert _summary(run_dir)["status"] == "completed"


def test_sweep_exit_code_counts_a_locked_run_as_not_done():
    from runner.report import Outcomes

    outcomes = Outcomes()
    outcomes.record(Path("a"), "completed")
    outcomes.record(Path("b"), "skipped")
    assert outcomes.exit_code() == 0
    outcomes.record(Path("c"), "locked")
    assert outcomes.exit_code() == 1


# --- resuming a run dir of another config ------------------------------------------------------

def test_resuming_a_run_dir_of_a_different_config_is_refused(tmp_path):
    from dlrm.config import ConfigError
    from runner.job import decide, launch, prepare

    def freeze_config(cfg, run_dir):  # what a relaunch does under the lock before training
        decide(cfg, run_dir)  # raises for a run dir of another config
        prepare(cfg, run_dir, 1)

    run_dir = tmp_path / "run"
    assert launch(_tiny_cfg("model.mlp_width=8"), run_dir) == "completed"
    frozen = (run_dir / "config.yaml").read_bytes()
    (run_dir / "summary.json").unlink()  # now an unfinished run: a relaunch would resume it

    with pytest.raises(ConfigError, match=r"model\.mlp_width: 8 -> 16"):
        freeze_config(_tiny_cfg("model.mlp_width=16"), run_dir)

    status = launch(_tiny_cfg("model.mlp_width=16"), run_dir)
    assert status == "conflict"  # counted as a failure of the sweep (exit code), but...
    assert not (run_dir / "summary.json").exists()  # ...the other config's run is not marked failed
    assert (run_dir / "config.yaml").read_bytes() == frozen  # and its config is untouched
    assert launch(_tiny_cfg("model.mlp_width=8"), run_dir) == "completed"  # its owner resumes it

    # Result-neutral differences (where the sweep lives, logging) may resume it.
    freeze_config(_tiny_cfg("model.mlp_width=8", f"out_root={tmp_path / 'moved'}", "sweep_name=x",
                            "trainer.log_every_samples=2048"), run_dir)
