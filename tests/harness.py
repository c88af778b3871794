"""Shared helpers: compose the real Hydra config tree, run jobs in-process or as the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# Small enough for a 2-core machine, large enough to learn something.
FAST = ["data.num_eval_samples=65536", "trainer.log_every_samples=1000000000"]

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)


def compose(overrides: list[str], with_hydra: bool = False):
    """The real config tree composed with `overrides` (and its `hydra` node if asked)."""
    from runner.compose import compose as runner_compose

    return runner_compose(overrides, with_hydra=with_hydra)


def typed(config):
    """The typed config the library takes (runner/compose.py `typed`): of a list of overrides
    (composed first) or of a composed config."""
    from runner.compose import typed as runner_typed

    return runner_typed(compose(config) if isinstance(config, list) else config)


def compose_hydra(overrides: list[str]):
    """The composed config with its `hydra` node (launcher, sweeper, run dirs)."""
    return compose(overrides, with_hydra=True)


def run_job(overrides: list[str], run_dir: Path) -> dict:
    """One job through the task's own launch path, in this process; returns its summary."""
    from runner.job import launch

    cfg = compose(FAST + overrides)
    status = launch(cfg, Path(run_dir))
    summary = json.loads((Path(run_dir) / "summary.json").read_text()) if (Path(run_dir) / "summary.json").exists() else None
    return {"status": status, "summary": summary}


def cli(args: list[str], cwd: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m dlrm.train ARGS` as a user runs it."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "dlrm.train", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
