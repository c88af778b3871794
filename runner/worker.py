"""A rank started by `runner.ranks` for one job: reads the job's frozen config.yaml and trains.

`python -m torch.distributed.run --nproc_per_node=N -m runner.worker RUN_DIR`
(the job that started it holds the run dir's lock and wrote RUN_DIR/config.yaml once; read
back, it is typed onto the schema, runner/compose.py `typed`, as the library takes it).
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from omegaconf import OmegaConf

import rundir
from rundir import Status


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s][pid %(process)d] %(message)s")
    logging.getLogger("dlrm").setLevel(logging.INFO)
    if len(argv) != 1:
        print("usage: python -m runner.worker RUN_DIR (started by torchrun)", file=sys.stderr)
        return 2
    run_dir = Path(argv[0])
    cfg = OmegaConf.load(run_dir / rundir.CONFIG_FILE)
    from dlrm import distributed
    from dlrm.checkpoint import REQUEUE_EXIT_CODE, Preempted
    from dlrm.run import run

    from runner import rank_errors
    from runner.compose import typed

    info = distributed.init(cfg.trainer.device, cfg.trainer.collective_timeout_s)
    peers_alive = False
    try:
        status = run(typed(cfg), run_dir, info, progress_label=run_dir.name)
        peers_alive = True
    except Preempted:
        return REQUEUE_EXIT_CODE  # the summary says interrupted; the job's launcher requeues
    except Exception as e:
        # This rank's own error fails the run, whichever rank met it; a lost peer leaves none.
        rank_errors.record(run_dir, int(os.environ.get("RANK", "0")), e)
        raise
    finally:
        distributed.shutdown(info, peers_alive)
    return 0 if status == Status.COMPLETED else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
