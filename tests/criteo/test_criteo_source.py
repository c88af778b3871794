"""CriteoSource: the DataSource over preprocessed Criteo days, and the data=criteo_* configs."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from dlrm.config import CriteoDataConfig
from dlrm.data.criteo import CriteoSource
from dlrm.data.criteo.preprocess import preprocess
from dlrm.data.criteo.source import CriteoConfigError, CriteoDataNotFoundError

REPO = Path(__file__).resolve().parents[2]
UID = 25  # cat_25 carries each line's index (see conftest.make_line), so rows are traceable


@pytest.fixture(scope="module")
def kaggle_dir(tmp_path_factory, criteo):
    """A Kaggle-layout directory: train.txt of 7 * 40 + 3 lines, ids = line index in cat_25."""
    root = tmp_path_factory.mktemp("kaggle")
    raw, out = root / "raw", root / "out"
    raw.mkdir()
    lines = criteo.make_lines(7 * 40 + 3, seed=7, uid_start=0)
    criteo.write_tsv(str(raw / "train.txt"), lines)
    sizes = [1000] * 25 + [2**31 - 1]  # cat_25 keeps the line index intact
    preprocess(str(raw), str(out), "kaggle", num_embeddings_per_feature=sizes, workers=1, chunk_lines=64)
    return out, lines, sizes


def cfg(path, **kw) -> CriteoDataConfig:
    base = dict(name="criteo_kaggle", path=str(path), num_train_samples=200, num_eval_samples=20,
                shuffle_window=0, shuffle_seed=0, num_embeddings_per_feature=None, max_ind_range=None)
    base.update(kw)
    return CriteoDataConfig(**base)


def test_serves_the_training_days_in_order_and_the_eval_half(kaggle_dir, criteo):
    out, lines, sizes = kaggle_dir
    src = CriteoSource.from_config(cfg(out, num_train_samples=None, num_eval_samples=None))
    split = criteo.kaggle_split(len(lines))  # [41, 41, 41, 40, 40, 40, 40]
    n_train = sum(split[:6])
    assert src.max_train_samples == n_train == src.num_train_samples
    assert src.num_eval_samples == (split[6] + 1) // 2
    assert src.cardinalities == sizes and src.num_dense_features == 13
    assert src.bayes_logloss is None and src.bayes_ne is None
    a = src.train_arrays(0, n_train)
    rd, rs, rl = criteo.reference(lines[:n_train], sizes)
    assert a.dense.dtype == np.float32 and a.sparse.dtype == np.int64 and a.labels.dtype == np.float32
    np.testing.assert_allclose(a.dense, rd, rtol=1e-7)
    np.testing.assert_array_equal(a.sparse, rs)
    np.testing.assert_array_equal(a.labels, rl.astype(np.float32))
    e = src.eval_arrays(0, src.num_eval_samples)
    ed, es, el = criteo.reference(lines[n_train : n_train + src.num_eval_samples], sizes)
    np.testing.assert_array_equal(e.sparse, es)
    np.testing.assert_array_equal(e.labels, el.astype(np.float32))
    # eval is disjoint from training: line ids in cat_25
    assert set(e.sparse[:, UID]).isdisjoint(set(a.sparse[:, UID]))
    np.testing.assert_array_equal(np.sort(a.sparse[:, UID]), np.arange(n_train))


@pytest.mark.parametrize("window", [1, 7, 64, 1000])
def test_window_shuffle_is_a_seeded_permutation_within_windows(kaggle_dir, window):
    out, _, _ = kaggle_dir
    src = CriteoSource.from_config(cfg(out, shuffle_window=window, shuffle_seed=3))
    n = src.max_train_samples
    ids = src.train_arrays(0, n).sparse[:, UID]
    np.testing.assert_array_equal(np.sort(ids), np.arange(n))  # one pass over every row
    for b in range(0, n, window):  # each window holds exactly its own rows
        np.testing.assert_array_equal(np.sort(ids[b : b + window]), np.arange(b, min(b + window, n)))
    if window > 1:
        assert (ids != np.arange(n)).any()
    # deterministic: a fresh source, another data size, agrees on every sample
    other = CriteoSource.from_config(cfg(out, shuffle_window=window, shuffle_seed=3, num_train_samples=50))
    np.testing.assert_array_equal(other.train_arrays(0, 50).sparse[:, UID], ids[:50])
    if window > 7:
        reseeded = CriteoSource.from_config(cfg(out, shuffle_window=window, shuffle_seed=4))
        assert (reseeded.train_arrays(0, n).sparse[:, UID] != ids).any()


def test_ranks_slices_concatenate_to_the_global_batch(kaggle_dir):
    out, _, _ = kaggle_dir
    src = CriteoSource.from_config(cfg(out, shuffle_window=50, shuffle_seed=1))
    whole = src.train_arrays(0, 240)
    world, local = 3, 8
    got = []
    for step in range(240 // (world * local)):
        for rank in range(world):  # each rank builds its own source and reads only its slice
            r = CriteoSource.from_config(cfg(out, shuffle_window=50, shuffle_seed=1))
            s = step * world * local + rank * local
            got.append(r.train_arrays(s, s + local))
    np.testing.assert_array_equal(np.concatenate([g.sparse for g in got]), whole.sparse)
    np.testing.assert_array_equal(np.concatenate([g.dense for g in got]), whole.dense)
    np.testing.assert_array_equal(np.concatenate([g.labels for g in got]), whole.labels)
    # uneven split points too, crossing day and window boundaries
    cuts = [0, 1, 40, 41, 99, 100, 187, 240]
    parts = [src.train_arrays(a, b).sparse for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(parts), whole.sparse)


def test_source_pickles_and_serves_the_same_samples(kaggle_dir):
    import pickle

    out, _, _ = kaggle_dir
    src = CriteoSource.from_config(cfg(out, shuffle_window=64, shuffle_seed=2))
    a = src.train_arrays(10, 90)
    clone = pickle.loads(pickle.dumps(src))
    np.testing.assert_array_equal(clone.train_arrays(10, 90).sparse, a.sparse)
    np.testing.assert_array_equal(clone.eval_arrays(0, 20).dense, src.eval_arrays(0, 20).dense)


def test_smaller_table_sizes_in_config_hash_the_stored_ids(kaggle_dir):
    out, _, sizes = kaggle_dir
    full = CriteoSource.from_config(cfg(out))
    small = CriteoSource.from_config(cfg(out, num_embeddings_per_feature=[10] * 26))
    capped = CriteoSource.from_config(cfg(out, max_ind_range=100))
    assert small.cardinalities == [10] * 26 and capped.cardinalities == [100] * 26
    pairs = ((full.train_arrays(0, 100), small.train_arrays(0, 100)),
             (full.eval_arrays(0, 20), small.eval_arrays(0, 20)))
    for a, b in pairs:
        np.testing.assert_array_equal(b.sparse, a.sparse % 10)
    assert capped.eval_arrays(0, 20).sparse.max() < 100


def test_config_errors(kaggle_dir):
    out, _, _ = kaggle_dir
    with pytest.raises(CriteoConfigError, match="num_train_samples=10000"):
        CriteoSource.from_config(cfg(out, num_train_samples=10000))
    with pytest.raises(CriteoConfigError, match="num_eval_samples"):
        CriteoSource.from_config(cfg(out, num_eval_samples=21))
    with pytest.raises(CriteoConfigError, match="holds preprocessed Criteo 'kaggle'"):
        CriteoSource.from_config(cfg(out, name="criteo_1tb"))
    src = CriteoSource.from_config(cfg(out))
    with pytest.raises(IndexError):
        src.eval_arrays(0, 21)


def test_missing_path_error_names_expected_files_and_how_to_get_them(tmp_path):
    with pytest.raises(CriteoDataNotFoundError) as e:
        CriteoSource.from_config(cfg(tmp_path / "nowhere"))
    msg = str(e.value)
    for needle in ("nowhere", "metadata.json", "day_0_dense.npy", "day_0_sparse.npy", "day_0_labels.npy",
                   "python -m dlrm.data.criteo preprocess", "--dataset kaggle", "train.txt",
                   "ailab.criteo.com", "CRITEO_KAGGLE_DIR"):
        assert needle in msg, (needle, msg)
    assert isinstance(e.value, FileNotFoundError)
    with pytest.raises(CriteoDataNotFoundError) as e:
        CriteoSource.from_config(cfg(tmp_path / "nowhere", name="criteo_1tb"))
    assert "day_23" in str(e.value) and "criteo-1tb-click-logs" in str(e.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CriteoDataNotFoundError, match="metadata.json is missing"):
        CriteoSource.from_config(cfg(empty))


def test_incomplete_directory_names_the_missing_file(kaggle_dir, tmp_path):
    import shutil

    out, _, _ = kaggle_dir
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    os.remove(broken / "day_3_sparse.npy")
    with pytest.raises(CriteoDataNotFoundError, match=r"missing day_3_sparse.npy.*\n.*Expected: metadata.json"):
        CriteoSource.from_config(cfg(broken))


@pytest.mark.parametrize("name", ["criteo_kaggle", "criteo_1tb"])
def test_config_files_have_defaults_and_drive_the_source(name, kaggle_dir, monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    data = OmegaConf.load(REPO / "configs" / "data" / f"{name}.yaml")
    assert data.name == name
    for key in ("path", "num_train_samples", "num_eval_samples", "shuffle_window", "shuffle_seed",
                "num_embeddings_per_feature", "max_ind_range"):
        assert key in data, key
    assert "???" not in OmegaConf.to_yaml(data)  # every knob has a default
    env = "CRITEO_KAGGLE_DIR" if name == "criteo_kaggle" else "CRITEO_1TB_DIR"
    monkeypatch.delenv(env, raising=False)
    assert data.path == f"data/{name}"
    monkeypatch.setenv(env, str(tmp_path / "elsewhere"))
    assert data.path == str(tmp_path / "elsewhere")
    assert data.num_train_samples == 1048576 and data.num_eval_samples == 1048576
    assert data.num_embeddings_per_feature is None
    if name == "criteo_kaggle":
        out, _, _ = kaggle_dir
        monkeypatch.setenv(env, str(out))
        data.num_train_samples, data.num_eval_samples = 100, 10
        src = CriteoSource.from_config(data)
        assert src.train_arrays(0, 4).dense.shape == (4, 13)
    with pytest.raises(CriteoDataNotFoundError):
        monkeypatch.setenv(env, str(tmp_path / "elsewhere"))
        CriteoSource.from_config(data)


@pytest.mark.parametrize("name", ["criteo_kaggle", "criteo_1tb"])
def test_root_config_composes_with_criteo_and_dispatches(name, kaggle_dir, monkeypatch):
    """`data=criteo_*` composes with the root config; dlrm.data.make_source builds a CriteoSource."""
    from dlrm.data import make_source
    from runner.compose import compose, typed

    out, _, _ = kaggle_dir
    cfg = typed(compose([f"data={name}", f"data.path={out}", "data.num_train_samples=96", "data.num_eval_samples=16"]))
    assert cfg.data.name == name
    if name == "criteo_kaggle":
        src = make_source(cfg.data, cfg.seed)
        assert isinstance(src, CriteoSource) and src.num_train_samples == 96
    else:  # a Kaggle directory given to the 1TB config is refused, not silently used
        with pytest.raises(CriteoConfigError, match="holds preprocessed Criteo 'kaggle' data"):
            make_source(cfg.data, cfg.seed)
