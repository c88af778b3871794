"""--out checked before any fitting (and before anything is created)."""
from __future__ import annotations

import os
from pathlib import Path


def out_dir_problems(out: Path) -> list[str]:
    """--out checked before any fitting (and before anything is created): a bad path is refused
    in one line instead of failing after all the work."""
    existing = next(p for p in (out, *out.parents, Path(".")) if os.path.lexists(p))
    fix = "give --out a directory you can write (it is created if missing)"
    if not existing.is_dir():
        where = "a file" if existing == out else f"under {existing}, a file"
        return [f"--out {out}: {where}, not a directory: {fix}"]
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "a directory" if existing == out else f"to be created in {existing}, a directory"
        return [f"--out {out}: {where} this user may not write: {fix}"]
    return []
