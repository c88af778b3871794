"""Data sets: each is a `DataSource` (source.py) built from the `data` config group."""


def make_source(data_cfg, seed: int):
    """The DataSource of the `data` config group."""
    if data_cfg.name == "synthetic":
        from dlrm.data.synthetic import world_from_config

        return world_from_config(data_cfg, seed)
    if data_cfg.name in ("criteo_kaggle", "criteo_1tb"):
        from dlrm.data.criteo import CriteoSource

        return CriteoSource.from_config(data_cfg)
    raise ValueError(f"unknown data.name {data_cfg.name!r}")
