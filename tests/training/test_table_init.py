"""Embedding tables are initialised the same way for any sharding plan and world size, and a
rank draws only the rows of its own shards (block by block), never a whole table."""
from __future__ import annotations

import torch

from dlrm.sharding import init_slice, table_seed


def _full_draw(seed_of_table: int, rows: int, cols: int) -> torch.Tensor:
    """One generator for the whole table, TorchRec's default law."""
    bound = (1.0 / rows) ** 0.5
    return torch.empty(rows, cols).uniform_(-bound, bound, generator=torch.Generator().manual_seed(seed_of_table))


def test_a_table_within_one_block_is_one_draw_of_the_table_seed():
    ts = table_seed(3, "t_cat_7")
    assert torch.equal(init_slice(ts, 1000, 16, 0, 1000, 0, 16), _full_draw(ts, 1000, 16))


def test_any_split_into_shards_assembles_to_the_same_table():
    ts, rows, cols, block = table_seed(0, "t_cat_0"), 1000, 12, 128
    whole = init_slice(ts, rows, cols, 0, rows, 0, cols, block_rows=block)
    assert torch.equal(whole[:block], _full_draw(ts, rows, cols)[:block])  # block 0: the table seed's draw
    assert not torch.equal(whole[block:2 * block], _full_draw(ts, rows, cols)[block:2 * block])
    # Row-wise (uneven, crossing blocks), column-wise and a grid of both.
    for row_cuts, col_cuts in (([0, 300, 301, 777, rows], [0, cols]), ([0, rows], [0, 4, 8, cols]),
                               ([0, 129, 640, rows], [0, 8, cols])):
        out = torch.empty(rows, cols)
        for r0, r1 in zip(row_cuts, row_cuts[1:]):
            for c0, c1 in zip(col_cuts, col_cuts[1:]):
                out[r0:r1, c0:c1] = init_slice(ts, rows, cols, r0, r1 - r0, c0, c1 - c0, block_rows=block)
        assert torch.equal(out, whole)
    bound = (1.0 / rows) ** 0.5
    assert whole.abs().max() <= bound and whole.std() > 0.5 * bound


def test_a_shard_draws_only_the_blocks_it_touches(monkeypatch):
    """A rank holding rows 600..700 of a 1000-row table in blocks of 128 draws blocks 4 and 5
    (256 rows), not the table."""
    drawn = []
    real_empty = torch.empty

    def empty(*shape, **kw):
        t = real_empty(*shape, **kw)
        drawn.append(tuple(t.shape))
        return t

    monkeypatch.setattr(torch, "empty", empty)
    init_slice(table_seed(0, "t"), 1000, 16, 600, 100, 0, 16, block_rows=128)
    assert drawn == [(100, 16), (128, 16), (128, 16)]  # the shard itself, then two blocks
