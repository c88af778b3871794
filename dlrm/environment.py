"""env.json: what a run ran on -- versions, git commit, device, world size, host."""
from __future__ import annotations

import platform
from importlib import metadata
import socket
import subprocess
from pathlib import Path
from typing import Optional

import torch


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: str, world_size: int) -> dict:
    versions = {"python": platform.python_version(), "torch": torch.__version__}
    for module in ("torchrec", "fbgemm_gpu", "numpy"):  # already loaded by training
        try:
            versions[module] = getattr(__import__(module), "__version__", "unknown")
        except ImportError:
            versions[module] = None
    try:  # by its metadata: the library does not import the app's Hydra
        versions["hydra"] = metadata.version("hydra-core")
    except metadata.PackageNotFoundError:
        versions["hydra"] = None
    return {
        "versions": versions,
        "git_commit": _git_commit(),
        "device": device,
        "cuda_device_name": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "world_size": world_size,
        "host": socket.gethostname(),
        "num_threads": torch.get_num_threads(),
    }
