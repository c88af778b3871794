"""The planted world's hidden teacher: a logit made of parts, each a law with a known answer.

    logit = b0 + biases + interactions + top terms + gated terms + dense terms

| part | what it is | the student's resource that limits it | terms a student of size x has |
|---|---|---|---|
| biases | a per-id scalar of every feature (long-tail ids) | data: rare ids need samples | all |
| interactions | sum over pairs of `interaction_features` of <v_f(id), v_g(id)>, v in R^K, coordinate j carrying a share w_j ~ j^-(1+p) of the variance | embedding dim d | the top d-1 coordinates (one dimension carries the bias) |
| top terms | sum over k of c_k abs(beta_f(id_f) + w_k . (z_0, z_1) - tau_k), f = top_features[k mod B], c_k^2 ~ k^-(1+r) | data only (see below) | all |
| gated terms | sum over pairs k = (a, b) of `gated_features` of c_k g_a(id_a) g_b(id_b) relu(s_k u(id_c) - tau_k): gates g in {0, 1} open for a share pi of the ids, u a scalar per id of the carrier feature c, the three-way part of term k carrying a share ~ k^-(1+t) (a truncated spectrum) | top-MLP width W | W - 1: one ReLU a term, one for the rest |
| dense terms | sum over dense features m of a_m abs(z_m), a_m^2 ~ m^-(1+q) | bottom-MLP (dense arch) width W | W/2: two ReLUs a term |
| dense linear | linear weights and one product z_0 z_1 (the saturating world's dense part) | none | all |

The top terms have the form of a top MLP's part (a ReLU of beta_f and w . z is one term, so
a width-W top alone would miss the terms past W - 2, ~W^-r), but DLRM does not need its top:
the dot of feature f's embedding with the dense arch's output, sum_j e_j(id) d_j(z), is any
rank-d function of (id, z), and the bottom MLP forms the kinks in z.  A per-feature sum of
kinks in a scalar beta_f(id) and 2 dense features is a smooth kernel of low rank, which a
narrow top learns as well as a wide one (tests/training/test_train.py trains both).  So no student
size of a sweep misses them: the oracle counts them as seen, the part costs data only, and
the top width has no planted law on them (tests/training/test_world.py).  Only the bottom MLP sees
the dense features before the embedding-wide bottleneck, so the embedding dim and the
bottom width meet a part of their own, with their own exponents (p, q).  A top feature has
no bias of its own: its main effect comes from its terms.

The gated terms are what only the top MLP represents.  DLRM's interaction arch gives the
top pairwise dots -- of two embeddings, or of an embedding and the dense arch's output --
so without the top's ReLUs the logit is a sum of functions of at most two features.  A
gated term splits (ANOVA, features independent) into parts of one, two and three features;
its three-way part, (g_a - pi)(g_b - pi)(relu(.) - E relu(.)), is orthogonal to every sum of
two-feature functions, and the three-way parts of different pairs to each other.  One ReLU
gated by the pair's dot and kinked in the carrier's scalar, relu(s u - tau - M (1 - g_a g_b)),
represents one term, and one more passes the lower parts (a single linear combination of the
top's inputs) through: the oracle of a top of width W misses the three-way parts of the
terms past W - 1.  A stated approximation, not a bound: a ReLU can carry parts of several
terms at once, so a trained top can end below the oracle of its width, most easily at small
widths and large data sizes.  The spectrum is truncated, not lumped: the few widths of a top
sweep would see a lump as a drop at the width that reaches it.  The gated terms live on a
world of their own (data=synthetic_top); the default world has none, because learned beside
its other parts they spread its seeds and blur the other laws' fits.

Each spectrum but the gated terms' is a power law whose last term holds the whole infinite
remainder (`spectrum`): the share a student of k terms misses is then exactly the
Hurwitz-zeta tail zeta(1 + e, k + 1) / zeta(1 + e, 1) ~ k^-e / e, a power law, as long as k
stays below the number of terms (a sweep wider than that would see the lump).

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

from dlrm.config import SyntheticDataConfig
from dlrm.data import hashing

# Stream numbers: each purpose draws from its own independent stream of the world seed.
STREAM_BIAS = 4_000  # + feature
STREAM_LATENT = 5_000  # + feature
STREAM_DENSE_WEIGHTS = 6_000
STREAM_TOP = 7_000  # + feature (beta); + 100 (the terms' directions and offsets)
MEAN_ABS_STD_NORMAL = math.sqrt(2.0 / math.pi)  # E|z| for z ~ N(0, 1)
VAR_ABS_STD_NORMAL = 1.0 - 2.0 / math.pi  # Var|z|
PAIR_TABLE_MAX_ENTRIES = 1 << 22  # interactions by per-pair dot tables below this size, else by gathering vectors
GATED_PASS_UNITS = 1  # a top's ReLUs not free for gated terms: one passes the two-feature parts
STREAM_GATED = 8_000  # + feature (gates, the carrier's scalars); + 100 (the kinks' signs and offsets)
TOP_DENSE_FEATURES = 2  # z_0, z_1: the dense part of the top terms (the bottom's abs terms use z_2 ...)


@dataclass(frozen=True)
class StudentSize:
    """What limits a student: its embedding dim and the hidden widths of its two MLPs."""

    embedding_dim: int
    dense_arch_width: Optional[int]  # the bottom MLP's (None: no hidden layer)
    over_arch_width: Optional[int]  # the top MLP's: limits the gated terms only

    @property
    def latent_coordinates(self) -> int:
        return max(self.embedding_dim - 1, 0)

    @property
    def dense_terms(self) -> int:
        return (self.dense_arch_width or 0) // 2

    @property
    def gated_terms(self) -> int:
        return max((self.over_arch_width or 0) - GATED_PASS_UNITS, 0)

    @property
    def limits(self) -> tuple[int, int, int]:
        """What the student can represent: sizes equal in it have one oracle."""
        return self.latent_coordinates, self.dense_terms, self.gated_terms


def opens_exactly(cardinality: int, share: float) -> bool:
    """Whether a share of a feature's ids is a whole number of them (exact_shares gates)."""
    return abs(cardinality * share - round(cardinality * share)) <= 1e-9


