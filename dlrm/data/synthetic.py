"""The planted synthetic CTR world: long-tail ids, a hidden teacher, known floors.

Sample i of the world (a global index; the eval set is a fixed range from `eval_offset`)
is a pure function of (world seed, i):

- sparse feature f: an id in [0, C_f) drawn from a discretised power law
  P(id = k) ~ (k + 1)^(-s) (Zipf-like, `zipf_exponent`), by inverting the continuous CDF
  of x^(-s) on [1, C_f + 1) -- closed form, no tables;
- dense features: standard normals;
- label: Bernoulli(p), logit p = b0 + the teacher's parts (teacher.py), b0 calibrating the
  mean CTR to `base_ctr`.

A run of seed s trains on the stream from index s * SEED_STRIDE: seeds move the data (and
the initialisation), the world and its eval set stay fixed; "data size N" is the first N
samples of the run's stream.

Two floors are known on the eval set, which no real-data study has:
- the Bayes floor: the log loss of the teacher's own probabilities;
- the capacity-limited oracle of a model size: the best predictor that sees only the parts
  of the logit that size can represent (teacher.Teacher.parts), the rest treated as Gaussian
  noise of its known variance and integrated out by Gauss-Hermite quadrature -- what that
  size reaches with unlimited data, up to the approximations stated in teacher.py.
Each is given twice (`Floor`): as the expectation over labels drawn from the teacher, and on
the eval set's realised labels, the ones a model's NE is measured on.  The two differ by the
labels' sampling noise (of the order of the NE's standard error); a model is compared with
the realised one.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Optional

import numpy as np
from scipy.special import ndtri

from dlrm.config import SyntheticDataConfig
from dlrm.data import hashing
from dlrm.data.source import Arrays, data_id
from dlrm.data.teacher import TABLE_MAX_ENTRIES, StudentSize, Teacher, opens_exactly

_STREAM_SPARSE = 1_000  # + feature word
_STREAM_LABEL = 3_000
_CALIBRATION_OFFSET = 1 << 50  # calibration samples: disjoint from train and eval
_CALIBRATION_SAMPLES = 1 << 16
_GENERATION_CHUNK = 1 << 16  # bounds the memory of one call
SEED_STRIDE = 1 << 33  # a run's stream: [seed * SEED_STRIDE, ...), 8.6e9 samples per seed
_HERMITE_NODES = 40


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """H(p) in nats; the expected log loss of predicting p when labels ~ Bernoulli(p)."""
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -(p * np.log(p) + (1 - p) * np.log1p(-p))


def cross_entropy(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Expected log loss (nats) of predicting q when labels ~ Bernoulli(p)."""
    q = np.clip(q, 1e-15, 1 - 1e-15)
    return -(p * np.log(q) + (1 - p) * np.log1p(-q))


@dataclass(frozen=True)
class Floor:
    """The log loss and NE of one predictor on the eval set: expected over the teacher's
    labels, and on the realised labels (what a model's eval NE is measured against)."""

    logloss: float
    ne: float
    logloss_realised: float
    ne_realised: float


# The fields of the data config (dlrm/config.py SyntheticDataConfig, which types and documents
# each) that are not the world: the data set's name, the data size a run trains on, and a check
# of data.cardinalities' length.  Every other field is the world's spec.
NOT_THE_WORLD = ("name", "num_train_samples", "num_sparse_features")
_AS_TYPED = {"int": int, "float": float, "bool": bool, "List[int]": lambda v: [int(x) for x in v],
             "Optional[int]": lambda v: None if v is None else int(v)}


def world_spec(spec: SyntheticDataConfig) -> dict:
    """What defines the world of a data config, as plain JSON values of the schema's types: the
    fields but NOT_THE_WORLD, data.world_seed as `seed` (the name data_id has always hashed)."""
    return {("seed" if f.name == "world_seed" else f.name): _AS_TYPED[str(f.type)](getattr(spec, f.name))
            for f in fields(spec) if f.name not in NOT_THE_WORLD}


