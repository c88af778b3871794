"""Bad input refused before any work, in one line that names the key and the fix."""
from __future__ import annotations

import os
import shlex

import pytest

from harness import REPO, cli, compose
from dlrm.config import ConfigError, validate


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
        validate(compose([f"data={data}", "seed=-1"]), 1, "cpu")


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