def spectrum(n: int, exponent: float, remainder_in_last: bool = True) -> np.ndarray:
    """Shares w_1..w_n (summing to 1) with w_k ~ k^-(1+exponent), the last holding the
    remainder of the infinite series (else the series truncated at n and renormalised);
    exponent < 0: a flat spectrum (every term alike)."""
    if n == 0:
        return np.zeros(0)
    if exponent < 0:
        return np.full(n, 1.0 / n)
    s = 1.0 + exponent
    w = np.arange(1, n + 1, dtype=np.float64) ** -s
    if not remainder_in_last:
        return w / w.sum()
    w[-1] = zeta(s, n)  # = sum_{k >= n} k^-s
    return w / zeta(s, 1)


# Per-id tables larger than this many entries are hashed on the fly: a memory bound, not part of the world.
TABLE_MAX_ENTRIES = 1 << 24


class Teacher:
    """The teacher of one world spec (see the module docstring for the parts)."""

    def __init__(self, spec: SyntheticDataConfig, table_max_entries: int = TABLE_MAX_ENTRIES):
        """`table_max_entries`: per-id tables larger than this are hashed on the fly (a memory bound)."""
        self.spec = spec
        self.table_max_entries = table_max_entries
        self._memo: dict[tuple, Optional[np.ndarray]] = {}
        self.interaction_features = list(spec.interaction_features)
        self.top_features = list(spec.top_features)
        cards = [int(c) for c in spec.cardinalities]
        self._max_ids = np.array(cards, dtype=np.int64) - 1
        self.bias_sigma = spec.bias_scale / math.sqrt(max(len(cards), 1))
        a = self.interaction_features
        self.latent_pairs = [(a[i], a[j]) for i in range(len(a)) for j in range(i + 1, len(a))]
        # Var(sum of pair dots) = P * sum_j sigma_j^4: coordinate j's std spreads interaction_scale^2 by w_j.
        self.latent_share = spectrum(spec.latent_dim if a else 0, spec.latent_spectrum_exponent)
        self.latent_sigma = (self.latent_share * spec.interaction_scale ** 2 / max(len(self.latent_pairs), 1)) ** 0.25
        # Top terms: feature, direction over (z_0, z_1) and offset of each; beta and w.z are N(0, 1),
        # tau a quantile of their sum, so that the kinks fall where the data are.
        k = spec.top_terms if self.top_features else 0
        self.top_term_beta = np.arange(k) % max(len(self.top_features), 1)  # term k's column of the top features' betas
        key = hashing.stream_key(spec.world_seed, STREAM_TOP + 100)
        angle = 2 * math.pi * hashing.uniform(key, np.arange(k))
        self.top_directions = np.stack([np.cos(angle), np.sin(angle)], axis=1) if k else np.zeros((0, 2))
        self.top_offsets = math.sqrt(2.0) * ndtri(hashing.uniform(key, np.arange(k, 2 * k))) if k else np.zeros(0)
        self.top_share = spectrum(k, spec.top_spectrum_exponent)
        u = np.linspace(-8, 8, 4001)  # Var abs(v - tau) for v ~ N(0, 2), by quadrature
        density = np.exp(-u * u / 4) / math.sqrt(4 * math.pi) * (u[1] - u[0])
        mean = np.array([np.sum(np.abs(u - t) * density) for t in self.top_offsets])
        var = np.array([np.sum((np.abs(u - t) - m) ** 2 * density) for t, m in zip(self.top_offsets, mean)])
        self.top_weights = np.sqrt(self.top_share * spec.top_scale ** 2 / np.maximum(var, 1e-12)) if k else np.zeros(0)
        self._init_gated(spec, cards)
        m = (spec.num_dense_features - (TOP_DENSE_FEATURES if spec.top_terms and spec.top_features else 0)
             if spec.dense_abs_scale > 0 else 0)
        self.dense_share = spectrum(m, spec.dense_spectrum_exponent)
        self.dense_weights = np.sqrt(self.dense_share * spec.dense_abs_scale ** 2 / VAR_ABS_STD_NORMAL)
        w = hashing.normal(hashing.stream_key(spec.world_seed, STREAM_DENSE_WEIGHTS), np.arange(spec.num_dense_features + 1))
        scale = spec.dense_linear_scale / math.sqrt(spec.num_dense_features + 1)
        self.dense_linear, self.dense_product = w[:-1] * scale, w[-1] * scale
        self.use_pair_tables = sum(cards[f] * cards[g] for f, g in self.latent_pairs) <= PAIR_TABLE_MAX_ENTRIES

    def _init_gated(self, spec, cards) -> None:
        """The gated terms: a pair of gates, a kink's sign and offset each; the weights make the
        three-way part of term k, c_k^2 (pi (1 - pi))^2 Var relu(.), its share of gated_scale^2."""
        g = list(spec.gated_features) if spec.gated_scale > 0 else []
        self.gated_features, self.gated_carrier = g, spec.gated_carrier_feature if g else None
        pairs = [(g[i], g[j]) for i in range(len(g)) for j in range(i + 1, len(g))]
        k = spec.gated_terms if pairs else 0
        self.gated_pairs = [pairs[i % len(pairs)] for i in range(k)]
        key = hashing.stream_key(spec.world_seed, STREAM_GATED + 100)
        self.gated_signs = np.where(hashing.uniform(key, np.arange(k)) < 0.5, -1.0, 1.0)
        self.gated_offsets = ndtri(hashing.uniform(key, np.arange(k, 2 * k))) if k else np.zeros(0)
        self.gated_share = spectrum(k, spec.gated_spectrum_exponent, remainder_in_last=False)
        self.gated_kink_mean, kink_var = np.zeros(k), np.zeros(k)
        if k:  # the kinks' moments under the carrier's (uniform) id law: exact, over all its ids
            for f in g:  # the gates' tables now: a world that cannot build them fails here, not mid-run
                self._lookup("gate", f, np.zeros(1, dtype=np.int64))
            kinks = self._kinks(np.arange(cards[self.gated_carrier]))
            self.gated_kink_mean, kink_var = kinks.mean(axis=0), kinks.var(axis=0)
        gate_var = spec.gated_open * (1 - spec.gated_open)
        self.gated_weights = np.sqrt(self.gated_share * spec.gated_scale ** 2 / (gate_var ** 2 * np.maximum(kink_var, 1e-12)))

    # ------------------------------------------------------------- per-id parameters
    def _normal(self, stream: int, feature: int, counters: np.ndarray) -> np.ndarray:
        return hashing.normal(hashing.stream_key(self.spec.world_seed, stream + feature), counters)

    def _bias(self, feature: int, ids: np.ndarray) -> np.ndarray:
        if feature in self.top_features or feature in self.gated_features or feature == self.gated_carrier:
            # its main effect comes from its top or gated terms
            return np.zeros(len(ids))
        return self.bias_sigma * self._normal(STREAM_BIAS, feature, np.asarray(ids, dtype=np.uint64))

    def _beta(self, feature: int, ids: np.ndarray) -> np.ndarray:
        return self._normal(STREAM_TOP, feature, np.asarray(ids, dtype=np.uint64))

    def _gated_uniform(self, feature: int, ids: np.ndarray) -> np.ndarray:
        return hashing.uniform(hashing.stream_key(self.spec.world_seed, STREAM_GATED + feature), np.asarray(ids, dtype=np.uint64))

    def _gate(self, feature: int, ids: np.ndarray) -> np.ndarray:
        """1 where a gated feature's id is open (with probability gated_open), 0 else."""
        return (self._gated_uniform(feature, ids) < self.spec.gated_open).astype(np.float64)

    def _carrier(self, feature: int, ids: np.ndarray) -> np.ndarray:
        """The carrier's scalar u(id): a normal quantile of the id's hash."""
        return ndtri(self._gated_uniform(feature, ids))

    def _exact_gated_table(self, kind: str, feature: int) -> np.ndarray:
        """exact_shares: exactly gated_open of a gate's ids open, the carrier's scalars the normal
        quantiles (j + 1/2) / C -- each id's rank among the hashes picks its value -- so that the
        terms' moments are the planted ones under the uniform id law."""
        c, open_share = int(self.spec.cardinalities[feature]), self.spec.gated_open
        if feature not in self.spec.uniform_features or (kind == "gate" and not opens_exactly(c, open_share)):
            raise ValueError(f"feature {feature}: exact_shares needs a gated feature's ids uniform (data.uniform_features)"
                             f" and, for a gate, a cardinality ({c}) that opens exactly {open_share} of them")
        rank = np.empty(c, dtype=np.int64)
        rank[np.argsort(self._gated_uniform(feature, np.arange(c)))] = np.arange(c)
        if kind == "gate":
            return (rank < round(c * open_share)).astype(np.float64)
        return ndtri((rank + 0.5) / c)

    def _kinks(self, carrier_ids: np.ndarray) -> np.ndarray:
        """[n, K] relu(s_k u(id) - tau_k) of the carrier's ids."""
        u = self._lookup("carrier", self.gated_carrier, carrier_ids)
        return np.maximum(self.gated_signs[None, :] * u[:, None] - self.gated_offsets[None, :], 0.0)

    def _latent(self, feature: int, ids: np.ndarray) -> np.ndarray:
        """[n, K] teacher vectors v_f(id)."""
        k = self.spec.latent_dim
        ids_u = np.asarray(ids, dtype=np.uint64)
        counters = ids_u[:, None] * np.uint64(k) + np.arange(k, dtype=np.uint64)[None, :]
        return self.latent_sigma[None, :] * self._normal(STREAM_LATENT, feature, counters)

    def _table(self, key: tuple, entries: int, build) -> Optional[np.ndarray]:
        """A memo of per-id values, or None when it would exceed table_max_entries."""
        if key not in self._memo:
            self._memo[key] = build() if entries <= self.table_max_entries else None
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
        fn = {"bias": self._bias, "beta": self._beta, "latent": self._latent, "gate": self._gate,
              "carrier": self._carrier}[kind]
        c = int(self.spec.cardinalities[feature])
        width = self.spec.latent_dim if kind == "latent" else 1

        def build() -> np.ndarray:
            table = fn(feature, np.arange(c))
            if self.spec.exact_shares and kind == "latent":
                table = self._standardised(feature, table, self.latent_sigma)
            elif self.spec.exact_shares and kind == "beta":
                table = self._standardised(feature, table[:, None], np.ones(1))[:, 0]
            elif self.spec.exact_shares and kind in ("gate", "carrier"):
                table = self._exact_gated_table(kind, feature)
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

    def _stacked(self, kind: str, features: tuple[int, ...]) -> Optional[tuple[np.ndarray, np.ndarray]]:
        """The tables of `features` end to end, and each one's first row: one gather serves them
        all (no per-feature Python).  None when a table is hashed on the fly."""
        def build():
            for f in features:  # builds each memo (or records that it is hashed on the fly)
                self._lookup(kind, f, np.zeros(1, dtype=np.int64))
            tables = [self._memo[(kind, f)] for f in features]
            if any(t is None for t in tables):
                return None
            starts = np.cumsum([0] + [len(t) for t in tables[:-1]])
            return np.concatenate(tables), np.asarray(starts, dtype=np.int64)
        return self._cached(("stacked", kind, features), build)

    def _per_id(self, kind: str, features: list[int], sparse: np.ndarray) -> np.ndarray:
        """[n, len(features)] per-id values of `features`, as _lookup of each gives them."""
        stacked = self._stacked(kind, tuple(features))
        if stacked is None:
            return np.stack([self._lookup(kind, f, sparse[:, f]) for f in features], axis=1)
        flat, starts = stacked
        cols = sparse[:, features]
        return flat[np.clip(cols, 0, self._max_ids[features]) + starts]

    def _biases(self, sparse: np.ndarray) -> np.ndarray:
        """The sum of every feature's bias, added feature by feature in order (the feature-major
        [F, n] array reduces over its first axis sequentially: the same bits as a loop)."""
        return np.ascontiguousarray(self._per_id("bias", list(range(sparse.shape[1])), sparse).T).sum(axis=0)

    # ------------------------------------------------------------------- the logit
    def parts(self, dense: np.ndarray, sparse: np.ndarray, size: Optional[StudentSize] = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """(logit without the calibration offset, its centred part a student of `size` cannot
        represent: 0 for size None, the whole teacher)."""
        logit = self._biases(sparse)
        logit += self._interactions(sparse)
        z = dense.astype(np.float64)
        if len(self.top_weights):  # all K terms as one [n, K] array: no per-term Python
            betas = self._per_id("beta", self.top_features, sparse)
            zt = z[:, :TOP_DENSE_FEATURES] @ self.top_directions.T  # [n, K]
            logit += np.abs(betas[:, self.top_term_beta] + zt - self.top_offsets) @ self.top_weights
        gates = {f: self._lookup("gate", f, sparse[:, f]) for f in self.gated_features}
        kinks = self._kinks(sparse[:, self.gated_carrier]) if self.gated_pairs else None
        for k, (a, b) in enumerate(self.gated_pairs):
            logit += self.gated_weights[k] * gates[a] * gates[b] * kinks[:, k]
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
        centre = self.spec.gated_open
        for k in range(size.gated_terms, len(self.gated_pairs)):  # the three-way parts past the top's width
            a, b = self.gated_pairs[k]
            missed += self.gated_weights[k] * (gates[a] - centre) * (gates[b] - centre) * (kinks[:, k] - self.gated_kink_mean[k])
        return logit, missed

    def logit(self, dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
        return self.parts(dense, sparse)[0]