class SyntheticWorld:
    """The world of a spec; `stream(seed)` is the DataSource a run of that seed trains on."""

    max_train_samples: Optional[int] = None

    def __init__(self, spec: SyntheticDataConfig, teacher_table_max_entries: int = TABLE_MAX_ENTRIES):
        self.spec = spec
        self.cardinalities = [int(c) for c in spec.cardinalities]
        self.num_dense_features = spec.num_dense_features
        self.num_eval_samples = spec.num_eval_samples
        self.max_train_samples = spec.eval_offset
        self.teacher = Teacher(spec, teacher_table_max_entries)
        num_words = (len(self.cardinalities) + spec.num_dense_features + 1) // 2  # two features a hash
        self._feature_keys = np.array([hashing.stream_key(spec.world_seed, _STREAM_SPARSE + w) for w in range(num_words)],
                                      dtype=np.uint64)
        self._label_key = hashing.stream_key(spec.world_seed, _STREAM_LABEL)
        self._max_ids = np.array(self.cardinalities, dtype=np.int64) - 1
        self._uniform = sorted(int(f) for f in spec.uniform_features)
        self._oracles: dict[tuple[int, int, int], Floor] = {}

    @cached_property
    def data_id(self) -> str:
        """The world (every field of its spec) and its eval set."""
        return data_id("synthetic", world_spec(self.spec))

    # ---------------------------------------------------------------- features
    def _ids(self, u: np.ndarray) -> np.ndarray:
        """Ids [n, F] from uniforms [n, F]: the inverse CDF of x^(-s) on [1, C_f + 1), all features
        at once; uniform ids for `uniform_features`."""
        s = self.spec.zipf_exponent
        c = np.array(self.cardinalities, dtype=np.float64)
        if abs(s - 1.0) < 1e-9:
            x = np.exp(u * np.log(c + 1.0))
        else:
            x = (1.0 + u * ((c + 1.0) ** (1.0 - s) - 1.0)) ** (1.0 / (1.0 - s))
        ids = np.minimum(x.astype(np.int64) - 1, self._max_ids)
        if self._uniform:
            cols = self._uniform
            ids[:, cols] = np.minimum((u[:, cols] * c[cols]).astype(np.int64), self._max_ids[cols])
        return ids

    def features(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(dense float32 [n, num_dense], sparse int64 [n, num_sparse]) of global sample indices."""
        u = hashing.uniform_pairs(self._feature_keys, np.asarray(indices, dtype=np.uint64))
        num_sparse = len(self.cardinalities)
        sparse = self._ids(u[:, :num_sparse])
        dense = ndtri(u[:, num_sparse:num_sparse + self.num_dense_features]).astype(np.float32)
        return dense, sparse

    # ----------------------------------------------------------------- labels
    @cached_property
    def logit_offset(self) -> float:
        """b0 such that the mean teacher CTR over a fixed calibration slice is `base_ctr`."""
        idx = np.arange(_CALIBRATION_OFFSET, _CALIBRATION_OFFSET + _CALIBRATION_SAMPLES, dtype=np.uint64)
        raw = self.teacher.logit(*self.features(idx))
        lo, hi = -30.0, 30.0
        for _ in range(100):  # bisection: the mean of sigmoid(raw + b) increases in b
            mid = 0.5 * (lo + hi)
            if np.mean(1.0 / (1.0 + np.exp(-(raw + mid)))) < self.spec.base_ctr:
                lo = mid
            else:
                hi = mid
        return 0.5 * (lo + hi)

    def probabilities_of(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.teacher.logit(dense, sparse) + self.logit_offset)))

    def samples(self, indices: np.ndarray) -> tuple[Arrays, np.ndarray]:
        """The samples at global indices, and their teacher probabilities."""
        dense, sparse = self.features(indices)
        p = self.probabilities_of(dense, sparse)
        u = hashing.uniform(self._label_key, np.asarray(indices, dtype=np.uint64))
        return Arrays(dense=dense, sparse=sparse, labels=(u < p).astype(np.float32)), p

    def train_arrays(self, start: int, stop: int) -> Arrays:
        """Samples [start, stop) of the world's training range (seed 0's stream)."""
        if not 0 <= start <= stop <= self.spec.eval_offset:
            raise ValueError(f"train slice [{start}, {stop}) leaves the training stream [0, {self.spec.eval_offset})")
        return self.samples(np.arange(start, stop, dtype=np.uint64))[0]

    def eval_arrays(self, start: int, stop: int) -> Arrays:
        if not 0 <= start <= stop <= self.num_eval_samples:
            raise ValueError(f"eval slice [{start}, {stop}) outside [0, {self.num_eval_samples})")
        off = self.spec.eval_offset
        return self.samples(np.arange(off + start, off + stop, dtype=np.uint64))[0]

    def stream(self, seed: int) -> "SeededStream":
        return SeededStream(self, int(seed))

    # ------------------------------------------------------------ the floors
    def _eval_chunks(self):
        for start in range(0, self.num_eval_samples, _GENERATION_CHUNK):
            stop = min(start + _GENERATION_CHUNK, self.num_eval_samples)
            idx = np.arange(self.spec.eval_offset + start, self.spec.eval_offset + stop, dtype=np.uint64)
            dense, sparse = self.features(idx)
            u = hashing.uniform(self._label_key, idx)
            yield dense, sparse, u

    def _floor(self, size: Optional[StudentSize]) -> Floor:
        """The best predictor on the eval set that sees what `size` can represent (None:
        everything, the Bayes floor).  The part it cannot see is treated as Gaussian noise
        of that part's variance on the eval set, integrated out by Gauss-Hermite quadrature."""
        seen, missed, p, y = [], [], [], []
        for dense, sparse, u in self._eval_chunks():
            raw, unseen = self.teacher.parts(dense, sparse, size)
            logit = raw + self.logit_offset
            p.append(1.0 / (1.0 + np.exp(-logit)))
            seen.append(logit - unseen)
            missed.append(unseen)
            y.append((u < p[-1]).astype(np.float64))
        p_all, seen_all, labels = np.concatenate(p), np.concatenate(seen), np.concatenate(y)
        var = float(np.var(np.concatenate(missed)))
        q = p_all
        if var > 0.0:  # E over the missed part ~ N(0, var) of sigmoid(what is seen + it)
            nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
            weights = weights / weights.sum()  # E over N(0, 1)
            q = np.empty_like(p_all)
            for i in range(0, len(q), _GENERATION_CHUNK):
                s = seen_all[i:i + _GENERATION_CHUNK, None] + math.sqrt(var) * nodes[None, :]
                q[i:i + _GENERATION_CHUNK] = (1.0 / (1.0 + np.exp(-s))) @ weights
        expected = float(cross_entropy(p_all, q).mean())
        realised = float(cross_entropy(labels, q).mean())
        # NE divides by the entropy of the eval set's own average CTR, as for the model.
        entropy = float(binary_entropy(np.array(labels.mean())))
        return Floor(expected, expected / entropy, realised, realised / entropy)

    @cached_property
    def _bayes(self) -> Floor:
        return self._floor(None)

    @property
    def bayes_logloss(self) -> float:
        """Expected log loss of the Bayes-optimal predictor (the teacher) on the eval set."""
        return self._bayes.logloss

    @property
    def bayes_ne(self) -> float:
        return self._bayes.ne

    def oracle(self, size: StudentSize) -> Floor:
        """The capacity-limited oracle of a student size, computed once for all sizes that
        represent the same parts (e.g. every top width of the default world)."""
        if size.limits not in self._oracles:
            self._oracles[size.limits] = self._floor(size)
        return self._oracles[size.limits]

    def oracle_ne(self, size: StudentSize) -> float:
        """The oracle NE of a student size (expected over labels)."""
        return self.oracle(size).ne

    @property
    def planted_exponents(self) -> dict[str, Optional[float]]:
        """The exponent of the share each scaling scheme's part leaves missed at size x
        (x^-e, teacher.spectrum); None where the world plants no law on that axis."""
        t, s = self.teacher, self.spec
        return {"embedding_dim": s.latent_spectrum_exponent if t.latent_pairs and s.latent_spectrum_exponent >= 0 else None,
                "dense_arch_width": s.dense_spectrum_exponent if len(t.dense_weights) and s.dense_spectrum_exponent >= 0
                else None,
                "over_arch_width": s.gated_spectrum_exponent if t.gated_pairs else None}

    def known_truth(self, size: StudentSize) -> dict:
        """The summary's fields of what is known on this world for a model of `size`."""
        b, o = self._bayes, self.oracle(size)
        return {"bayes_logloss": b.logloss, "bayes_ne": b.ne, "bayes_logloss_realised": b.logloss_realised,
                "bayes_ne_realised": b.ne_realised, "oracle_ne": o.ne, "oracle_ne_realised": o.ne_realised,
                "planted_exponents": self.planted_exponents}


