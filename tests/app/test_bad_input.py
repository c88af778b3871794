"""Bad input refused before any work, in one line that names the key and the fix."""
from __future__ import annotations

import os
import shlex

import pytest

from harness import REPO, cli, compose, typed
from dlrm.config import ConfigError
from dlrm.validate import validate


def _refusal(proc) -> str:
    """The one line a refused command prints (Hydra adds its HYDRA_FULL_ERROR hint)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in out, out[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "HYDRA_FULL_ERROR" not in line]
    assert len(lines) == 1, proc.stderr
    return lines[0]


# --- where runs go ----------------------------------------------------------------------------

def test_an_out_root_that_is_a_file_is_one_line_naming_the_key(tmp_path):
    (tmp_path / "afile").write_text("")
    line = _refusal(cli(["-m", "out_root=afile"], cwd=tmp_path, timeout=120))
    assert line == "out_root=afile is a file, not a directory: set out_root to a directory (it is created if missing)"
    assert (tmp_path / "afile").read_text() == "" and sorted(os.listdir(tmp_path)) == ["afile"]


def test_a_sweep_name_that_leaves_the_root_is_one_line_naming_the_key(tmp_path):
    line = _refusal(cli(["-m", "sweep_name=../../x", f"out_root={tmp_path / 'runs'}"], cwd=tmp_path, timeout=120))
    assert line.startswith("sweep_name='../../x' leaves the runs root")
    assert not (tmp_path / "runs").exists()


def test_an_out_root_in_a_directory_this_user_may_not_write_is_refused(tmp_path, monkeypatch):
    """The check runs as Hydra resolves the run dir, before it creates anything (root may write
    anywhere, so the permission is denied by os.access here)."""
    from runner.runs_root import RunsRootRefused

    (tmp_path / "ro").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path / "ro") else real_access(p, mode))
    cfg = compose([f"out_root={tmp_path / 'ro' / 'runs'}"], with_hydra=True)
    with pytest.raises(RunsRootRefused) as info:
        str(cfg.hydra.run.dir)
    assert str(info.value) == (f"out_root={tmp_path / 'ro' / 'runs'} would be created in {tmp_path / 'ro'}, a "
                               f"directory this user may not write: set out_root to a directory you can write")


# --- seeds ------------------------------------------------------------------------------------

@pytest.mark.parametrize("data", ["synthetic", "criteo_kaggle"])
def test_a_negative_seed_is_refused_as_negative(data):
    with pytest.raises(ConfigError, match=r"^seed must be an integer >= 0, got -1: set seed=N with N >= 0$"):
        validate(typed([f"data={data}", "seed=-1"]), 1, "cpu")


# --- a run name in hydra.run.dir --------------------------------------------------------------

def test_the_readme_quotes_a_run_name_in_hydra_run_dir_so_that_it_is_that_runs_dir():
    """A run name's `=` and `,` are Hydra syntax: unquoted, the override does not parse; the
    README's quoted form must name exactly the dir the same command picks by itself."""
    readme = (REPO / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith(".venv/bin/python -m dlrm.train")
                and "hydra.run.dir=" in x and "," in x.split("hydra.run.dir=")[1])
    args = shlex.split(line)[3:]
    run_dir_arg = next(a for a in args if a.startswith("hydra.run.dir="))
    others = [a for a in args if a != run_dir_arg]
    assert compose(args, with_hydra=True).hydra.run.dir == compose(others, with_hydra=True).hydra.run.dir
    from hydra.errors import OverrideParseException

    with pytest.raises(OverrideParseException):  # why the quotes are needed
        compose(others + [run_dir_arg.replace('"', "")], with_hydra=True)


# --- explicit layer lists -----------------------------------------------------------------------

@pytest.mark.parametrize("override,message", [
    ("model.over_arch_layer_sizes=[0,1]", "model.over_arch_layer_sizes must be a non-empty list of positive ints, "
                                          "got [0, 1]"),
    ("model.over_arch_layer_sizes=[32,-3,1]", "model.over_arch_layer_sizes must be a non-empty list of positive"),
    ("model.over_arch_layer_sizes=[]", "model.over_arch_layer_sizes must be a non-empty list of positive"),
    ("model.dense_arch_layer_sizes=[]", "model.dense_arch_layer_sizes must be a non-empty list of positive"),
    ("model.dense_arch_layer_sizes=[64,0,16]", "model.dense_arch_layer_sizes must be a non-empty list of positive"),
    ("model.over_arch_layer_sizes=[64,1]", "model.over_arch_layer_sizes=[64, 1] and model.over_arch_width=32 "
                                           "disagree: the list is the arch that is built"),
])
def test_every_explicit_layer_list_is_validated(override, message):
    extra = ["model.over_arch_width=32"] if "disagree" in message else []
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        validate(typed([override, *extra]), 1, "cpu")


def test_the_summary_records_the_layers_built_not_the_configs_depth(tmp_path):
    """Explicit lists of three layers each: the run's record says depth 3 (the config's
    mlp_depth, 2, is what the lists override)."""
    from harness import run_job

    s = run_job(["data.num_train_samples=1024", "model.dense_arch_layer_sizes=[8,8,16]",
                 "model.over_arch_layer_sizes=[8,8,1]"], tmp_path / "run")["summary"]
    assert s["status"] == "completed"
    assert (s["mlp_depth"], s["dense_arch_width"], s["over_arch_width"], s["mlp_width"]) == (3, 8, 8, 8)
    assert s["over_arch_layer_sizes"] == [8, 8, 1]


def test_the_oracle_follows_an_explicit_top_layer_list(tmp_path):
    """On the top's world the oracle depends on the top width: an explicit [8, 1] is width 8."""
    from harness import run_job

    def oracle(*overrides: str) -> float:
        run = run_job(["data=synthetic_top", "data.num_train_samples=1024", *overrides], tmp_path / "_".join(overrides))
        return run["summary"]["oracle_ne"]

    listed = oracle("model.over_arch_layer_sizes=[8,1]")
    assert listed == oracle("model.over_arch_width=8")
    assert listed > oracle("model.over_arch_width=64")


# --- the world's cardinalities ------------------------------------------------------------------

@pytest.mark.parametrize("data", ["synthetic", "synthetic_top", "synthetic_saturating"])
@pytest.mark.parametrize("delta", [1, -1])
def test_cardinalities_of_another_length_than_the_worlds_features_are_refused(data, delta):
    n = len(compose([f"data={data}"]).data.cardinalities)  # the world's own features
    cards = ",".join(["10"] * (n + delta))
    with pytest.raises(ConfigError, match=rf"^data\.cardinalities has {n + delta} entries but the world has "
                                          rf"data\.num_sparse_features={n} sparse features: give one cardinality "
                                          rf"per feature \({n} entries\)"):
        validate(typed([f"data={data}", f"data.cardinalities=[{cards}]"]), 1, "cpu")


def test_a_world_of_another_size_is_planted_when_both_keys_say_so():
    cards = ",".join(["10"] * 27)
    validate(typed([f"data.cardinalities=[{cards}]", "data.num_sparse_features=27"]), 1, "cpu")
