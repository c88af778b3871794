"""The run-directory contract (docs/RUNDIR.md): names in `contract`, safe file access in `io`,
summary.json's one writer in `summary_writer`.
Standard library only: training, the app and the analysis all import it."""
from rundir.contract import *  # noqa: F401,F403
from rundir.io import (MetricsLog, atomic_write_json, atomic_write_text, check_writable,  # noqa: F401
                       iter_points, read_summary, run_status, to_json)
from rundir.summary_writer import summary_of, write_summary  # noqa: F401