class SeededStream:
    """The DataSource of a run: the world, its training stream starting at seed * SEED_STRIDE."""

    def __init__(self, world: SyntheticWorld, seed: int):
        self.world, self.seed = world, seed
        self.offset = seed * SEED_STRIDE
        self.max_train_samples = min(SEED_STRIDE, world.spec.eval_offset - self.offset)

    def train_arrays(self, start: int, stop: int) -> Arrays:
        if not 0 <= start <= stop <= self.max_train_samples:
            raise ValueError(f"train slice [{start}, {stop}) leaves seed {self.seed}'s stream "
                             f"[0, {self.max_train_samples})")
        return self.world.train_arrays(self.offset + start, self.offset + stop)

    @property
    def stream_id(self) -> str:
        """The world (its data_id) and this seed: the samples of train_arrays are a function of it."""
        return f"{self.world.data_id}-seed{self.seed}"

    def __getattr__(self, name: str):  # eval set, floors, oracle, data_id: the world's
        return getattr(self.world, name)


def validate_config(data_cfg: SyntheticDataConfig, seed: int) -> None:
    """The world's own checks (dlrm.validate.validate calls them before any work starts)."""
    from dlrm.errors import ConfigError

    num_sparse = len(data_cfg.cardinalities)
    for f, c in enumerate(data_cfg.cardinalities):
        if not isinstance(c, int) or c <= 0:
            raise ConfigError(f"data.cardinalities[{f}]={c!r} must be a positive integer")
    for key in ("interaction_features", "top_features", "gated_features", "uniform_features"):
        bad = [f for f in getattr(data_cfg, key) if not 0 <= f < num_sparse]
        if bad:
            raise ConfigError(f"data.{key} has {bad}: features are numbered 0..{num_sparse - 1}")
    if data_cfg.gated_scale > 0:
        _validate_gated(data_cfg, num_sparse)
    if not isinstance(data_cfg.latent_dim, int) or data_cfg.latent_dim <= 0:
        raise ConfigError(f"data.latent_dim must be a positive integer, got {data_cfg.latent_dim!r}")
    if not 0 < data_cfg.base_ctr < 1:
        raise ConfigError(f"data.base_ctr={data_cfg.base_ctr} must lie strictly between 0 and 1")
    end = seed * SEED_STRIDE + data_cfg.num_train_samples
    if seed < 0 or end > data_cfg.eval_offset:
        raise ConfigError(
            f"seed={seed} with data.num_train_samples={data_cfg.num_train_samples} overlaps the eval set, which "
            f"starts at sample data.eval_offset={data_cfg.eval_offset} (seed s trains from s * {SEED_STRIDE}): use a "
            f"seed in 0..{max(data_cfg.eval_offset // SEED_STRIDE - 1, 0)}, raise data.eval_offset or train on fewer samples.")
    if data_cfg.num_train_samples > SEED_STRIDE:
        raise ConfigError(f"data.num_train_samples={data_cfg.num_train_samples} exceeds one seed's stream "
                          f"({SEED_STRIDE} samples)")


