"""Where runs go: `out_root` and `sweep_name`, checked while Hydra resolves the run and sweep
dirs (`${inside_root:${out_root},out_root}` in configs/config.yaml), before it creates them.

A refusal is one line naming the key and the fix.  It is a Hydra `CompactHydraException`
(Hydra prints those as their message, without a traceback) and an OmegaConf
`InterpolationResolutionError` that is already formatted, so OmegaConf passes it on as it is
instead of wrapping it in a traceback of the resolver.
"""
from __future__ import annotations

import os
from pathlib import Path

from hydra.errors import CompactHydraException
from omegaconf.errors import InterpolationResolutionError


class RunsRootRefused(CompactHydraException, InterpolationResolutionError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._initialized = True  # OmegaConf re-raises an initialised error unchanged
        self.msg = message


def _first_existing(path: Path) -> Path:
    """`path` itself, or its nearest ancestor that exists (what creating it would write into)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def inside_root(path: str, key: str = "out_root") -> str:
    """`path`, the value of `key` (out_root or sweep_name), as given; refused when a `..` would
    lead out of the runs root (`sweep_name=../../x` must not write a sibling of it), and, for
    out_root, when it cannot be a directory of runs: a file, or in a directory not writable."""
    text = str(path)
    if ".." in text.replace("\\", "/").split("/") or not text.strip():
        raise RunsRootRefused(f"{key}={text!r} leaves the runs root (a '..' component or an empty name): give "
                              f"out_root an absolute or plain relative path and sweep_name a plain name")
    if key != "out_root":
        return text
    target = Path(os.path.expanduser(text))
    existing = _first_existing(target)
    if not existing.is_dir():
        what = "is a file" if existing == target else f"lies under {existing}, which is a file"
        raise RunsRootRefused(f"out_root={text} {what}, not a directory: set out_root to a directory "
                              f"(it is created if missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        where = "is a directory" if existing == target else f"would be created in {existing}, a directory"
        raise RunsRootRefused(f"out_root={text} {where} this user may not write: set out_root to a "
                              f"directory you can write")
    return text
