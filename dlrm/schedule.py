"""When things happen in a run, in samples seen: log points, evals, the learning rate.

Counting in samples (not steps or seconds) makes a schedule independent of the batch
size and the world size, and of where a resumed run restarts.
"""
from __future__ import annotations

import bisect
from typing import Iterable, Optional

from dlrm.config import TrainerConfig


class Every:
    """Due each time the sample count reaches the next mark: every multiple of `interval`
    (`Every(n, samples_seen)`), or each of a fixed list of counts (`Every.at(counts, ...)`).
    Marks at or before `samples_seen` (a resumed run) are never due again."""

    def __init__(self, interval: Optional[int], samples_seen: int = 0):
        self.interval = interval
        self._marks: Optional[list[int]] = None
        self.next = None if not interval else (samples_seen // interval + 1) * interval

    @classmethod
    def at(cls, counts: Iterable[int], samples_seen: int = 0) -> "Every":
        e = cls(None)
        e._marks = sorted(set(int(c) for c in counts))
        e.next = e._after(samples_seen)
        return e

    def _after(self, samples_seen: int) -> Optional[int]:
        i = bisect.bisect_right(self._marks, samples_seen)
        return self._marks[i] if i < len(self._marks) else None

    def __call__(self, samples_seen: int) -> bool:
        if self.next is None or samples_seen < self.next:
            return False
        if self._marks is not None:
            self.next = self._after(samples_seen)
        else:
            self.next = (samples_seen // self.interval + 1) * self.interval
        return True


def log_spaced(first: int, last: int, per_octave: int = 1) -> list[int]:
    """first * 2^(k / per_octave) for k = 0, 1, ... up to `last`, rounded to integers."""
    out, k = [], 0
    while True:
        n = int(round(first * 2.0 ** (k / per_octave)))
        if n > last:
            return sorted(set(out))
        out.append(n)
        k += 1


def eval_schedule(num_train_samples: int, trainer_cfg: TrainerConfig) -> list[int]:
    """Sample counts of the intermediate evals (the final eval at N always follows):
    every `eval_every_samples`, plus log-spaced ones from `eval_log_spaced_from`
    (`eval_log_spaced_per_octave` a doubling; 1 = powers of two times the first).  The
    data axis of a study comes from these: under a schedule independent of N, the eval at
    n inside this run is the final eval of an n-sample run."""
    counts: list[int] = []
    every = trainer_cfg.eval_every_samples
    if every:
        counts += list(range(every, num_train_samples, every))
    first = trainer_cfg.eval_log_spaced_from
    if first:
        counts += log_spaced(int(first), num_train_samples - 1, int(trainer_cfg.eval_log_spaced_per_octave))
    return sorted(set(c for c in counts if 0 < c < num_train_samples))


def warmup_scale(samples_seen: int, warmup_samples: int) -> float:
    """Linear warm-up to the base rate over `warmup_samples`, then constant: the schedule
    does not depend on the run's length, so intermediate evals are data-axis points."""
    if warmup_samples <= 0:
        return 1.0
    return min(1.0, samples_seen / warmup_samples)


LR_SCHEDULE = "constant"  # after the warm-up; recorded in every summary
LR_SCHEDULE_DEPENDS_ON_N = False
