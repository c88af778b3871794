"""Run names: stable, readable, derived from the overrides that define the run.

`hydra.sweep.subdir` (and `hydra.run.dir`) are `${run_name:${hydra.job.override_dirname}}`
(the resolver is registered by runner/compose.py):
Hydra's override_dirname lists the job's overrides sorted by key (e.g.
`data.num_train_samples=8192,model.embedding_dim=4`); this resolver shortens the
well-known keys and makes the result a safe directory name.  The same overrides give the
same name on every launch, which is what lets a relaunched sweep find its runs.
"""
from __future__ import annotations

import copy
import hashlib
import re

from omegaconf import DictConfig, OmegaConf

import rundir

# Each scaling axis' config key by its short name (rundir.SCALING_AXES).
_SHORT = {a.config_key: a.run_name for a in rundir.SCALING_AXES}
_MAX_NAME = 200
# Config keys that do not change a run's result (a key covers everything under it): they
# stay out of run names, and a run dir may be resumed under other values of them.  The one
# list: Hydra's exclude_keys derive from it (override_exclude_keys).
RESULT_NEUTRAL_KEYS = (
    "out_root", "sweep_name", "retry_failed", "launcher", "trainer.progress_bar", "trainer.log_every_samples",
    "trainer.checkpoint_every_samples", "trainer.checkpoint_every_minutes", "trainer.prefetch_batches",
    "trainer.stream_cache_dir", "trainer.stream_cache_max_gb",  # the same samples, read instead of generated
    "trainer.tensorboard", "trainer.num_threads", "trainer.collective_timeout_s", "trainer.sync_every_steps", "trainer.eval_batch_size", "data.path",
    "trainer.eval_log_spaced_from", "trainer.eval_log_spaced_per_octave",  # more evals, the same run
    "faults.sigterm_at_step",  # a preemption: the resumed run is bit-identical to an uninterrupted one
    "faults.fault_at_step", "faults.fault_rank", "faults.fault",  # first attempt only: a resume repeats none
    "data.num_sparse_features",  # a check of data.cardinalities' length, which carries the world itself
)
# Keys added after configs were first written, with the value every run before them had: a
# config that lacks one is that run, so it still resumes and is still skipped when done.
KEYS_ADDED_LATER = {"model.dense_arch_output": "relu", "trainer.dense_precision": "fp32",
                    "trainer.stream_cache_dir": None, "trainer.stream_cache_max_gb": 4.0}
# Config groups renamed since configs were first written (old name: new name): a config.yaml
# that holds the old group is read under the new name, so its run still resumes and is skipped.
GROUPS_RENAMED = {"debug": "faults"}
# Overrides that are not config values but choices of how to launch: group choices and the
# Hydra launcher.
_LAUNCH_OVERRIDES = ("sweep", "hydra.launcher", "hydra/launcher")


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


def override_exclude_keys() -> list[str]:
    """Hydra's `override_dirname.exclude_keys`: the result-neutral keys as overrides name them.

    exclude_keys match override keys exactly, so a neutral group (`launcher`) is listed with
    every field of its schema (`launcher.nproc_per_node`)."""
    from dataclasses import fields

    from dlrm.config import GROUP_SCHEMAS

    keys = list(RESULT_NEUTRAL_KEYS) + list(_LAUNCH_OVERRIDES)
    for group, schemas in GROUP_SCHEMAS.items():
        if group in RESULT_NEUTRAL_KEYS:
            keys += [f"{group}.{f.name}" for schema in schemas.values() for f in fields(schema)]
    return sorted(set(keys))


def _is_neutral(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RESULT_NEUTRAL_KEYS)


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


def current_config(plain: dict) -> dict:
    """A config.yaml read back (a plain container) in today's terms: renamed groups under
    their new names, keys added later at the value every run before them had."""
    out = {}
    for key, value in copy.deepcopy(plain).items():
        new_name = GROUPS_RENAMED.get(key)
        out[new_name if new_name and new_name not in plain else key] = value
    for key, value in KEYS_ADDED_LATER.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node.setdefault(leaf, value)
    return out


def result_relevant_diff(old: DictConfig, new: DictConfig) -> list[str]:
    """'key: old -> new' for every differing key that changes what a run computes."""
    a, b = (_flatten(current_config(OmegaConf.to_container(c, resolve=True) if isinstance(c, DictConfig) else c))
            for c in (old, new))
    diffs = []
    for key in sorted(set(a) | set(b)):
        # A knob that a config written before it existed lacks, and that is null (off) in
        # the other, changes nothing: runs of older versions still resume.
        if _is_neutral(key) or a.get(key) is None and b.get(key) is None:
            continue
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            diffs.append(f"{key}: {a.get(key, '<absent>')} -> {b.get(key, '<absent>')}")
    return diffs
