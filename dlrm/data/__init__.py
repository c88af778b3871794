"""Data sets: each is a `DataSource` (source.py) built from the `data` config group.

`DATA_SOURCES` maps `data.name` to how to build and check it; the implementations are
imported only when a source is built, so the registry itself is cheap to import.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dlrm.config import CriteoDataConfig, DataConfig, SyntheticDataConfig


@dataclass(frozen=True)
class DataSet:
    build: Callable[[Any, int], Any]  # (data config, run seed) -> DataSource
    validate: Callable[[Any, int], None]  # (data config, run seed): raise ConfigError before any work
    schema: type  # the data config's dataclass (dlrm/config.py)


def _build_synthetic(data_cfg: SyntheticDataConfig, seed: int):
    from dlrm.data.synthetic import world_from_config

    return world_from_config(data_cfg, seed)


def _validate_synthetic(data_cfg: SyntheticDataConfig, seed: int) -> None:
    from dlrm.data.synthetic import validate_config

    validate_config(data_cfg, seed)


def _build_criteo(data_cfg: CriteoDataConfig, seed: int):
    from dlrm.data.criteo import CriteoSource

    return CriteoSource.from_config(data_cfg)


def _no_checks(data_cfg: CriteoDataConfig, seed: int) -> None:
    """Criteo's path and sizes are checked when the source opens the files, before training."""


DATA_SOURCES: dict[str, DataSet] = {
    # a law on every axis (the default)
    "synthetic": DataSet(_build_synthetic, _validate_synthetic, SyntheticDataConfig),
    # the first world: parameters saturate
    "synthetic_saturating": DataSet(_build_synthetic, _validate_synthetic, SyntheticDataConfig),
    # the gated terms alone: the top width's law
    "synthetic_top": DataSet(_build_synthetic, _validate_synthetic, SyntheticDataConfig),
    "criteo_kaggle": DataSet(_build_criteo, _no_checks, CriteoDataConfig),
    "criteo_1tb": DataSet(_build_criteo, _no_checks, CriteoDataConfig),
}


def make_source(data_cfg: DataConfig, seed: int):
    """The DataSource of the `data` config group."""
    return DATA_SOURCES[data_cfg.name].build(data_cfg, seed)
