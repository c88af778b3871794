"""The planted worlds: determinism, rank slices, the long tail, the exact Bayes floor (here
on a small version of the saturating world; tests/training/test_world.py has the new world's laws)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from dlrm.batches import global_batches, rank_slice
from dlrm.data.synthetic import SyntheticWorld, binary_entropy
from harness import typed

CARDS = [10, 100, 1000, 10000, 100000, 50, 500, 5000]
SATURATING = typed(["data=synthetic_saturating"]).data


def world(teacher_table_max_entries: int = 1 << 24, **kw) -> SyntheticWorld:
    return SyntheticWorld(dataclasses.replace(SATURATING, cardinalities=tuple(CARDS), num_eval_samples=1 << 16,
                                              interaction_features=tuple(range(len(CARDS))), **kw),
                          teacher_table_max_entries)


def test_same_seed_and_index_give_the_same_sample():
    a, b = world(world_seed=7), world(world_seed=7)
    x, y = a.train_arrays(1000, 1100), b.train_arrays(1000, 1100)
    np.testing.assert_array_equal(x.sparse, y.sparse)
    np.testing.assert_array_equal(x.dense, y.dense)
    np.testing.assert_array_equal(x.labels, y.labels)
    # ...and sample i does not depend on which slice asked for it
    z = a.train_arrays(1050, 1060)
    np.testing.assert_array_equal(z.sparse, x.sparse[50:60])
    other = world(world_seed=8).train_arrays(1000, 1100)
    assert not np.array_equal(other.sparse, x.sparse)


def test_rank_slices_concatenate_to_the_one_rank_stream():
    w = world()
    n, batch = 10_000, 1000
    one_rank = w.train_arrays(0, n)
    pieces = []
    for start, size in global_batches(n, batch):
        for rank in range(2):
            lo, hi = rank_slice(start, size, rank, 2)
            pieces.append(w.train_arrays(lo, hi).sparse)
    np.testing.assert_array_equal(np.concatenate(pieces), one_rank.sparse)


def test_eval_set_is_disjoint_from_training_and_fixed():
    w = world()
    ev = w.eval_arrays(0, 2000)
    tr = w.train_arrays(0, 2000)
    assert not np.array_equal(ev.sparse, tr.sparse)
    np.testing.assert_array_equal(ev.sparse, world().eval_arrays(0, 2000).sparse)
    with pytest.raises(ValueError, match="leaves the training stream"):
        w.train_arrays(0, w.spec.eval_offset + 1)


def test_ids_have_the_configured_long_tail():
    s = 1.3
    w = world(zipf_exponent=s)
    ids = w.train_arrays(0, 400_000).sparse[:, 4]  # the 100k-id feature
    counts = np.bincount(ids, minlength=CARDS[4]).astype(float)
    assert ids.min() >= 0 and ids.max() < CARDS[4]
    ranks = np.arange(1, 200)  # id k has frequency ~ (k + 1)^-s: slope -s on log-log
    slope = np.polyfit(np.log(ranks + 0.5), np.log(counts[ranks - 1] + 1e-9), 1)[0]
    assert slope == pytest.approx(-s, abs=0.12)
    # a long tail: ids beyond rank 1000 still carry a share of the samples
    assert 0.01 < counts[1000:].sum() / counts.sum() < 0.5


def test_base_ctr_is_calibrated():
    w = world(base_ctr=0.2)
    assert w.train_arrays(0, 100_000).labels.mean() == pytest.approx(0.2, abs=0.01)


def test_bayes_logloss_matches_monte_carlo_within_its_standard_error():
    w = world()
    arrays, p = w.samples(np.arange(w.spec.eval_offset, w.spec.eval_offset + w.num_eval_samples, dtype=np.uint64))
    assert w.bayes_logloss == pytest.approx(binary_entropy(p).mean(), rel=1e-9)
    # The labels the world draws, scored by the teacher: their mean is a Monte Carlo estimate of the floor.
    y = arrays.labels.astype(float)
    per_sample = -(y * np.log(p) + (1 - y) * np.log1p(-p))
    se = per_sample.std() / np.sqrt(len(y))
    assert abs(per_sample.mean() - w.bayes_logloss) < 4 * se
    # Independent labels from another generator tell the same.
    rng = np.random.default_rng(0)
    y2 = (rng.random(len(p)) < p).astype(float)
    mc2 = -(y2 * np.log(p) + (1 - y2) * np.log1p(-p))
    assert abs(mc2.mean() - w.bayes_logloss) < 4 * mc2.std() / np.sqrt(len(y2))
    assert 0.5 < w.bayes_ne < 1.0


def test_hashed_teacher_equals_the_memoised_tables():
    big = world()
    small = world(teacher_table_max_entries=4)  # every feature hashes on the fly
    idx = np.arange(5000, 6000, dtype=np.uint64)
    _, p_big = big.samples(idx)
    _, p_small = small.samples(idx)
    np.testing.assert_allclose(p_big, p_small, rtol=1e-12)
    assert all(t is None for t in small.teacher._memo.values())


@pytest.mark.parametrize("data", ["synthetic", "synthetic_saturating", "synthetic_top"])
def test_the_stacked_per_id_tables_give_the_bits_of_one_lookup_per_feature(data):
    """The biases and the top terms' betas come from one gather over every feature's table; the
    biases' sum must be the bits of adding feature by feature, as the stream has always been made."""
    w = SyntheticWorld(dataclasses.replace(typed([f"data={data}"]).data, num_eval_samples=1 << 10))
    t = w.teacher
    _, sparse = w.features(np.arange(3000, 3000 + 2048, dtype=np.uint64))
    looped = np.zeros(len(sparse))
    for f in range(sparse.shape[1]):
        looped += t._lookup("bias", f, sparse[:, f])
    assert t._stacked("bias", tuple(range(sparse.shape[1]))) is not None  # the fast path is the one tested
    np.testing.assert_array_equal(t._biases(sparse), looped)
    assert np.any(looped != 0) or data == "synthetic_top"  # the top world's features all have terms instead
    if t.top_features:
        stacked = t._per_id("beta", t.top_features, sparse)
        np.testing.assert_array_equal(stacked, np.stack([t._lookup("beta", f, sparse[:, f]) for f in t.top_features], 1))


def test_a_teacher_hashing_on_the_fly_gives_the_bits_of_its_tables():
    big, small = world(), world(teacher_table_max_entries=4)
    dense, sparse = big.features(np.arange(7000, 9000, dtype=np.uint64))
    assert small.teacher._stacked("bias", tuple(range(len(CARDS)))) is None  # the per-feature loop
    np.testing.assert_array_equal(big.teacher.logit(dense, sparse), small.teacher.logit(dense, sparse))
