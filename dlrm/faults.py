"""Fault injection for the tests of the failure paths (`debug.fault*`): a rank's own error,
or a rank lost outright, at a chosen step."""
from __future__ import annotations

import os
import signal

FAULTS = ("error", "kill")


class InjectedFault(RuntimeError):
    """The error `debug.fault=error` raises: a bug in one rank's code, as far as the run can tell."""


def inject_fault(kind: str, rank: int, step: int) -> None:
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no checkpoint, no summary: a lost rank
    raise InjectedFault(f"injected fault on rank {rank} after step {step} (debug.fault_at_step)")
