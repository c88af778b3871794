"""Counter-based randomness for the planted world.

Every random number of the world is a pure function of (seed, stream, counter):
`splitmix64` finalisers over uint64 arrays.  Nothing is stored and nothing is
sequential, so any rank can generate any slice of the sample stream, and a teacher
parameter of (feature, id) costs a hash rather than a table row.
"""
from __future__ import annotations

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 2.0**-53


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 with full avalanche."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def stream_key(seed: int, stream: int) -> np.uint64:
    """One key per (seed, stream): streams of one seed are independent."""
    with np.errstate(over="ignore"):
        return mix64(np.uint64(seed) * _GOLDEN + mix64(np.uint64(stream) + _GOLDEN))[()]


def uniform(key: np.ndarray | np.uint64, counter: np.ndarray) -> np.ndarray:
    """float64 uniforms in the open interval (0, 1), one per counter (broadcasts with key)."""
    with np.errstate(over="ignore"):
        h = mix64(np.asarray(counter, dtype=np.uint64) * _GOLDEN + key)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_POW_MINUS_53


def uniform_pairs(keys: np.ndarray, counter: np.ndarray) -> np.ndarray:
    """Two float64 uniforms in (0, 1) per (counter, key) from one 64-bit hash: [n, 2 * len(keys)].

    Each half of the hash gives 32 bits -- resolution 2^-32, ample for drawing ids from a
    few million and for normals out to 6 sigma -- at half the hashing cost of `uniform`.
    """
    with np.errstate(over="ignore"):
        h = mix64(np.asarray(counter, dtype=np.uint64)[:, None] * _GOLDEN + np.asarray(keys, dtype=np.uint64)[None, :])
    words = h.view(np.uint32).reshape(h.shape[0], -1)  # [lo0, hi0, lo1, hi1, ...] (little endian)
    return (words.astype(np.float64) + 0.5) * 2.0**-32


def normal(key: np.ndarray | np.uint64, counter: np.ndarray) -> np.ndarray:
    """Standard normals by inverting the CDF of `uniform` (exact, vectorised)."""
    return ndtri(uniform(key, counter))
