"""Fault injection for the tests of the failure paths (the `faults` config group): a NaN loss
or update, a preemption, a rank's own error or a rank lost outright, at a chosen step.

The training loop calls one object at named points and holds no fault logic of its own:

    faults = Faults.from_config(cfg.faults, rank, first_attempt)
    faults.needs_plain_step      # a NaN is injected into the plain step, never the pipeline's
    loss = faults.on_loss(step, loss)       # the loss of step `step` (0-based), before it is read
    faults.poisons_update(step)  # whether step `step`'s update is made NaN (its loss is not)
    faults.after_step(step)      # after `step` steps: SIGTERM (a preemption), an error or SIGKILL

Never part of a study: with every key null (configs/faults/none.yaml) each call is a no-op.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from dlrm.config import FaultsConfig

FAULTS = ("error", "kill")


class InjectedFault(RuntimeError):
    """The error `faults.fault=error` raises: a bug in one rank's code, as far as the run can tell."""


def inject_fault(kind: str, rank: int, step: int) -> None:
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)  # no handler, no checkpoint, no summary: a lost rank
    raise InjectedFault(f"injected fault on rank {rank} after step {step} (faults.fault_at_step)")


@dataclass(frozen=True)
class Faults:
    """What this rank injects in this attempt of the run (see the module's docstring)."""

    nan_at_step: Optional[int] = None  # None: no NaN on this rank
    nan_update_only: bool = False
    sigterm_at_step: Optional[int] = None
    fault_at_step: Optional[int] = None  # None: no fault on this rank, or not in this attempt
    fault: str = "error"
    rank: int = 0

    @classmethod
    def from_config(cls, cfg: "FaultsConfig", rank: int, first_attempt: bool) -> "Faults":
        """`first_attempt`: the run starts afresh (no checkpoint restored); a fault is injected
        in the first attempt only, so that a resumed run does not repeat it."""
        nan_here = cfg.nan_rank in (None, rank)
        fault_here = first_attempt and cfg.fault_rank in (None, rank)
        return cls(nan_at_step=cfg.nan_at_step if nan_here else None, nan_update_only=cfg.nan_update_only,
                   sigterm_at_step=cfg.sigterm_at_step, fault_at_step=cfg.fault_at_step if fault_here else None,
                   fault=cfg.fault, rank=rank)

    @property
    def needs_plain_step(self) -> bool:
        """A NaN is injected into the plain step: TorchRec's pipeline is not used then."""
        return self.nan_at_step is not None

    def on_loss(self, step: int, loss: Any) -> Any:
        """The loss of step `step` (0-based) as the loop reads it: NaN at faults.nan_at_step."""
        if step == self.nan_at_step and not self.nan_update_only:
            return loss * float("nan")
        return loss

    def poisons_update(self, step: int) -> bool:
        """Whether step `step` (0-based) backpropagates a NaN (faults.nan_update_only): its
        update, not its loss, is poisoned, a NaN the loss shows only later."""
        return step == self.nan_at_step and self.nan_update_only

    def after_step(self, steps_taken: int) -> None:
        """After `steps_taken` steps: SIGTERM to this process (a preemption, as SLURM sends it)
        at faults.sigterm_at_step, the fault at faults.fault_at_step."""
        if steps_taken == self.sigterm_at_step:
            os.kill(os.getpid(), signal.SIGTERM)
        if steps_taken == self.fault_at_step:
            inject_fault(self.fault, self.rank, steps_taken)
