"""Hydra's output in a run dir -- the job log and `.hydra/` -- written only once the job takes
that run dir, and `.hydra/` by global rank 0 only.

Hydra writes both before the job starts: it opens RUN_DIR/train.log and saves the job's
config, its own config and the overrides into RUN_DIR/.hydra.  A job that is refused (a run
dir of another config, a run another process trains, a completed run) must leave that dir
byte-identical, and the ranks of a torchrun must not write the same files at once.  So
configs/config.yaml sets `hydra.output_subdir: null` and makes the job log's file handler a
`RunDirLog`, which holds its records until `keep_log()`: then the held records and every
later one go to the file.  `save_hydra_record` saves `.hydra/` as Hydra would have.  A job
that never takes its run dir writes nothing there; its records reached the console.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Optional

HYDRA_SUBDIR = ".hydra"  # where Hydra saves the job's record (its default output_subdir)


class RunDirLog(logging.FileHandler):
    """Hydra's job-log file handler, holding every record until the job takes its run dir."""

    def __init__(self, filename: str, mode: str = "a", encoding: Optional[str] = None) -> None:
        super().__init__(filename, mode, encoding, delay=True)  # delay: no file until a record is written
        self._held: Optional[list[logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self._held is None:
            super().emit(record)
        else:
            self._held.append(record)

    def keep(self) -> None:
        self.acquire()
        try:
            held, self._held = self._held, None
            for record in held or ():
                super().emit(record)
        finally:
            self.release()


def keep_log() -> None:
    """This job takes its run dir: its log, held so far, goes into it from now on."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, RunDirLog):
            handler.keep()


def save_hydra_record(cfg: Any, run_dir: Path) -> None:
    """RUN_DIR/.hydra/{config,hydra,overrides}.yaml, as Hydra's run_job saves them, on global
    rank 0 only; nothing outside a Hydra job, or where Hydra saved them itself (a user's
    hydra.output_subdir)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import _save_config  # Hydra's own writer of these three files

    if os.environ.get("RANK", "0") != "0" or not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.instance().cfg
    if hydra_cfg.hydra.output_subdir is not None:
        return
    out = Path(run_dir) / HYDRA_SUBDIR
    _save_config(cfg, "config.yaml", out)
    _save_config(hydra_cfg, "hydra.yaml", out)
    _save_config(hydra_cfg.hydra.overrides.task, "overrides.yaml", out)
