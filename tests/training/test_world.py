"""The planted world (data=synthetic): a law with a known answer on every axis.

The teacher's parts (dlrm/data/teacher.py) each meet one of the student's resources; the
share a student of x terms misses is a Hurwitz-zeta tail ~ x^-e with the exponent planted
in the config, the capacity-limited oracle is monotone in the embedding dim and the bottom
width, flat in the top width (which limits no part), and reaches the Bayes floor at full
size, and its Gaussian treatment of the missed part agrees with a Monte Carlo of the exact
conditional expectation.  Seeds move the training stream, never the world.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.special import zeta

from dlrm.data.synthetic import SEED_STRIDE, SyntheticWorld, world_from_config
from dlrm.data.teacher import StudentSize, spectrum
from harness import typed

SPEC = dataclasses.replace(typed([]).data, num_eval_samples=1 << 15)
BASE = StudentSize(embedding_dim=16, dense_arch_width=64, over_arch_width=64)
FULL = StudentSize(embedding_dim=SPEC.latent_dim + 1, dense_arch_width=2 * SPEC.num_dense_features,
                   over_arch_width=8)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SPEC)


def test_the_spectrum_tail_is_a_power_law_with_the_planted_exponent():
    for e in (0.5, 0.75, 1.0):
        w = spectrum(200, e)
        assert w.sum() == pytest.approx(1.0, rel=1e-12)
        for k in (3, 15, 63):  # share missed by a student with k terms: zeta(1 + e, k + 1) / zeta(1 + e)
            assert w[k:].sum() == pytest.approx(zeta(1 + e, k + 1) / zeta(1 + e, 1), rel=1e-9)
        # ... a power law: doubling k divides it by ~2^e
        ratio = w[64:].sum() / w[128:].sum()
        assert math.log2(ratio) == pytest.approx(e, abs=0.05)


@pytest.mark.parametrize("axis,values", [("embedding_dim", (4, 8, 16, 32, 64)),
                                          ("dense_arch_width", (4, 8, 16, 32, 64))])
def test_the_oracle_falls_along_both_capacity_axes_and_stays_above_the_bayes_floor(world, axis, values):
    ne = [world.oracle(dataclasses.replace(BASE, **{axis: v})).ne for v in values]
    assert all(a > b for a, b in zip(ne, ne[1:])), ne
    assert min(ne) > world.bayes_ne
    assert ne[0] - ne[-1] > 0.01  # the part is large enough to measure


def test_the_top_width_limits_no_part_so_its_oracle_is_flat(world):
    """DLRM represents the top terms at any top width (teacher.py; test_train.py trains it):
    the oracle of every top width is the oracle of the base."""
    ne = {w: world.oracle(dataclasses.replace(BASE, over_arch_width=w)).ne for w in (2, 8, 64, 128)}
    assert len(set(ne.values())) == 1, ne
    assert ne[2] < world.oracle(dataclasses.replace(BASE, dense_arch_width=32)).ne


TOP_SPEC = dataclasses.replace(typed(["data=synthetic_top"]).data, num_eval_samples=1 << 15)


@pytest.fixture(scope="module")
def top_world() -> SyntheticWorld:
    return SyntheticWorld(TOP_SPEC)


def test_on_the_top_world_the_oracle_falls_with_the_top_width_to_the_bayes_floor(top_world):
    """data=synthetic_top: a width-W top misses the gated terms' three-way parts past W - 1."""
    ne = [top_world.oracle(dataclasses.replace(BASE, over_arch_width=w)).ne for w in (2, 4, 8, 16, 32)]
    assert all(a > b for a, b in zip(ne, ne[1:])), ne
    assert ne[0] - ne[-1] > 0.02
    every_term = dataclasses.replace(BASE, over_arch_width=TOP_SPEC.gated_terms + 1)
    assert top_world.oracle(every_term).logloss == pytest.approx(top_world.bayes_logloss, rel=1e-12)


def test_the_gated_terms_three_way_parts_are_orthogonal_to_every_two_feature_function(top_world):
    """What the oracle counts as the top's: the three-way part of a gated term averages to
    exactly 0 over any one of its three features, whatever the other two are, so no sum of
    two-feature functions (DLRM without its top's ReLUs) carries any of it."""
    t = top_world.teacher
    for k in (0, 7, len(t.gated_pairs) - 1):
        a, b = t.gated_pairs[k]
        ga, gb = (t._lookup("gate", f, np.arange(TOP_SPEC.cardinalities[f])) - TOP_SPEC.gated_open for f in (a, b))
        kink = t._kinks(np.arange(TOP_SPEC.cardinalities[t.gated_carrier]))[:, k] - t.gated_kink_mean[k]
        part = ga[:, None, None] * gb[None, :, None] * kink[None, None, :]  # [C_a, C_b, C_c], uniform ids
        assert np.abs(part).max() > 0.1
        for axis in range(3):
            np.testing.assert_allclose(part.mean(axis=axis), 0.0, atol=1e-12)


def test_the_missed_three_way_variance_of_the_gated_terms_is_the_planted_share(top_world):
    dense, sparse = top_world.features(np.arange(TOP_SPEC.eval_offset, TOP_SPEC.eval_offset + (1 << 15), dtype=np.uint64))
    _, missed = top_world.teacher.parts(dense, sparse, dataclasses.replace(BASE, over_arch_width=9))
    share = top_world.teacher.gated_share[8:].sum()
    assert np.var(missed) == pytest.approx(share * TOP_SPEC.gated_scale ** 2, rel=0.08)


