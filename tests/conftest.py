"""Fixtures shared by the top-level tests (helpers live in harness.py)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def tmp_runs(tmp_path: Path) -> Path:
    return tmp_path / "runs"
