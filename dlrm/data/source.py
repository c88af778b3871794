"""The interface every data set of the harness serves: slices of one sample stream.

Training never sees files or generators, only a `DataSource`: "data size N" is the
first N samples of `train_arrays`, a rank takes its own slice of each global batch,
and the eval set is one fixed slice shared by every run of a sweep.  Both the planted
synthetic world (`dlrm.data.synthetic`) and the Criteo click logs
(`dlrm.data.criteo`) implement it.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Optional, Protocol

import numpy as np


@dataclass
class Arrays:
    """A slice of samples, Criteo-like: one categorical id per sparse feature."""

    dense: np.ndarray  # float32 [n, num_dense_features]
    sparse: np.ndarray  # int64 [n, num_sparse_features], id < cardinalities[f]
    labels: np.ndarray  # float32 [n], 0.0 or 1.0

    def __len__(self) -> int:
        return len(self.labels)

    def rows(self, start: int, stop: int) -> "Arrays":
        """Samples [start, stop) of this slice, as views."""
        return Arrays(dense=self.dense[start:stop], sparse=self.sparse[start:stop], labels=self.labels[start:stop])

    @staticmethod
    def concatenate(parts: list["Arrays"]) -> "Arrays":
        if len(parts) == 1:
            return parts[0]
        return Arrays(dense=np.concatenate([p.dense for p in parts]), sparse=np.concatenate([p.sparse for p in parts]),
                      labels=np.concatenate([p.labels for p in parts]))


class DataSource(Protocol):
    num_dense_features: int
    cardinalities: list[int]  # per sparse feature: ids lie in [0, cardinality)
    num_eval_samples: int
    # The largest data size this source can serve (None: unbounded, as the synthetic world).
    max_train_samples: Optional[int]
    # Expected log loss / NE of the Bayes-optimal predictor on the eval set (None for real data).
    bayes_logloss: Optional[float]
    bayes_ne: Optional[float]

    def train_arrays(self, start: int, stop: int) -> Arrays:
        """Samples [start, stop) of the training stream, always the same for a given config."""

    def eval_arrays(self, start: int, stop: int) -> Arrays:
        """Samples [start, stop) of the eval set, 0 <= start < stop <= num_eval_samples."""


def data_id(kind: str, spec: Any) -> str:
    """A short, stable identity of a data set and its eval set: `kind` plus a hash of the
    canonical JSON of what defines it.  Runs with different ids are never one series."""
    text = json.dumps(spec, sort_keys=True, default=str)
    return f"{kind}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