def test_exact_shares_refuses_a_gate_it_cannot_open_exactly_half_of():
    odd = list(TOP_SPEC.cardinalities)
    odd[TOP_SPEC.gated_features[0]] = 11
    with pytest.raises(ValueError, match="exactly 0.5 of them"):
        SyntheticWorld(dataclasses.replace(TOP_SPEC, cardinalities=tuple(odd)))


def test_the_oracle_of_a_student_that_represents_everything_is_the_bayes_floor(world):
    assert world.oracle(FULL).logloss == pytest.approx(world.bayes_logloss, rel=1e-12)


def test_the_missed_variance_is_the_planted_share(world):
    """Embedding and bottom parts: independent terms, so the variance of what a student misses
    on the eval set is the planted share of the part's variance (to sampling error)."""
    dense, sparse = world.features(np.arange(SPEC.eval_offset, SPEC.eval_offset + (1 << 15), dtype=np.uint64))
    everything_else = dict(embedding_dim=FULL.embedding_dim, dense_arch_width=FULL.dense_arch_width,
                           over_arch_width=FULL.over_arch_width)
    for key, x, share, scale in (
            ("embedding_dim", 9, world.teacher.latent_share[8:].sum(), SPEC.interaction_scale),
            ("dense_arch_width", 16, world.teacher.dense_share[8:].sum(), SPEC.dense_abs_scale)):
        _, missed = world.teacher.parts(dense, sparse, StudentSize(**{**everything_else, key: x}))
        assert np.var(missed) == pytest.approx(share * scale ** 2, rel=0.08), key


def test_the_gaussian_oracle_agrees_with_the_exact_conditional_expectation(world):
    """When only bottom-MLP terms are missed, they are independent of all a student sees:
    the exact best prediction is E over fresh dense features of sigmoid(seen + missed)."""
    size = dataclasses.replace(FULL, dense_arch_width=8)
    n = 1 << 12
    idx = np.arange(SPEC.eval_offset, SPEC.eval_offset + n, dtype=np.uint64)
    dense, sparse = world.features(idx)
    raw, missed = world.teacher.parts(dense, sparse, size)
    seen = raw + world.logit_offset - missed
    p = 1 / (1 + np.exp(-(raw + world.logit_offset)))
    rng = np.random.default_rng(0)
    t = world.teacher
    cut = size.dense_terms
    draws = np.abs(rng.standard_normal((512, len(t.dense_weights) - cut))) * t.dense_weights[cut:]
    fresh = (draws - t.dense_weights[cut:] * math.sqrt(2 / math.pi)).sum(axis=1)  # [512]
    q_exact = (1 / (1 + np.exp(-(seen[:, None] + fresh[None, :])))).mean(axis=1)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    q_gauss = (1 / (1 + np.exp(-(seen[:, None] + math.sqrt(np.var(fresh)) * nodes)))) @ (weights / weights.sum())
    ce = lambda q: -(p * np.log(q) + (1 - p) * np.log1p(-q)).mean()  # noqa: E731
    assert ce(q_gauss) == pytest.approx(ce(q_exact), rel=2e-3)
    assert ce(q_gauss) > ce(p)  # worse than the Bayes predictor, as it must be


def test_seeds_move_the_training_stream_and_never_the_world_or_its_eval_set():
    cfg = typed([]).data
    s0, s3 = world_from_config(cfg, 0), world_from_config(cfg, 3)
    assert s0.world is s3.world  # one world, cached
    a, b = s0.train_arrays(100, 200), s3.train_arrays(100, 200)
    assert not np.array_equal(a.sparse, b.sparse)
    np.testing.assert_array_equal(b.sparse, s0.world.train_arrays(3 * SEED_STRIDE + 100, 3 * SEED_STRIDE + 200).sparse)
    np.testing.assert_array_equal(s0.eval_arrays(0, 100).labels, s3.eval_arrays(0, 100).labels)
    assert s0.data_id == s3.data_id and s0.bayes_ne == s3.bayes_ne


def test_the_saturating_world_is_the_first_world():
    """data=synthetic_saturating keeps the first world: its Bayes floor is the one measured
    before the new default (0.4348 nats, NE 0.7723 on the full eval set)."""
    w = world_from_config(typed(["data=synthetic_saturating"]).data, 0)
    assert w.bayes_logloss == pytest.approx(0.4348, abs=5e-5)
    assert w.bayes_ne == pytest.approx(0.7723, abs=5e-5)
    assert w.data_id != world_from_config(typed([]).data, 0).data_id


def test_the_realised_floor_differs_from_the_expected_one_by_the_labels_noise(world):
    """The Bayes floor on the eval set's realised labels, the one a model's NE is compared
    with, is within a few standard errors of its expectation, and not equal to it."""
    b = world._bayes
    stderr = math.sqrt(0.25 / SPEC.num_eval_samples) * 2  # ~ the NE's standard error on this set
    assert b.ne_realised != b.ne and abs(b.ne_realised - b.ne) < 5 * stderr
    size = dataclasses.replace(BASE, embedding_dim=8)
    o = world.oracle(size)
    assert o.ne_realised > b.ne_realised and o.ne > b.ne
    truth = world.known_truth(size)
    assert truth["bayes_ne_realised"] == b.ne_realised and truth["oracle_ne_realised"] == o.ne_realised
    assert truth["planted_exponents"] == {"embedding_dim": 0.9, "dense_arch_width": 0.45, "over_arch_width": None}
