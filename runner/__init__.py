"""The app: one run or a sweep of them, from the command line (`python -m dlrm.train`).

Hydra composes the typed config (compose.py), names each run (naming.py), expands named
sweeps (grids.py); a job decides under its run dir's lock whether to skip, resume or
refuse it (job.py), then trains here or on torchrun's ranks (ranks.py, worker.py); the
sweep report (report.py) prints every run's status.  The training library `dlrm` never
imports this package or Hydra.
"""
