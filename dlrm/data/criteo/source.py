"""`CriteoSource`: a preprocessed Criteo directory (Kaggle or 1TB) as the training `DataSource`.

The training stream is the training days (Kaggle: days 0-5 of the 7-way split of
train.txt; 1TB: days 0-22) concatenated in time order, shuffled within consecutive
windows of `shuffle_window` samples by a permutation seeded with (shuffle_seed, window
index).  So sample i is the same for every run, every data size and every rank, a data
size of N is the first N samples of that stream (one pass), and a rank reads only the
rows of its own slice (memory-mapped).  The eval set is the first `num_eval_samples`
rows of the held-out day's first half (TorchRec's "val" split), the same for every run.

The directory comes from `python -m dlrm.data.criteo preprocess` (docs/CRITEO.md).
"""
from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from typing import Any, Optional, Sequence

import numpy as np

from dlrm.data.criteo.format import (CAT_FEATURE_COUNT, DATASETS, DOWNLOAD_URLS, FORMAT_VERSION, INT_FEATURE_COUNT,
                                     METADATA_FILE, day_files, expected_files)
from dlrm.config import CriteoDataConfig
from dlrm.data.criteo.npy import npy_rows
from dlrm.data.source import Arrays, data_id

DEFAULT_SHUFFLE_WINDOW = 1 << 20


class CriteoDataNotFoundError(FileNotFoundError):
    """The preprocessed Criteo directory is missing or incomplete; says how to make it."""


class CriteoConfigError(ValueError):
    """A `data=criteo_*` config that cannot be served (e.g. more samples than exist)."""


def _how_to_obtain(dataset: str, path: str) -> str:
    raw = "train.txt" if dataset == "kaggle" else "day_0 ... day_23 (or day_0.gz ... day_23.gz)"
    env = "CRITEO_KAGGLE_DIR" if dataset == "kaggle" else "CRITEO_1TB_DIR"
    return (
        f"To obtain it: download the raw logs from {DOWNLOAD_URLS[dataset]} into RAW_DIR (it "
        f"must hold {raw}), then preprocess them (resumable; see docs/CRITEO.md):\n"
        f"    python -m dlrm.data.criteo preprocess --raw RAW_DIR --out {path} --dataset {dataset}\n"
        f"and point the config at it: data.path={path} (or set ${env})."
    )


def _as_int_list(value: Any) -> Optional[list[int]]:
    if value is None:
        return None
    try:
        from omegaconf import ListConfig, OmegaConf

        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
    except ImportError:
        pass
    if isinstance(value, str):
        raise CriteoConfigError(f"num_embeddings_per_feature must be a list of {CAT_FEATURE_COUNT} ints, got {value!r}")
    return [int(v) for v in value]


def _sample_count(key: str, value: Any, available: int, holds: str) -> int:
    """`data.<key>` (None: all `available`), refused beyond what the directory `holds`."""
    n = available if value is None else int(value)
    if not 0 < n <= available:
        raise CriteoConfigError(f"data.{key}={value} but {holds}")
    return n


