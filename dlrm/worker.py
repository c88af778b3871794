"""A rank started by torchrun for one job: reads the job's frozen config.yaml and trains.

`python -m torch.distributed.run --nproc_per_node=N -m dlrm.worker RUN_DIR`
(the Hydra job that started it resolved and wrote RUN_DIR/config.yaml once).
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from omegaconf import OmegaConf

from dlrm import rundir


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s][pid %(process)d] %(message)s")
    logging.getLogger("dlrm").setLevel(logging.INFO)
    if len(argv) != 1:
        print("usage: python -m dlrm.worker RUN_DIR (started by torchrun)", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    cfg = OmegaConf.load(run_dir / rundir.CONFIG_FILE)
    from dlrm.train import run_in_process

    status = run_in_process(cfg, run_dir, progress_label=run_dir.name, freeze=False)
    return 0 if status == rundir.STATUS_COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
