"""Hydra's view of the config: the typed schemas in the ConfigStore, the resolvers the
config tree uses, and `compose` for code that needs the config without a command line
(tests, benchmarks).  `register()` is idempotent and runs on import of the app.
`check_overrides` refuses, before any work, an override of a key that has moved; `typed`
turns a composed config into the schema's dataclasses, what the library takes."""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Optional, Sequence

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict

from dlrm.config import GROUP_SCHEMAS, Config, ConfigError, FaultsConfig
from dlrm.data import DATA_SOURCES
from runner import naming, runs_root

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
_registered = False
# Keys that moved, by their old names: the fault-injection keys left the `debug` group (now a
# group of quick-run profiles, configs/debug/) for the `faults` group.
MOVED_KEYS = {f"debug.{f.name}": f"faults.{f.name}" for f in fields(FaultsConfig)}


class MovedKey(ConfigError):
    """An override names a key by its old name: refused before any work, naming the new one."""


def moved_key(override: str) -> Optional[str]:
    """The one-line refusal of an override of a moved key, or None."""
    if override.startswith("-"):  # a flag of Hydra's own (-m, --cfg, ...)
        return None
    key, sep, value = override.partition("=")
    old = key.lstrip("+~")
    if old not in MOVED_KEYS:
        return None
    new = key[: len(key) - len(old)] + MOVED_KEYS[old]
    return (f"{key}{sep}{value}: fault injection moved to the faults group, use {new}{sep}{value} "
            f"(debug= is now a quick-run profile: debug=tiny, debug=one_step)")


def check_overrides(overrides: Sequence[str]) -> None:
    """Raise MovedKey for the first override of a moved key (see MOVED_KEYS)."""
    for override in overrides:
        problem = moved_key(override)
        if problem:
            raise MovedKey(problem)


def register() -> None:
    """Schemas: `schema` (the root) and `<group>/schema*`, which each option's YAML file
    names first in its defaults list; resolvers: run_name, inside_root, rank_suffix, result_neutral_override_keys."""
    global _registered
    if _registered:
        return
    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config, provider="dlrm-scaling")
    for group, schemas in GROUP_SCHEMAS.items():
        for name, node in schemas.items():
            cs.store(group=group, name=name, node=node, provider="dlrm-scaling")
    if not OmegaConf.has_resolver("run_name"):
        OmegaConf.register_new_resolver("run_name", naming.run_name)
    if not OmegaConf.has_resolver("inside_root"):
        OmegaConf.register_new_resolver("inside_root", runs_root.inside_root)
    if not OmegaConf.has_resolver("rank_suffix"):  # ranks of one run log to files of their own
        OmegaConf.register_new_resolver("rank_suffix", _rank_suffix)
    if not OmegaConf.has_resolver("result_neutral_override_keys"):
        OmegaConf.register_new_resolver("result_neutral_override_keys", naming.override_exclude_keys)
    _registered = True


def _rank_suffix() -> str:
    rank = os.environ.get("RANK", "0")
    return "" if rank == "0" else f".rank{rank}"


def compose(overrides: Sequence[str] = (), with_hydra: bool = False):
    """The config tree composed with `overrides`, as `python -m dlrm.train` composes it
    (with its `hydra` node when asked: launcher, sweeper, run dirs)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    check_overrides(overrides)
    register()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides), return_hydra_config=with_hydra)


def typed(cfg: DictConfig) -> Config:
    """The config as the schema's dataclasses (dlrm/config.py), interpolations resolved: the
    app composes, names and freezes (config.yaml) the DictConfig and hands the library this.
    `cfg` is a composed config (its `hydra` node, if any, left out) or a run dir's config.yaml
    read back (OmegaConf.load: plain, so it is merged onto the schema first)."""
    if "hydra" in cfg:
        cfg = cfg.copy()
        with open_dict(cfg):
            del cfg["hydra"]
    if OmegaConf.get_type(cfg) is not Config:
        plain = naming.current_config(OmegaConf.to_container(cfg, resolve=True))
        data = plain.pop("data")
        cfg = OmegaConf.merge(OmegaConf.structured(Config), plain)
        cfg.data = OmegaConf.merge(OmegaConf.structured(DATA_SOURCES[data["name"]].schema), data)
    return OmegaConf.to_object(cfg)