def _validate_gated(data_cfg: SyntheticDataConfig, num_sparse: int) -> None:
    from dlrm.errors import ConfigError

    carrier, gates = data_cfg.gated_carrier_feature, list(data_cfg.gated_features)
    if carrier is None or not 0 <= carrier < num_sparse:
        raise ConfigError(f"data.gated_carrier_feature={carrier!r}: the gated terms kink in one feature's per-id "
                          f"scalar; name a feature in 0..{num_sparse - 1}")
    taken = set(data_cfg.top_features) | set(data_cfg.interaction_features)
    if len(gates) < 2 or carrier in gates or ({carrier, *gates} & taken):
        raise ConfigError(f"data.gated_features={gates} and data.gated_carrier_feature={carrier}: the terms need 2 or more "
                          f"gates and a carrier, none of them a top or interaction feature or each other")
    if not 0 < data_cfg.gated_open < 1:
        raise ConfigError(f"data.gated_open={data_cfg.gated_open} must lie strictly between 0 and 1 "
                          f"(the share of a gate's ids that are open)")
    if data_cfg.exact_shares:
        bad = [f for f in [*gates, carrier] if f not in data_cfg.uniform_features]
        uneven = [f for f in gates if not opens_exactly(data_cfg.cardinalities[f], data_cfg.gated_open)]
        if bad or uneven:
            raise ConfigError(
                f"data.exact_shares opens exactly data.gated_open={data_cfg.gated_open} of each gate's ids under a "
                f"uniform id law: features {bad} are not in data.uniform_features, and features {uneven} have "
                f"cardinalities it does not divide; fix those, or set data.exact_shares=false")


def world_from_config(data_cfg: SyntheticDataConfig, seed: int) -> SeededStream:
    """The stream of run seed `seed` in the world of the `data` config group.

    Worlds are cached per spec: the runs of an in-process sweep share one world, its
    memoised teacher tables, its Bayes floor and its oracles (computed once, not per run).
    """
    return _world(data_cfg).stream(seed)


_WORLDS: dict[str, SyntheticWorld] = {}  # by world spec, the two latest


def _world(spec: SyntheticDataConfig) -> SyntheticWorld:
    key = json.dumps(world_spec(spec), sort_keys=True)
    if key not in _WORLDS:
        while len(_WORLDS) >= 2:
            _WORLDS.pop(next(iter(_WORLDS)))
        _WORLDS[key] = SyntheticWorld(spec)
    return _WORLDS[key]
