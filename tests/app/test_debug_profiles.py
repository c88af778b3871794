"""The `debug` group of quick-run profiles (configs/debug/), and the fault-injection keys'
move to the `faults` group: an override of an old `debug.<key>` is refused before any work."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from harness import REPO, cli, compose


@pytest.mark.parametrize("profile, shown", [
    ("tiny", ["num_train_samples: 4096", "num_eval_samples: 4096", "eval_every_samples: 2048",
              "out_root: runs/debug"]),
    ("one_step", ["num_train_samples: ${trainer.batch_size}", "num_eval_samples: 4096",
                  "eval_every_samples: null", "out_root: runs/debug"]),
])
def test_a_profile_composes_and_shows_its_values(profile, shown):
    proc = subprocess.run([sys.executable, "-m", "dlrm.train", f"debug={profile}", "--cfg", "job"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for line in shown:
        assert line in proc.stdout, line


def test_profiles_override_the_defaults_and_leave_the_default_root():
    default, tiny, one = compose([]), compose(["debug=tiny"]), compose(["debug=one_step", "trainer.batch_size=256"])
    assert default.out_root == "runs" and tiny.out_root == one.out_root == "runs/debug"
    assert tiny.data.num_train_samples < default.data.num_train_samples
    assert one.data.num_train_samples == 256  # one global batch, whatever its size
    assert compose(["debug=tiny", "out_root=/elsewhere"]).out_root == "/elsewhere"  # the command line wins


def test_one_step_trains_one_step_and_completes(tmp_path):
    """The command as a user types it, from a fresh directory: its run dir is under runs/debug."""
    proc = cli(["debug=one_step"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "debug" / "single" / "debug=one_step"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 1
    assert summary["num_train_samples"] == summary["batch_size"]
    assert not (tmp_path / "runs" / "single").exists()  # nothing in the default root's run dirs


@pytest.mark.parametrize("override, new", [("debug.nan_at_step=3", "faults.nan_at_step=3"),
                                           ("+debug.fault=kill", "+faults.fault=kill")])
def test_an_old_fault_key_is_refused_in_one_line_naming_the_new_one(tmp_path, override, new):
    proc = cli([override, f"out_root={tmp_path}"], cwd=REPO, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and new in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())  # refused before any work


def test_composing_an_old_fault_key_is_refused():
    from runner.compose import MovedKey

    with pytest.raises(MovedKey, match=r"use faults\.sigterm_at_step=5"):
        compose(["debug.sigterm_at_step=5"])


def test_a_run_recorded_with_the_old_debug_group_is_still_that_run(tmp_path):
    """A config.yaml written before the move holds the fault keys under `debug`: the same run,
    so a completed one is skipped, not refused as another config."""
    import rundir
    from rundir import Status
    from runner.job import decide, frozen_config

    cfg = compose([])
    old = OmegaConf.create(frozen_config(cfg))
    old.debug = old.faults
    del old["faults"]
    (tmp_path / rundir.CONFIG_FILE).write_text(OmegaConf.to_yaml(old))
    rundir.atomic_write_json(tmp_path / rundir.SUMMARY_FILE, {"status": "completed"})
    assert decide(cfg, tmp_path, data_id="x") == Status.SKIPPED


def test_a_config_yaml_of_an_older_version_reads_back_as_todays_typed_config(tmp_path):
    """A torchrun worker resuming an older run reads its config.yaml back: the old fault group
    and a key added later (model.dense_arch_output) read as today's, not as an unknown key or
    a missing value."""
    from runner.compose import typed
    from runner.job import frozen_config

    old = OmegaConf.create(frozen_config(compose(["faults.nan_update_only=true"])))
    old.debug = old.faults
    del old["faults"]
    del old.model["dense_arch_output"]
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(old))
    cfg = typed(OmegaConf.load(tmp_path / "config.yaml"))
    assert cfg.faults.nan_update_only is True and cfg.model.dense_arch_output == "relu"
