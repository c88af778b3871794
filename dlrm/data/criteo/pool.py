"""Running one task per day over worker processes, with progress and a clean failure.

Workers report progress (lines or rows done) through a queue to the parent's `Progress`.
The first failure stops the run: the other workers are killed mid-day (their output has
temp names only), and the error is raised in the parent.
"""
from __future__ import annotations

import multiprocessing as mp
import queue as queue_mod
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Optional

from dlrm.data.criteo.errors import CriteoPreprocessError

_progress_queue = None


def log(msg: str) -> None:
    print(f"[criteo] {msg}", file=sys.stderr, flush=True)


class Progress:
    """A tqdm bar on a terminal; otherwise a log line every `every` seconds and at the end."""

    def __init__(self, desc: str, total: Optional[int], unit: str = "lines", every: float = 10.0):
        self.desc, self.total, self.unit, self.every = desc, total, unit, every
        self.n, self.t0, self.last = 0, time.time(), time.time()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, dynamic_ncols=True, smoothing=0.1)

    def update(self, k: int) -> None:
        self.n += k
        if self.bar is not None:
            self.bar.update(k)
        elif time.time() - self.last >= self.every:
            self.last = time.time()
            self._log()

    def _log(self) -> None:
        tot = f"/{self.total:,}" if self.total else ""
        rate = self.n / max(time.time() - self.t0, 1e-9)
        log(f"{self.desc}: {self.n:,}{tot} {self.unit} ({rate:,.0f} {self.unit}/s)")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._log()


def tune_malloc() -> None:
    """Keep freed chunk temporaries in the heap instead of returning them to the OS.

    Parsing allocates the same few-MB temporaries for every chunk; glibc would mmap and
    unmap them each time, and the page faults cost up to half the parse time.  Memory
    stays bounded (the heap keeps about one chunk's worth).  A no-op off glibc.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap for large blocks
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of free heap
    except (OSError, AttributeError):
        pass


def _init_worker(q) -> None:
    global _progress_queue
    _progress_queue = q
    try:  # Linux: a worker dies with the main process (e.g. when that is killed)
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def report(n: int) -> None:
    """Called by a task: n more lines (or rows) done."""
    if _progress_queue is not None:
        _progress_queue.put(n)


def run_tasks(fn, arg_tuples: list[tuple], workers: int, desc: str, total: Optional[int],
              unit: str = "lines") -> list:
    """Run fn(*args) for each tuple, over worker processes when workers > 1.

    A worker killed by the OS is reported as an error too, never waited for forever
    (that is why this uses ProcessPoolExecutor, not multiprocessing.Pool).
    """
    global _progress_queue
    prog = Progress(desc, total, unit=unit)
    if workers <= 1 or len(arg_tuples) <= 1:
        class _Q:
            def put(self, k):
                prog.update(k)
        saved, _progress_queue = _progress_queue, _Q()
        try:
            return [fn(*a) for a in arg_tuples]
        finally:
            _progress_queue = saved
            prog.close()

    def drain() -> None:
        while True:
            try:
                prog.update(q.get_nowait())
            except queue_mod.Empty:
                return

    q = mp.Queue()
    ex = ProcessPoolExecutor(min(workers, len(arg_tuples)), initializer=_init_worker, initargs=(q,))
    ok = False
    try:
        futures = [ex.submit(fn, *a) for a in arg_tuples]
        while True:
            drain()
            finished, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
            for f in finished:
                err = f.exception()
                if isinstance(err, BrokenProcessPool):
                    raise CriteoPreprocessError(
                        "a worker process died (killed by the OS: out of memory?); finished days are kept, "
                        "rerun the same command to resume (with fewer --workers or --chunk-lines)") from err
                if err is not None:
                    raise err
            if not pending:
                break
        drain()
        ok = True
        return [f.result() for f in futures]
    finally:
        if not ok:  # stop the other workers now, mid-day: their output has temp names only
            for proc in list(getattr(ex, "_processes", {}).values()):
                proc.kill()
        ex.shutdown(wait=True, cancel_futures=True)
        prog.close()
