"""Every command the README shows is a promise.

Commands that are cheap run exactly as written (`--cfg job`, the analysis CLI and its
installed script on run dirs of the demo's shape). Commands whose runs are too long for the
test budget (full-size runs and sweeps), or that need a GPU or SLURM, are composed as
written through the real config tree, and the CPU ones validated: a mistyped key, group or
value in the README fails here. The torchrun lines run as written in tests/app/test_distributed.py,
`make demo` / `make test` in CI.
"""
from __future__ import annotations

import itertools
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from harness import REPO, compose, typed

PY = ".venv/bin/python"


def _readme_commands() -> list[str]:
    """The README's bash lines (continuations joined, comments dropped)."""
    text = (REPO / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```bash\n")[1:]]
    lines = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


TRAIN = [c for c in _readme_commands() if c.startswith(f"{PY} -m dlrm.train")]


def test_the_readme_shows_the_commands_these_tests_cover():
    assert len(TRAIN) >= 8
    assert any(c.startswith(f"{PY} -m analysis") for c in _readme_commands())
    assert any(c.startswith("dlrm-analyze") for c in _readme_commands())


@pytest.mark.parametrize("command", TRAIN, ids=range(len(TRAIN)))
def test_every_training_command_composes_as_written_and_cpu_ones_validate(command):
    from dlrm.validate import validate

    args = [a for a in shlex.split(command)[3:] if a not in ("-m", "--cfg", "job")]
    # A multirun's comma lists: every point of the product composes (a quoted value is one value).
    choices = [[a] if "," not in a or "[" in a or '"' in a else [f"{a.split('=')[0]}={v}" for v in a.split("=", 1)[1].split(",")]
               for a in args]
    for point in itertools.product(*choices):
        cfg = compose(list(point), with_hydra=True)
        assert cfg.hydra.launcher is not None
        if cfg.trainer.device == "cpu":
            validate(typed(cfg), int(cfg.launcher.nproc_per_node), "cpu")


def test_print_the_composed_config_as_written(tmp_path):
    command = next(c for c in TRAIN if "--cfg job" in c)
    proc = subprocess.run(shlex.split(command), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "embedding_dim: 16" in proc.stdout and "name: synthetic" in proc.stdout


@pytest.fixture(scope="module")
def demo_shaped_runs(tmp_path_factory) -> Path:
    from synthetic_runs import write_v2_sweep

    root = tmp_path_factory.mktemp("readme") / "runs" / "demo"
    write_v2_sweep(root)
    return root


@pytest.mark.parametrize("which", ["analysis", "dlrm-analyze"])
def test_the_analysis_commands_as_written(demo_shaped_runs, tmp_path, which):
    command = next(c for c in _readme_commands() if c.startswith(f"{PY} -m analysis" if which == "analysis"
                                                                   else "dlrm-analyze"))
    words = [w for w in shlex.split(command.replace("[more sweep dirs ...]", "")) if w not in ("[", "]")]
    words = [w.strip("[]") for w in words]
    sweep = words.index("--out") - 1
    words[sweep] = str(demo_shaped_runs)
    out = tmp_path / "report"
    words[words.index("--out") + 1] = str(out)
    if words[0] == PY:
        words[0] = sys.executable
    else:
        words[0] = str(Path(sys.executable).parent / words[0])
    proc = subprocess.run(words + ["--bootstrap", "100"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "report.md").is_file() and (out / "fits.json").is_file()


def test_the_planner_command_as_written(demo_shaped_runs, tmp_path):
    """The budget planner's line: its decision, and the next sweep it writes where it cannot decide."""
    command = next(c for c in _readme_commands() if c.startswith(f"{PY} -m analysis plan"))
    words = shlex.split(command)
    words[0] = sys.executable
    words[words.index("plan") + 1] = str(demo_shaped_runs)
    words[words.index("--out") + 1] = str(tmp_path / "plan")
    sweep = REPO / "configs" / "sweep" / "next.yaml"
    existed = sweep.exists()
    try:
        proc = subprocess.run(words + ["--bootstrap", "100"], cwd=REPO, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "undecided" in proc.stdout or "decided" in proc.stdout
        assert (tmp_path / "plan" / "budget_plan.md").is_file()
        if "next sweep:" in proc.stdout:
            assert sweep.is_file() and "python -m dlrm.train sweep=next" in sweep.read_text()
    finally:
        if not existed:
            sweep.unlink(missing_ok=True)
