"""The planted world's hidden teacher: a logit made of parts, each a law with a known answer.

    logit = b0 + biases + interactions + top terms + dense terms

| part | what it is | the student's resource that limits it | terms a student of size x has |
|---|---|---|---|
| biases | a per-id scalar of every feature (long-tail ids) | data: rare ids need samples | all |
| interactions | sum over pairs of `interaction_features` of <v_f(id), v_g(id)>, v in R^K, coordinate j carrying a share w_j ~ j^-(1+p) of the variance | embedding dim d | the top d-1 coordinates (one dimension carries the bias) |
| top terms | sum over k of c_k abs(beta_f(id_f) + w_k . (z_0, z_1) - tau_k), f = top_features[k mod B], c_k^2 ~ k^-(1+r) | data only (see below) | all |
| dense terms | sum over dense features m of a_m abs(z_m), a_m^2 ~ m^-(1+q) | bottom-MLP (dense arch) width W | W/2: two ReLUs a term |
| dense linear | linear weights and one product z_0 z_1 (the saturating world's dense part) | none | all |

The top terms were planted for the top MLP (a ReLU of beta_f and w . z is one term, so a
width-W top would miss the terms past W - 2, ~W^-r), but DLRM does not need its top for them:
the dot of feature f's embedding with the dense arch's output, sum_j e_j(id) d_j(z), is any
rank-d function of (id, z), and the bottom MLP forms the kinks in z.  A per-feature sum of
kinks in a scalar beta_f(id) and 2 dense features is a smooth kernel of low rank.  Measured
on a world of the top part alone (top_scale 2, 2^20 samples, Bayes NE 0.496): top widths 4, 8
and 128 end at 0.535, 0.524 and 0.523 at embedding dim 16 (0.532, 0.526, 0.525 at dim 4),
where "W - 2 terms" would give 0.724 at width 4.  So no student size of a sweep misses them:
the oracle counts them as seen, the part costs data only, and the top width has no planted
law (tests/test_world.py, test_train.py).  Only the bottom MLP sees the dense features before
the embedding-wide bottleneck, so the embedding dim and the bottom width meet a part of
their own, with their own exponents (p, q).  A top feature has no bias of its own: its main
effect comes from its terms.

Each spectrum is a power law whose last term holds the whole infinite remainder
(`spectrum`): the share a student of k terms misses is then exactly the Hurwitz-zeta tail
zeta(1 + e, k + 1) / zeta(1 + e, 1) ~ k^-e / e, a power law, as long as k stays below the
number of terms (a sweep wider than that would see the lump).

Every per-id parameter is a hash of (world seed, part, feature, id): any rank generates any
sample, and nothing is stored but memos.  `parts` gives, for a student size, the part of the
logit it cannot represent (centred): the capacity-limited oracle treats it as Gaussian noise
of its variance on the eval set (synthetic.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy.special import ndtri, zeta

from dlrm.data import hashing

# Stream numbers: each purpose draws from its own independent stream of the world seed.
STREAM_BIAS = 4_000  # + feature
STREAM_LATENT = 5_000  # + feature
STREAM_DENSE_WEIGHTS = 6_000
STREAM_TOP = 7_000  # + feature (beta); + 100 (the terms' directions and offsets)
MEAN_ABS_STD_NORMAL = math.sqrt(2.0 / math.pi)  # E|z| for z ~ N(0, 1)
VAR_ABS_STD_NORMAL = 1.0 - 2.0 / math.pi  # Var|z|
PAIR_TABLE_MAX_ENTRIES = 1 << 22  # interactions by per-pair dot tables below this size, else by gathering vectors
TOP_DENSE_FEATURES = 2  # z_0, z_1: the dense part of the top terms (the bottom's abs terms use z_2 ...)


@dataclass(frozen=True)
class StudentSize:
    """What limits a student: its embedding dim and the hidden widths of its two MLPs."""

    embedding_dim: int
    dense_arch_width: Optional[int]  # the bottom MLP's (None: no hidden layer)
    over_arch_width: Optional[int]  # the top MLP's (limits no part: see the module docstring)

    @property
    def latent_coordinates(self) -> int:
        return max(self.embedding_dim - 1, 0)

    @property
    def dense_terms(self) -> int:
        return (self.dense_arch_width or 0) // 2

    @property
    def limits(self) -> tuple[int, int]:
        """What the student can represent: sizes equal in it have one oracle."""
        return self.latent_coordinates, self.dense_terms


def spectrum(n: int, exponent: float) -> np.ndarray:
    """Shares w_1..w_n (summing to 1) with w_k ~ k^-(1+exponent), the last holding the
    remainder of the infinite series; exponent < 0: a flat spectrum (every term alike)."""
    if n == 0:
        return np.zeros(0)
    if exponent < 0:
        return np.full(n, 1.0 / n)
    s = 1.0 + exponent
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    w[-1] = zeta(s, n)  # = sum_{k >= n} k^-s
    return w / zeta(s, 1)


class Teacher:
    """The teacher of one world spec (see the module docstring for the parts)."""

    def __init__(self, spec):
        self.spec = spec
        self.interaction_features = list(spec.interaction_features)
        self.top_features = list(spec.top_features)
        cards = [int(c) for c in spec.cardinalities]
        self.bias_sigma = spec.bias_scale / math.sqrt(max(len(cards), 1))
        a = self.interaction_features
        self.latent_pairs = [(a[i], a[j]) for i in range(len(a)) for j in range(i + 1, len(a))]
        # Var(sum of pair dots) = P * sum_j sigma_j^4: coordinate j's std spreads interaction_scale^2 by w_j.
        self.latent_share = spectrum(spec.latent_dim if a else 0, spec.latent_spectrum_exponent)
        self.latent_sigma = (self.latent_share * spec.interaction_scale ** 2 / max(len(self.latent_pairs), 1)) ** 0.25
        # Top terms: feature, direction over (z_0, z_1) and offset of each; beta and w.z are N(0, 1),
        # tau a quantile of their sum, so that the kinks fall where the data are.
        k = spec.top_terms if self.top_features else 0
        self.top_feature_of = [self.top_features[i % len(self.top_features)] for i in range(k)] if k else []
        key = hashing.stream_key(spec.seed, STREAM_TOP + 100)
        angle = 2 * math.pi * hashing.uniform(key, np.arange(k))
        self.top_directions = np.stack([np.cos(angle), np.sin(angle)], axis=1) if k else np.zeros((0, 2))
        self.top_offsets = math.sqrt(2.0) * ndtri(hashing.uniform(key, np.arange(k, 2 * k))) if k else np.zeros(0)
        self.top_share = spectrum(k, spec.top_spectrum_exponent)
        u = np.linspace(-8, 8, 4001)  # Var abs(v - tau) for v ~ N(0, 2), by quadrature
        density = np.exp(-u * u / 4) / math.sqrt(4 * math.pi) * (u[1] - u[0])
        mean = np.array([np.sum(np.abs(u - t) * density) for t in self.top_offsets])
        var = np.array([np.sum((np.abs(u - t) - m) ** 2 * density) for t, m in zip(self.top_offsets, mean)])
        self.top_weights = np.sqrt(self.top_share * spec.top_scale ** 2 / np.maximum(var, 1e-12)) if k else np.zeros(0)
        m = (spec.num_dense_features - (TOP_DENSE_FEATURES if spec.top_terms and spec.top_features else 0)
             if spec.dense_abs_scale > 0 else 0)
        self.dense_share = spectrum(m, spec.dense_spectrum_exponent)
        self.dense_weights = np.sqrt(self.dense_share * spec.dense_abs_scale ** 2 / VAR_ABS_STD_NORMAL)
        w = hashing.normal(hashing.stream_key(spec.seed, STREAM_DENSE_WEIGHTS), np.arange(spec.num_dense_features + 1))
        scale = spec.dense_linear_scale / math.sqrt(spec.num_dense_features + 1)
        self.dense_linear, self.dense_product = w[:-1] * scale, w[-1] * scale
        self.use_pair_tables = sum(cards[f] * cards[g] for f, g in self.latent_pairs) <= PAIR_TABLE_MAX_ENTRIES
        self._memo: dict[tuple, Optional[np.ndarray]] = {}

    # ------------------------------------------------------------- per-id parameters
    def _normal(self, stream: int, feature: int, counters: np.ndarray) -> np.ndarray:
        return hashing.normal(hashing.stream_key(self.spec.seed, stream + feature), counters)

    def _bias(self, feature: int, ids: np.ndarray) -> np.ndarray:
        if feature in self.top_features:  # its main effect comes from its top terms
            return np.zeros(len(ids))
        return self.bias_sigma * self._normal(STREAM_BIAS, feature, np.asarray(ids, dtype=np.uint64))

    def _beta(self, feature: int, ids: np.ndarray) -> np.ndarray:
        return self._normal(STREAM_TOP, feature, np.asarray(ids, dtype=np.uint64))

    def _latent(self, feature: int, ids: np.ndarray) -> np.ndarray:
        """[n, K] teacher vectors v_f(id)."""
        k = self.spec.latent_dim
        ids_u = np.asarray(ids, dtype=np.uint64)
        counters = ids_u[:, None] * np.uint64(k) + np.arange(k, dtype=np.uint64)[None, :]
        return self.latent_sigma[None, :] * self._normal(STREAM_LATENT, feature, counters)

    def _table(self, key: tuple, entries: int, build) -> Optional[np.ndarray]:
        """A memo of per-id values, or None when it would exceed teacher_table_max_entries."""
        if key not in self._memo:
            self._memo[key] = build() if entries <= self.spec.teacher_table_max_entries else None
        return self._memo[key]

    def id_probabilities(self, feature: int) -> np.ndarray:
        """P(id = k) of a feature: uniform, or the discretised power law the world draws ids from."""
        c = int(self.spec.cardinalities[feature])
        if feature in self.spec.uniform_features:
            return np.full(c, 1.0 / c)
        s = self.spec.zipf_exponent
        edges = np.arange(1, c + 2, dtype=np.float64)  # id k <=> x in [k + 1, k + 2)
        cdf = np.log(edges) / np.log(c + 1.0) if abs(s - 1) < 1e-9 else (edges ** (1 - s) - 1) / ((c + 1.0) ** (1 - s) - 1)
        return np.diff(cdf)

    def _standardised(self, feature: int, values: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Columns of mean 0, uncorrelated, of standard deviation `scale` under the feature's id
        law, so that a part's variance is exactly its planted share (not that of one draw):
        the columns are orthogonalised against each other and the constant (a QR), which needs
        more ids than columns."""
        p = self.id_probabilities(feature)
        c, k = values.shape
        if k > 1 and c <= k:
            raise ValueError(f"feature {feature}: {c} ids cannot carry {k} uncorrelated teacher coordinates; "
                             f"give it more than {k} ids (data.cardinalities) or lower data.latent_dim")
        root = np.sqrt(p)[:, None]
        q, _ = np.linalg.qr(np.concatenate([root, root * values], axis=1))  # orthonormal under the id law
        q = q[:, 1:] * np.sign(np.einsum("ij,ij->j", q[:, 1:], root * values))  # keep each column's draw's sign
        return q / root * scale

    def _lookup(self, kind: str, feature: int, ids: np.ndarray) -> np.ndarray:
        fn = {"bias": self._bias, "beta": self._beta, "latent": self._latent}[kind]
        c = int(self.spec.cardinalities[feature])
        width = self.spec.latent_dim if kind == "latent" else 1

        def build() -> np.ndarray:
            table = fn(feature, np.arange(c))
            if self.spec.exact_shares and kind == "latent":
                table = self._standardised(feature, table, self.latent_sigma)
            elif self.spec.exact_shares and kind == "beta":
                table = self._standardised(feature, table[:, None], np.ones(1))[:, 0]
            return table

        table = self._table((kind, feature), c * width, build)
        if table is None and self.spec.exact_shares and kind != "bias":
            raise ValueError(f"feature {feature}: exact_shares needs its teacher table in memory ({c} ids x {width}); "
                             f"raise teacher_table_max_entries or use fewer ids")
        return fn(feature, ids) if table is None else np.take(table, ids, axis=0, mode="clip")

    def _pair_dots(self, f: int, g: int, first: int) -> np.ndarray:
        """[C_f * C_g] dot products over coordinates >= `first` of every id pair of (f, g)."""
        def build():
            cf, cg = int(self.spec.cardinalities[f]), int(self.spec.cardinalities[g])
            vf = self._lookup("latent", f, np.arange(cf))[:, first:]
            vg = self._lookup("latent", g, np.arange(cg))[:, first:]
            return (vf @ vg.T).reshape(-1)
        return self._cached(("dots", f, g, first), build)

    def _cached(self, key: tuple, build) -> np.ndarray:
        if key not in self._memo:
            self._memo[key] = build()
        return self._memo[key]

    def _interactions(self, sparse: np.ndarray, first: int = 0) -> np.ndarray:
        """sum over pairs f < g of <v_f, v_g> restricted to coordinates >= `first`."""
        out = np.zeros(sparse.shape[0])
        if not self.latent_pairs or first >= self.spec.latent_dim:
            return out
        if self.use_pair_tables:
            for f, g in self.latent_pairs:
                out += self._pair_dots(f, g, first)[sparse[:, f] * int(self.spec.cardinalities[g]) + sparse[:, g]]
            return out
        total = np.zeros((sparse.shape[0], self.spec.latent_dim - first))
        for f in self.interaction_features:
            v = self._lookup("latent", f, sparse[:, f])[:, first:]
            total += v
            out -= np.einsum("ij,ij->i", v, v)
        return 0.5 * (out + np.einsum("ij,ij->i", total, total))  # (|sum v|^2 - sum |v|^2) / 2

    # ------------------------------------------------------------------- the logit
    def parts(self, dense: np.ndarray, sparse: np.ndarray, size: Optional[StudentSize] = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(logit without the calibration offset, its centred part a student of `size` cannot
        represent: 0 for size None, the whole teacher)."""
        logit = np.zeros(sparse.shape[0])
        for f in range(sparse.shape[1]):
            logit += self._lookup("bias", f, sparse[:, f])
        logit += self._interactions(sparse)
        z = dense.astype(np.float64)
        betas = {f: self._lookup("beta", f, sparse[:, f]) for f in self.top_features}
        zt = z[:, :TOP_DENSE_FEATURES] @ self.top_directions.T if len(self.top_weights) else None  # [n, K]
        top_terms = [self.top_weights[k] * np.abs(betas[f] + zt[:, k] - self.top_offsets[k])
                     for k, f in enumerate(self.top_feature_of)]
        for term in top_terms:
            logit += term
        m = len(self.dense_weights)
        first = TOP_DENSE_FEATURES if len(self.top_weights) else 0
        dense_terms = np.abs(z[:, first:first + m]) * self.dense_weights if m else np.zeros((len(z), 0))
        logit += dense_terms.sum(axis=1) + z @ self.dense_linear
        if z.shape[1] >= 2:
            logit += self.dense_product * z[:, 0] * z[:, 1]
        missed = np.zeros_like(logit)
        if size is None:
            return logit, missed
        cut = size.latent_coordinates
        if self.latent_pairs and cut < self.spec.latent_dim:  # pair dots have mean 0
            missed += self._interactions(sparse, first=cut)
        cut = size.dense_terms
        if cut < m:
            missed += (dense_terms[:, cut:] - self.dense_weights[cut:] * MEAN_ABS_STD_NORMAL).sum(axis=1)
        return logit, missed

    def logit(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        return self.parts(dense, sparse)[0]
