"""The shared cache of generated training streams (dlrm/data/stream_cache.py): the same bytes
as generating afresh, keyed by the world and the seed, bounded, and robust to a bad file."""
from __future__ import annotations

import numpy as np
import pytest

from harness import run_job, typed

# The default world (built once per process), with a small eval set.
SMALL = ["data.num_eval_samples=4096"]


def _stream(seed: int = 0, extra: list[str] | None = None):
    from dlrm.data import make_source

    cfg = typed(SMALL + (extra or []))
    return make_source(cfg.data, seed)


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) and getattr(a, k).dtype == getattr(b, k).dtype
               and getattr(a, k).flags.c_contiguous for k in ("dense", "sparse", "labels"))


def test_cached_samples_are_the_bytes_of_generating_afresh_written_then_read(tmp_path):
    from dlrm.data.stream_cache import CachedStream

    source = _stream()
    slices = [(0, 512), (512, 1024), (900, 2100), (2999, 3001), (0, 7000)]  # across block edges
    writer = CachedStream(source, tmp_path, max_bytes=2**30, block_samples=1000)
    for lo, hi in slices:
        assert _same(writer.train_arrays(lo, hi), source.train_arrays(lo, hi)), (lo, hi)
    assert writer.blocks_generated == 7  # each block generated once, then read back
    reader = CachedStream(source, tmp_path, max_bytes=2**30, block_samples=1000)  # another run of the stream
    for lo, hi in slices:
        assert _same(reader.train_arrays(lo, hi), source.train_arrays(lo, hi)), (lo, hi)
    assert reader.blocks_generated == 0 and reader.blocks_read >= 7
    assert reader.eval_arrays(0, 10).labels.shape == (10,)  # everything else is the source's


def test_each_world_and_seed_has_its_own_blocks(tmp_path):
    from dlrm.data.stream_cache import CachedStream

    streams = [_stream(0), _stream(1), _stream(0, ["data.world_seed=7"])]
    dirs = set()
    for s in streams:
        cached = CachedStream(s, tmp_path, max_bytes=2**30, block_samples=1000)
        assert _same(cached.train_arrays(0, 1500), s.train_arrays(0, 1500))
        assert cached.blocks_read == 0  # nothing another stream wrote is read as its own
        dirs.add(cached.dir)
    assert len(dirs) == 3


def test_the_cache_writes_no_block_past_its_bound_and_still_serves_every_sample(tmp_path):
    from dlrm.data.stream_cache import CachedStream, directory_bytes

    source = _stream()
    one_block = CachedStream(source, tmp_path / "probe", max_bytes=2**30, block_samples=1000)
    one_block.train_arrays(0, 1000)
    block_bytes = directory_bytes(tmp_path / "probe")
    cached = CachedStream(source, tmp_path / "c", max_bytes=int(2.5 * block_bytes), block_samples=1000)
    assert _same(cached.train_arrays(0, 6000), source.train_arrays(0, 6000))
    assert directory_bytes(tmp_path / "c") <= 2.5 * block_bytes
    assert len(list(cached.dir.glob("*.npy"))) == 2


def test_an_unreadable_or_foreign_block_is_generated_again_not_trusted(tmp_path):
    from dlrm.data.stream_cache import CachedStream

    source = _stream()
    first = CachedStream(source, tmp_path, max_bytes=2**30, block_samples=1000)
    first.train_arrays(0, 3000)
    blocks = sorted(first.dir.glob("*.npy"))
    blocks[0].write_bytes(b"not a block")  # a torn or foreign file
    np.save(blocks[1], np.zeros(1000, dtype=np.float64))  # a block of another layout
    again = CachedStream(source, tmp_path, max_bytes=2**30, block_samples=1000)
    assert _same(again.train_arrays(0, 3000), source.train_arrays(0, 3000))
    assert again.blocks_generated == 2 and again.blocks_read == 1
    assert np.load(blocks[0], mmap_mode="r").dtype == again._dtype  # and written back whole


def test_a_run_through_the_cache_trains_the_same_run(tmp_path):
    """The loop reads the cache when trainer.stream_cache_dir is set: the same losses and
    eval, and a second run of the stream reads what the first wrote."""
    base = SMALL + ["data.num_train_samples=8192", "data.num_eval_samples=4096", "trainer.num_threads=1"]
    cache = tmp_path / "cache"
    plain = run_job(base, tmp_path / "plain")["summary"]
    first = run_job(base + [f"trainer.stream_cache_dir={cache}"], tmp_path / "first")["summary"]
    blocks = sorted(cache.rglob("*.npy"))
    assert len(blocks) == 2  # 8192 samples: two blocks
    written = [b.stat().st_mtime_ns for b in blocks]
    second = run_job(base + [f"trainer.stream_cache_dir={cache}", "model.embedding_dim=8"], tmp_path / "second")["summary"]
    for s in (plain, first, second):
        assert s["status"] == "completed"
    assert first["eval_logloss"] == plain["eval_logloss"] and first["train_loss_last"] == plain["train_loss_last"]
    assert sorted(cache.rglob("*.npy")) == blocks and [b.stat().st_mtime_ns for b in blocks] == written  # read, not rewritten


def test_bad_cache_settings_are_refused_before_any_work():
    from dlrm.config import ConfigError
    from dlrm.validate import validate

    with pytest.raises(ConfigError, match="trainer.stream_cache_max_gb"):
        validate(typed(SMALL + ["trainer.stream_cache_max_gb=0"]), 1, "cpu")
