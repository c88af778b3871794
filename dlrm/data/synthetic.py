"""The planted synthetic CTR world: long-tail ids, a hidden teacher, a known Bayes floor.

Sample i of the world (a global index; training uses 0..N-1, the eval set a fixed
disjoint range starting at `eval_offset`) is a pure function of (seed, i):

- sparse feature f: an id in [0, C_f) drawn from a discretised power law
  P(id = k) ~ (k + 1)^(-s) (Zipf-like, exponent `zipf_exponent`), by inverting the
  continuous CDF of x^(-s) on [1, C_f + 1) -- closed form, no tables;
- dense features: standard normals;
- label: Bernoulli(p) with the teacher's probability

      logit p = b0 + sum_f bias_f(id_f) + sum_{f<g} <v_f(id_f), v_g(id_g)> + dense_term(z)

  where bias_f(id) ~ N(0, bias_scale^2 / F) and v_f(id) ~ N(0, sigma^2 I_k) (k =
  `teacher_dim`) are per-id teacher parameters derived from a hash of
  (seed, feature, id), sigma chosen so that the interaction sum has standard deviation
  `interaction_scale`, and b0 calibrates the mean CTR to `base_ctr`.

Why this world scales like real CTR data: a long tail of ids means more data keeps
teaching rare ids (the data power law), while a teacher of finite dimension k means a
student with embedding dim well above k has nothing more to learn (parameter scaling
saturates).  The teacher's probabilities are known, so the Bayes-optimal log loss of the
eval set -- the irreducible floor of every fitted law -- is computed exactly.

Per-id teacher parameters are memoised per feature only while the table is small
(`teacher_table_max_entries`); larger features hash on the fly, so memory never grows
with cardinality x teacher_dim x features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Optional, Sequence

import numpy as np
from scipy.special import ndtri

from dlrm.data import hashing
from dlrm.data.source import Arrays, data_id

# Stream numbers: each purpose draws from its own independent stream of the seed.
_STREAM_SPARSE = 1_000  # + feature
_STREAM_DENSE = 2_000  # + dense feature
_STREAM_LABEL = 3_000
_STREAM_BIAS = 4_000  # + feature
_STREAM_LATENT = 5_000  # + feature
_STREAM_DENSE_WEIGHTS = 6_000

_CALIBRATION_OFFSET = 1 << 50  # calibration samples: disjoint from train and eval
_CALIBRATION_SAMPLES = 1 << 16
_GENERATION_CHUNK = 1 << 16  # bounds the memory of one call


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in nats; the expected log loss of predicting p when labels ~ Bernoulli(p)."""
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


@dataclass(frozen=True)
class WorldSpec:
    seed: int = 0
    cardinalities: Sequence[int] = field(default_factory=lambda: [1000] * 26)
    num_dense_features: int = 13
    zipf_exponent: float = 1.5
    teacher_dim: int = 8
    base_ctr: float = 0.25
    bias_scale: float = 1.5  # std of the summed per-id biases (logit units)
    interaction_scale: float = 0.5  # std of the summed pairwise interactions
    dense_scale: float = 0.5  # std of the dense term
    eval_offset: int = 1 << 40  # first global index of the eval set
    num_eval_samples: int = 1 << 19
    teacher_table_max_entries: int = 1 << 24


