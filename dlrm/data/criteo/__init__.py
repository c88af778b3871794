"""Criteo click logs (Kaggle Display Advertising Challenge, Criteo 1TB) as a `DataSource`.

Two steps (docs/CRITEO.md has the whole path from download to sweep):

1. Preprocess the raw TSV once, streaming with bounded memory and resumable:

       python -m dlrm.data.criteo preprocess --raw RAW_DIR --out OUT_DIR --dataset kaggle|1tb

2. Train on it: `python -m dlrm.train data=criteo_kaggle data.path=OUT_DIR`;
   `CriteoSource.from_config(cfg.data)` serves the samples.

One module per job: `format` (the TSV and .npy layouts, sizes, URLs, file names),
`errors`, `reader` (raw files, plain or gzip, in chunks of lines), `parse` (the
byte-level chunk parser), `npy` (durable streaming .npy output), `pool` (worker
processes, progress), `resume` (what a rerun trusts), `threshold` (the frequency
threshold), `preprocess` (the per-day tasks and `preprocess()`), `cli`, and `source`
(`CriteoSource`, read in training).  Importing this package imports nothing heavy:
`CriteoSource` is loaded on first use.
"""
from __future__ import annotations

__all__ = ["CriteoSource"]


def __getattr__(name: str):
    if name == "CriteoSource":
        from dlrm.data.criteo.source import CriteoSource

        return CriteoSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
