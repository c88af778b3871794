"""Run names: stable, readable, derived from the overrides that define the run.

`hydra.sweep.subdir` (and `hydra.run.dir`) are `${run_name:${hydra.job.override_dirname}}`:
Hydra's override_dirname lists the job's overrides sorted by key (e.g.
`data.num_train_samples=8192,model.embedding_dim=4`); this resolver shortens the
well-known keys and makes the result a safe directory name.  The same overrides give the
same name on every launch, which is what lets a relaunched sweep find its runs.
"""
from __future__ import annotations

import hashlib
import re

from omegaconf import DictConfig, OmegaConf

_SHORT = {
    "data.num_train_samples": "n",
    "model.embedding_dim": "d",
    "model.mlp_width": "w",
    "model.mlp_depth": "depth",
    "model": "model",
    "seed": "seed",
}
_MAX_NAME = 200
# Keys that do not change a run's result: a run dir may be resumed under other values.
RESULT_NEUTRAL_KEYS = {
    "out_root", "sweep_name", "retry_failed", "launcher", "trainer.progress_bar", "trainer.log_every_samples",
    "trainer.checkpoint_every_samples", "trainer.checkpoint_every_minutes", "trainer.prefetch_batches",
    "trainer.tensorboard", "trainer.num_threads", "trainer.eval_batch_size", "data.path",
}


def run_name(override_dirname: str) -> str:
    if not override_dirname:
        return "default"
    parts = []
    for item in override_dirname.split(","):
        key, sep, value = item.partition("=")
        if not sep:  # the tail of a list value, split at its commas
            parts.append(item)
            continue
        key = key.lstrip("+~")
        parts.append(f"{_SHORT.get(key, key)}={value}")
    name = re.sub(r"[^A-Za-z0-9_.,=+\-]", "_", ",".join(parts))
    if len(name) > _MAX_NAME:  # stay under filesystem limits, and distinct: a hash of the whole name
        name = name[: _MAX_NAME - 13] + "-" + hashlib.sha1(name.encode()).hexdigest()[:12]
    return name


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", run_name)


def _flatten(cfg, prefix: str = "") -> dict:
    out = {}
    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    for k, v in container.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def result_relevant_diff(old: DictConfig, new: DictConfig) -> list[str]:
    """'key: old -> new' for every differing key that changes what a run computes."""
    a, b = _flatten(old), _flatten(new)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key in RESULT_NEUTRAL_KEYS or key.split(".")[0] in RESULT_NEUTRAL_KEYS:
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            diffs.append(f"{key}: {a.get(key, '<absent>')} -> {b.get(key, '<absent>')}")
    return diffs