class SyntheticWorld:
    """A `DataSource` over the planted world (see the module docstring)."""

    max_train_samples: Optional[int] = None

    def __init__(self, spec: WorldSpec):
        self.spec = spec
        self.cardinalities = [int(c) for c in spec.cardinalities]
        self.num_dense_features = spec.num_dense_features
        self.num_eval_samples = spec.num_eval_samples
        self.max_train_samples = spec.eval_offset  # the train stream stops where eval starts
        num_sparse = len(self.cardinalities)
        seed = spec.seed
        # One 64-bit hash per two features: the sparse ids, then the dense values.
        num_words = (num_sparse + spec.num_dense_features + 1) // 2
        self._feature_keys = np.array(
            [hashing.stream_key(seed, _STREAM_SPARSE + w) for w in range(num_words)], dtype=np.uint64
        )
        self._label_key = hashing.stream_key(seed, _STREAM_LABEL)
        num_pairs = num_sparse * (num_sparse - 1) / 2
        # Var(sum of pairwise dots) = num_pairs * k * sigma^4  ->  sigma for the target std.
        self._latent_sigma = math.sqrt(spec.interaction_scale / math.sqrt(max(num_pairs, 1) * spec.teacher_dim))
        self._bias_sigma = spec.bias_scale / math.sqrt(max(num_sparse, 1))
        w = hashing.normal(
            hashing.stream_key(seed, _STREAM_DENSE_WEIGHTS), np.arange(spec.num_dense_features + 1)
        )
        # Linear dense weights plus one product term, so the dense arch has something non-linear to learn.
        self._dense_weights = w[:-1] * spec.dense_scale / math.sqrt(spec.num_dense_features + 1)
        self._dense_product_weight = w[-1] * spec.dense_scale / math.sqrt(spec.num_dense_features + 1)
        self._tables: dict[int, Optional[np.ndarray]] = {}  # feature -> memo of the hashes (_teacher_table)
        self._max_ids = np.array(self.cardinalities, dtype=np.int64) - 1

    @cached_property
    def data_id(self) -> str:
        """The world (every field of its spec) and its eval set."""
        spec = {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in self.spec.__dict__.items()
                if k != "teacher_table_max_entries"}  # a memory bound, not part of the world
        return data_id("synthetic", spec)

    # ---------------------------------------------------------------- features
    def _zipf_ids(self, u: np.ndarray) -> np.ndarray:
        """Ids [n, F] from uniforms [n, F]: the inverse CDF of x^(-s) on [1, C_f + 1), all features at once."""
        s = self.spec.zipf_exponent
        c = np.array(self.cardinalities, dtype=np.float64)
        if abs(s - 1.0) < 1e-9:
            x = np.exp(u * np.log(c + 1.0))
        else:
            x = (1.0 + u * ((c + 1.0) ** (1.0 - s) - 1.0)) ** (1.0 / (1.0 - s))
        return np.minimum(x.astype(np.int64) - 1, self._max_ids)

    def features(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dense float32 [n, num_dense], sparse int64 [n, num_sparse]) of global sample indices."""
        u = hashing.uniform_pairs(self._feature_keys, np.asarray(indices, dtype=np.uint64))
        num_sparse = len(self.cardinalities)
        sparse = self._zipf_ids(u[:, :num_sparse])
        dense = ndtri(u[:, num_sparse:num_sparse + self.num_dense_features]).astype(np.float32)
        return dense, sparse

    # ----------------------------------------------------------------- teacher
    def _teacher_table(self, feature: int) -> Optional[np.ndarray]:
        """The memo [C, k + 2] of (bias, |v|^2, v_1..v_k) for every id of a feature, or None
        when it would exceed `teacher_table_max_entries` (then rows are hashed per batch)."""
        if feature not in self._tables:
            c, k = self.cardinalities[feature], self.spec.teacher_dim
            fits = c * (k + 2) <= self.spec.teacher_table_max_entries
            self._tables[feature] = self._hash_teacher_params(feature, np.arange(c, dtype=np.int64)) if fits else None
        return self._tables[feature]

    def _hash_teacher_params(self, feature: int, ids: np.ndarray) -> np.ndarray:
        """[n, k + 2] rows (bias, |v|^2, v_1..v_k) of the teacher for ids of one feature."""
        k = self.spec.teacher_dim
        ids_u = np.asarray(ids, dtype=np.uint64)
        out = np.empty((len(ids_u), k + 2), dtype=np.float64)
        out[:, 0] = self._bias_sigma * hashing.normal(hashing.stream_key(self.spec.seed, _STREAM_BIAS + feature), ids_u)
        counters = ids_u[:, None] * np.uint64(k) + np.arange(k, dtype=np.uint64)[None, :]
        out[:, 2:] = self._latent_sigma * hashing.normal(
            hashing.stream_key(self.spec.seed, _STREAM_LATENT + feature), counters
        )
        out[:, 1] = np.einsum("ij,ij->i", out[:, 2:], out[:, 2:])
        return out

    def _raw_logits(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        """Teacher logit without the calibration offset b0 (float64 [n])."""
        # acc = sum over features of (bias, |v|^2, v): one gather and one add per feature.
        acc = np.zeros((sparse.shape[0], self.spec.teacher_dim + 2), dtype=np.float64)
        rows = np.empty_like(acc)
        for f in range(sparse.shape[1]):
            table = self._teacher_table(f)
            if table is None:  # too large to memoise
                acc += self._hash_teacher_params(f, sparse[:, f])
            else:  # np.take into one reused buffer: faster than table[ids], no temporary per feature
                np.take(table, sparse[:, f], axis=0, out=rows, mode="clip")  # ids < C by construction
                acc += rows
        latent_sum = acc[:, 2:]
        # sum_{f<g} <v_f, v_g> = (|sum_f v_f|^2 - sum_f |v_f|^2) / 2
        logit = acc[:, 0] + 0.5 * (np.einsum("ij,ij->i", latent_sum, latent_sum) - acc[:, 1])
        z = dense.astype(np.float64)
        logit += z @ self._dense_weights
        if z.shape[1] >= 2:
            logit += self._dense_product_weight * z[:, 0] * z[:, 1]
        return logit

    @cached_property
    def logit_offset(self) -> float:
        """b0 such that the mean teacher CTR over a fixed calibration slice is `base_ctr`."""
        idx = np.arange(_CALIBRATION_OFFSET, _CALIBRATION_OFFSET + _CALIBRATION_SAMPLES, dtype=np.uint64)
        raw = self._raw_logits(*self.features(idx))
        lo, hi = -30.0, 30.0
        for _ in range(100):  # bisection: the mean of sigmoid(raw + b) increases in b
            mid = 0.5 * (lo + hi)
            if np.mean(1.0 / (1.0 + np.exp(-(raw + mid)))) < self.spec.base_ctr:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def probabilities_of(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self._raw_logits(dense, sparse) + self.logit_offset)))

    # ------------------------------------------------------------------ slices
    def samples(self, indices: np.ndarray) -> tuple[Arrays, np.ndarray]:
        """The samples at global indices, and their teacher probabilities."""
        dense, sparse = self.features(indices)
        p = self.probabilities_of(dense, sparse)
        u = hashing.uniform(self._label_key, np.asarray(indices, dtype=np.uint64))
        labels = (u < p).astype(np.float32)
        return Arrays(dense=dense, sparse=sparse, labels=labels), p

    def train_arrays(self, start: int, stop: int) -> Arrays:
        if not 0 <= start <= stop <= self.spec.eval_offset:
            raise ValueError(f"train slice [{start}, {stop}) leaves the training stream [0, {self.spec.eval_offset})")
        return self.samples(np.arange(start, stop, dtype=np.uint64))[0]

    def eval_arrays(self, start: int, stop: int) -> Arrays:
        if not 0 <= start <= stop <= self.num_eval_samples:
            raise ValueError(f"eval slice [{start}, {stop}) outside [0, {self.num_eval_samples})")
        off = self.spec.eval_offset
        return self.samples(np.arange(off + start, off + stop, dtype=np.uint64))[0]

    # --------------------------------------------------------------- the floor
    @cached_property
    def _eval_floor(self) -> tuple[float, float]:
        entropy_sum, label_sum = 0.0, 0.0
        for start in range(0, self.num_eval_samples, _GENERATION_CHUNK):
            stop = min(start + _GENERATION_CHUNK, self.num_eval_samples)
            arrays, p = self.samples(np.arange(self.spec.eval_offset + start, self.spec.eval_offset + stop, dtype=np.uint64))
            entropy_sum += float(binary_entropy(p).sum())
            label_sum += float(arrays.labels.sum())
        bayes_logloss = entropy_sum / self.num_eval_samples
        ctr = label_sum / self.num_eval_samples
        # NE divides by the entropy of the eval set's own average CTR, as for the model.
        return bayes_logloss, bayes_logloss / float(binary_entropy(np.array(ctr)))

    @property
    def bayes_logloss(self) -> float:
        """Expected log loss of the Bayes-optimal predictor (the teacher) on the eval set."""
        return self._eval_floor[0]

    @property
    def bayes_ne(self) -> float:
        return self._eval_floor[1]


def validate_config(data_cfg) -> None:
    """The world's own checks (dlrm.config.validate calls them before any work starts)."""
    from dlrm.config import ConfigError

    if data_cfg.num_train_samples > data_cfg.eval_offset:
        raise ConfigError(
            f"data.num_train_samples={data_cfg.num_train_samples} overlaps the eval set, which starts at sample "
            f"data.eval_offset={data_cfg.eval_offset}: raise data.eval_offset or train on fewer samples."
        )
    for f, c in enumerate(data_cfg.cardinalities):
        if not isinstance(c, int) or c <= 0:
            raise ConfigError(f"data.cardinalities[{f}]={c!r} must be a positive integer")
    if not isinstance(data_cfg.teacher_dim, int) or data_cfg.teacher_dim <= 0:
        raise ConfigError(f"data.teacher_dim must be a positive integer, got {data_cfg.teacher_dim!r}")
    if not 0 < data_cfg.base_ctr < 1:
        raise ConfigError(f"data.base_ctr={data_cfg.base_ctr} must lie strictly between 0 and 1")


def world_from_config(data_cfg, seed: int) -> SyntheticWorld:
    """The world of the `data` config group (configs/data/synthetic.yaml).

    Worlds are cached per spec: the runs of an in-process sweep share one world, its
    memoised teacher tables and its Bayes floor (computed once, not once per run).
    """
    return _world(WorldSpec(
        seed=int(data_cfg.get("world_seed", seed)),
        cardinalities=tuple(int(c) for c in data_cfg.cardinalities),
        num_dense_features=int(data_cfg.num_dense_features),
        zipf_exponent=float(data_cfg.zipf_exponent),
        teacher_dim=int(data_cfg.teacher_dim),
        base_ctr=float(data_cfg.base_ctr),
        bias_scale=float(data_cfg.bias_scale),
        interaction_scale=float(data_cfg.interaction_scale),
        dense_scale=float(data_cfg.dense_scale),
        eval_offset=int(data_cfg.eval_offset),
        num_eval_samples=int(data_cfg.num_eval_samples),
    ))


@lru_cache(maxsize=2)
def _world(spec: WorldSpec) -> SyntheticWorld:
    return SyntheticWorld(spec)
