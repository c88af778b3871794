"""`python -m dlrm.train` (also `dlrm-train`): one run, or with -m / sweep=NAME a sweep.

Each job is `runner.job.launch`; the sweep report (runner/report.py) prints every run's
status at the end, and the exit status is non-zero if any run failed, diverged or did not
finish.
"""
from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runner import compose
from runner.job import launch
from runner.report import OUTCOMES, progress_label

log = logging.getLogger("dlrm")
compose.register()


def quiet_warnings() -> None:
    """TorchRec 1.8 / torch 2.13 deprecation chatter that says nothing about this run.  Called
    at import and again in each job: a joblib worker unpickles the task without this module's
    top level."""
    for category in (FutureWarning, DeprecationWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*an autograd kernel was not registered.*")
    warnings.filterwarnings("ignore", message=".*is_fx_tracing.*")


quiet_warnings()


@hydra.main(config_path=str(compose.CONFIG_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> str:
    quiet_warnings()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    label = progress_label(run_dir)
    if hc.mode.name == "MULTIRUN":
        log.info("run %s", label)
    return launch(cfg, run_dir, label)


def cli() -> None:
    try:
        compose.check_overrides(sys.argv[1:])  # before Hydra composes anything: one line, no traceback
    except compose.MovedKey as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    main()
    sys.exit(OUTCOMES.exit_code())


if __name__ == "__main__":
    cli()
