"""Helpers for the Criteo tests: small Criteo-format files and an independent reference parse.

The reference is deliberately naive (str.split, int(), int(x, 16), math.log1p per field),
so that it shares no code with the vectorised parser it checks.
"""
from __future__ import annotations

import gzip
import math
import os
import random
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

N_DENSE, N_CAT = 13, 26
# Small per-feature sizes, so that the modulo and the frequency threshold both bite.
SIZES = [7, 1000, 2**31 - 1, 50, 3, 11, 97, 4096, 2, 65536, 13, 1 << 20, 999983,
         5, 17, 100, 1, 2**30, 31, 8, 400, 6, 9, 12345, 77, 2**31 - 1]

DENSE_EDGE = ["", "", "0", "1", "-1", "-2", "-123", "9", "10", "65535", "65536", "99999999",
              "100000000", "2147483647", "123456789012", "999999999999999999", "007"]
CAT_EDGE = ["", "", "ffffffff", "FFFFFFFF", "00000000", "0000000f", "80000000", "7fffffff",
            "deadBEEF", "1", "abc", "0abc"]


def make_line(rng: random.Random, uid: int | None = None) -> str:
    """One valid Criteo line; `uid` (if given) goes into cat_25 as 8 hex digits, so rows
    can be traced back to their line."""
    label = rng.choice("01")
    dense = [rng.choice(DENSE_EDGE) if rng.random() < 0.3 else str(int(rng.lognormvariate(1.5, 2)))
             for _ in range(N_DENSE)]
    cats = [rng.choice(CAT_EDGE) if rng.random() < 0.25 else f"{rng.getrandbits(32):08x}"
            for _ in range(N_CAT)]
    for j in (3, 7):  # a few frequent ids, so a frequency threshold keeps some
        if rng.random() < 0.7:
            cats[j] = f"{rng.randrange(5):08x}"
    if uid is not None:
        cats[-1] = f"{uid:08x}"
    return "\t".join([label, *dense, *cats])


def make_lines(n: int, seed: int = 0, uid_start: int | None = None) -> list[str]:
    rng = random.Random(seed)
    return [make_line(rng, None if uid_start is None else uid_start + i) for i in range(n)]


def write_tsv(path: str, lines: list[str], gz: bool = False, trailing_newline: bool = True,
              crlf: bool = False) -> str:
    nl = "\r\n" if crlf else "\n"
    text = nl.join(lines) + (nl if trailing_newline else "")
    opener = gzip.open if gz else open
    with opener(path, "wb") as f:
        f.write(text.encode())
    return path


def reference(lines: list[str], sizes=SIZES):
    """(dense float32 [n,13], sparse int64 [n,26], labels int32 [n]) computed line by line."""
    dense = np.zeros((len(lines), N_DENSE), np.float32)
    sparse = np.zeros((len(lines), N_CAT), np.int64)
    labels = np.zeros(len(lines), np.int32)
    for i, line in enumerate(lines):
        f = line.split("\t")
        assert len(f) == 1 + N_DENSE + N_CAT
        labels[i] = int(f[0])
        for j in range(N_DENSE):
            x = int(f[1 + j]) if f[1 + j] else 0
            dense[i, j] = np.float32(math.log1p(max(x, 0)))
        for j in range(N_CAT):
            h = int(f[1 + N_DENSE + j], 16) if f[1 + N_DENSE + j] else 0
            sparse[i, j] = h % sizes[j]
    return dense, sparse, labels


def reference_threshold(train_sparse: np.ndarray, all_sparse: list[np.ndarray], threshold: int):
    """Map ids seen fewer than `threshold` times in `train_sparse` to 0, per feature."""
    out = []
    counts = [Counter(train_sparse[:, j].tolist()) for j in range(N_CAT)]
    for sp in all_sparse:
        sp = sp.copy()
        for j in range(N_CAT):
            for i in range(len(sp)):
                if counts[j][int(sp[i, j])] < threshold:
                    sp[i, j] = 0
        out.append(sp)
    return out


def load_day(out_dir: str, day: int):
    d = np.load(os.path.join(out_dir, f"day_{day}_dense.npy"))
    s = np.load(os.path.join(out_dir, f"day_{day}_sparse.npy"))
    lab = np.load(os.path.join(out_dir, f"day_{day}_labels.npy"))
    return d, s, lab


def check_day(out_dir, day: int, lines: list[str], sizes=None) -> None:
    """The preprocessed day equals the reference parse of its lines, in TorchRec's layout."""
    d, s, lab = load_day(str(out_dir), day)
    rd, rs, rl = reference(lines, sizes or SIZES)
    assert d.dtype == np.float32 and d.shape == (len(lines), 13)
    assert s.dtype == np.int32 and s.shape == (len(lines), 26)
    assert lab.dtype == np.int32 and lab.shape == (len(lines), 1)  # TorchRec's layout
    np.testing.assert_array_equal(lab[:, 0], rl)
    np.testing.assert_array_equal(s, rs)
    np.testing.assert_allclose(d, rd, rtol=1e-7, atol=0)


def kaggle_split(n: int, days: int = 7) -> list[int]:
    """The 7-way split of the DLRM reference, written out independently."""
    base = n // days
    return [base + (1 if d < n - base * days else 0) for d in range(days)]


@pytest.fixture(scope="session")
def criteo():
    return SimpleNamespace(SIZES=SIZES, make_lines=make_lines, write_tsv=write_tsv, reference=reference,
                           reference_threshold=reference_threshold, load_day=load_day,
                           check_day=check_day, kaggle_split=kaggle_split)
