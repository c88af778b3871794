"""Fixtures for the analysis tests: run directories written from a known law."""
import os

# As `python -m analysis` does: single-threaded BLAS (tiny matrices; see analysis/__main__.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

from synthetic_runs import World, write_sweep  # noqa: E402


@pytest.fixture(scope="session")
def world():
    return World()


@pytest.fixture(scope="session")
def demo_sweep(tmp_path_factory, world):
    """The demo sweep (two architectures, two seeds), written once per session."""
    root = tmp_path_factory.mktemp("demo_sweep")
    summaries = write_sweep(root, world, seeds=(0, 1))
    return root, summaries