class CriteoSource:
    """A preprocessed Criteo directory served through the `DataSource` protocol."""

    num_dense_features = INT_FEATURE_COUNT
    bayes_logloss: Optional[float] = None
    bayes_ne: Optional[float] = None

    def __init__(self, path: str, dataset: str, num_train_samples: Optional[int] = None,
                 num_eval_samples: Optional[int] = 1 << 20, shuffle_window: int = DEFAULT_SHUFFLE_WINDOW,
                 shuffle_seed: int = 0, num_embeddings_per_feature: Optional[Sequence[int]] = None,
                 max_ind_range: Optional[int] = None):
        dataset = DATASETS.get(dataset, dataset)
        if dataset not in ("kaggle", "1tb"):
            raise CriteoConfigError(f"unknown Criteo dataset {dataset!r}; expected one of {sorted(DATASETS)}")
        self.dataset = dataset
        self.path = os.path.abspath(os.path.expanduser(str(path)))
        self.metadata = self._load_metadata()
        meta = self.metadata
        self.train_days: list[int] = [int(d) for d in meta["train_days"]]
        self.eval_day: int = int(meta["eval_day"])
        rows = {int(d): int(n) for d, n in meta["rows_per_day"].items()}
        self.train_rows = [rows[d] for d in self.train_days]
        self.train_offsets = np.concatenate([[0], np.cumsum(self.train_rows)]).astype(np.int64)
        self.max_train_samples: int = int(self.train_offsets[-1])
        self.num_eval_available: int = int(meta["num_eval_rows"])

        # Table sizes: the preprocessed ids lie in [0, stored); a config may ask for other
        # sizes (ids are then taken modulo them, as TorchRec's `hashes=`), capped by max_ind_range.
        stored = [int(s) for s in meta["num_embeddings_per_feature"]]
        sizes = list(num_embeddings_per_feature) if num_embeddings_per_feature is not None else list(stored)
        if len(sizes) != CAT_FEATURE_COUNT or any(int(s) < 1 for s in sizes):
            raise CriteoConfigError(
                f"num_embeddings_per_feature must be {CAT_FEATURE_COUNT} positive ints, got {sizes}")
        if max_ind_range:
            sizes = [min(int(s), int(max_ind_range)) for s in sizes]
        self.cardinalities: list[int] = [int(s) for s in sizes]
        self._modulo = (np.asarray(self.cardinalities, np.int64)
                        if any(c < s for c, s in zip(self.cardinalities, stored)) else None)

        self.num_train_samples = _sample_count(
            "num_train_samples", num_train_samples, self.max_train_samples, f"{self.path} holds "
            f"{self.max_train_samples:,} training samples (days {self.train_days[0]}..{self.train_days[-1]})")
        self.num_eval_samples = _sample_count(
            "num_eval_samples", num_eval_samples, self.num_eval_available, f"the eval split of {self.path} "
            f"(first half of day {self.eval_day}) holds {self.num_eval_available:,} samples")
        if int(shuffle_window) < 0:
            raise CriteoConfigError(f"data.shuffle_window must be >= 0 (0 = no shuffle), got {shuffle_window}")
        self.shuffle_window = int(shuffle_window)
        self.shuffle_seed = int(shuffle_seed)
        self._arrays: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self._perm_cache: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self._lock = threading.Lock()  # the training loop may prefetch from a background thread

    @property
    def data_id(self) -> str:
        """The preprocessed data (its metadata.json: days, rows, sizes, threshold), the table
        sizes, the shuffle and the eval set: what makes two runs' NE comparable."""
        return data_id(f"criteo_{self.dataset}", {
            "metadata": self.metadata, "cardinalities": self.cardinalities,
            "shuffle": [self.shuffle_window, self.shuffle_seed], "num_eval_samples": self.num_eval_samples})

    # ------------------------------------------------------------ construction

    @classmethod
    def from_config(cls, data_cfg: CriteoDataConfig) -> "CriteoSource":
        """From the `data` config group (configs/data/criteo_kaggle.yaml, criteo_1tb.yaml)."""
        name = data_cfg.name
        if name not in DATASETS:
            raise CriteoConfigError(f"data.name must be one of {sorted(DATASETS)}, got {name!r}")
        path = data_cfg.path
        if path in (None, "", "???"):
            raise CriteoDataNotFoundError(
                f"data.path is not set for {name}.\n" + _how_to_obtain(DATASETS[name], "OUT_DIR"))
        return cls(
            path=path,
            dataset=name,
            num_train_samples=data_cfg.num_train_samples,
            num_eval_samples=data_cfg.num_eval_samples,
            shuffle_window=data_cfg.shuffle_window or 0,
            shuffle_seed=data_cfg.shuffle_seed or 0,
            num_embeddings_per_feature=_as_int_list(data_cfg.num_embeddings_per_feature),
            max_ind_range=data_cfg.max_ind_range,
        )

    def _load_metadata(self) -> dict:
        path, dataset = self.path, self.dataset
        if not os.path.isdir(path):
            raise CriteoDataNotFoundError(
                f"preprocessed Criteo {dataset} data not found: {path} does not exist.\n"
                f"Expected there: {', '.join(expected_files(dataset)[:5])}, ... "
                f"({len(expected_files(dataset))} files: metadata.json and, for each day, "
                f"day_D_dense.npy, day_D_sparse.npy, day_D_labels.npy, day_D.done).\n" + _how_to_obtain(dataset, path))
        meta_path = os.path.join(path, METADATA_FILE)
        if not os.path.exists(meta_path):
            present = sorted(os.listdir(path))
            partial = any(f.startswith("day_") for f in present)
            raise CriteoDataNotFoundError(
                f"{path} is not a complete preprocessed Criteo {dataset} directory: {METADATA_FILE} is missing"
                + (" (preprocessing did not finish; rerun the same command to resume)" if partial else "")
                + f".\nExpected: {', '.join(expected_files(dataset))}.\n" + _how_to_obtain(dataset, path))
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("dataset") != dataset:
            raise CriteoConfigError(f"{path} holds preprocessed Criteo {meta.get('dataset')!r} data, "
                                    f"but the config asks for {dataset!r}")
        if meta.get("format_version") != FORMAT_VERSION:
            raise CriteoConfigError(f"{path} was preprocessed with format version {meta.get('format_version')}, "
                                    f"this code reads version {FORMAT_VERSION}; preprocess again")
        missing, wrong = [], []
        for d in meta["days"]:
            for part, p in day_files(path, int(d)).items():
                if not os.path.exists(p):
                    missing.append(os.path.basename(p))
                elif npy_rows(p) != int(meta["rows_per_day"][str(d)]):
                    wrong.append(os.path.basename(p))
        if missing or wrong:
            raise CriteoDataNotFoundError(
                f"{path} is incomplete: " + (f"missing {', '.join(missing)}" if missing else "")
                + ("; " if missing and wrong else "") + (f"wrong row count in {', '.join(wrong)}" if wrong else "")
                + f".\nExpected: {', '.join(expected_files(dataset, meta['days']))}.\n" + _how_to_obtain(dataset, path))
        return meta

    # ------------------------------------------------------------ the DataSource protocol

    def train_arrays(self, start: int, stop: int) -> Arrays:
        """Samples [start, stop) of the (window-shuffled) training stream."""
        if not 0 <= start <= stop <= self.max_train_samples:
            raise IndexError(f"train samples [{start}, {stop}) outside [0, {self.max_train_samples})")
        return self._gather(self.train_rows_of(start, stop), self.train_days, self.train_offsets)

    def eval_arrays(self, start: int, stop: int) -> Arrays:
        """Samples [start, stop) of the eval set: rows of the held-out day's first half."""
        if not 0 <= start <= stop <= self.num_eval_samples:
            raise IndexError(f"eval samples [{start}, {stop}) outside [0, {self.num_eval_samples})")
        dense, sparse, labels = self._day(self.eval_day)
        return self._arrays_of(dense[start:stop], sparse[start:stop], labels[start:stop])

    # ------------------------------------------------------------ helpers

    def train_rows_of(self, start: int, stop: int) -> np.ndarray:
        """Physical row (index into the concatenated training days) of samples [start, stop)."""
        idx = np.arange(start, stop, dtype=np.int64)
        w = self.shuffle_window
        if w <= 1 or stop <= start:
            return idx
        out = np.empty_like(idx)
        for b in range(start // w, (stop - 1) // w + 1):
            lo, hi = max(start, b * w), min(stop, (b + 1) * w)
            perm = self._window_perm(b)
            out[lo - start : hi - start] = b * w + perm[lo - b * w : hi - b * w]
        return out

    def _window_perm(self, b: int) -> np.ndarray:
        """The seeded permutation of window b; the last window may be shorter."""
        with self._lock:
            perm = self._perm_cache.get(b)
            if perm is None:
                w = self.shuffle_window
                n = min(w, self.max_train_samples - b * w)
                perm = np.random.default_rng([self.shuffle_seed, b]).permutation(n)
                perm = perm.astype(np.int32 if n < 2**31 else np.int64)
                self._perm_cache[b] = perm
                while len(self._perm_cache) > 2:
                    self._perm_cache.popitem(last=False)
            else:
                self._perm_cache.move_to_end(b)
            return perm

    def _day(self, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            arrs = self._arrays.get(day)
            if arrs is None:
                files = day_files(self.path, day)
                arrs = tuple(np.load(files[p], mmap_mode="r") for p in ("dense", "sparse", "labels"))
                self._arrays[day] = arrs
            return arrs

    def _gather(self, rows: np.ndarray, days: Sequence[int], offsets: np.ndarray) -> Arrays:
        n = len(rows)
        dense = np.empty((n, INT_FEATURE_COUNT), np.float32)
        sparse = np.empty((n, CAT_FEATURE_COUNT), np.int64)
        labels = np.empty(n, np.float32)
        if n == 0:
            return Arrays(dense, sparse, labels)
        which = np.searchsorted(offsets, rows, side="right") - 1
        for i in np.unique(which):
            sel = np.flatnonzero(which == i)
            local = rows[sel] - offsets[i]
            order = np.argsort(local, kind="stable")  # sorted reads from the memory map
            sel, local = sel[order], local[order]
            d, s, l = self._day(days[i])
            lo, hi = int(local[0]), int(local[-1]) + 1
            if hi - lo == len(local):  # contiguous rows: a slice, no fancy indexing
                dense[sel], sparse[sel], labels[sel] = d[lo:hi], s[lo:hi], l[lo:hi, 0]
            else:
                dense[sel], sparse[sel], labels[sel] = d[local], s[local], l[local, 0]
        if self._modulo is not None:
            sparse %= self._modulo
        return Arrays(dense, sparse, labels)

    def _arrays_of(self, d: np.ndarray, s: np.ndarray, l: np.ndarray) -> Arrays:
        sparse = s.astype(np.int64)
        if self._modulo is not None:
            sparse %= self._modulo
        return Arrays(np.array(d, np.float32), sparse, l[:, 0].astype(np.float32))

    def __getstate__(self) -> dict:  # picklable (e.g. to a spawned worker): caches and lock are rebuilt
        state = dict(self.__dict__)
        state.update(_arrays={}, _perm_cache=OrderedDict(), _lock=None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"CriteoSource({self.dataset}, {self.path}, train={self.num_train_samples:,}/"
                f"{self.max_train_samples:,}, eval={self.num_eval_samples:,}, window={self.shuffle_window})")
