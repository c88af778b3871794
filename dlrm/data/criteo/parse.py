"""The byte-level Criteo line parser: one chunk of lines (a `bytes` buffer) -> arrays.

Why not TorchRec's own `BinaryCriteoUtils.tsv_to_npys`: it builds Python lists of a
whole file (hundreds of GB for a 1TB day) and parses each field with `int()`.  Here a
chunk of lines is one `bytes` buffer, and every field of every line is located and
decoded with whole-array NumPy operations (see `parse_chunk`), so memory is bounded by
the chunk and a worker parses ~0.6-0.9M lines per CPU-second
(scripts/bench_criteo_preprocess.py).  Malformed lines are reported, not guessed at
(`BadLine`, `describe_bad_line`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from dlrm.data.criteo.format import CAT_FEATURE_COUNT, FIELD_NAMES, INT_FEATURE_COUNT, NUM_FIELDS, PAD

MAX_DENSE_DIGITS = 18  # int64-safe; Criteo's integer features are far smaller
HEX_DIGITS = 8  # Criteo's categoricals are 32-bit hashes

_DEC = np.full(256, 255, np.uint8)
_DEC[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10, dtype=np.uint8)
_TAB, _NL, _CR, _MINUS = 9, 10, 13, 45

BAD_KINDS = ("field_count", "label", "dense", "categorical")


@dataclass
class BadLine:
    index: int  # line index within the chunk (0-based)
    kind: str  # one of BAD_KINDS
    field: int  # 0-based field index, -1 for a wrong field count
    detail: str


@dataclass
class ParsedChunk:
    dense: np.ndarray  # float32 [m, 13]
    sparse: np.ndarray  # int32/int64 [m, 26]
    labels: np.ndarray  # int32 [m, 1]
    num_lines: int  # lines in the chunk, good and bad
    bad: list[BadLine] = field(default_factory=list)  # sorted by index


def _windows(a: np.ndarray, width: int) -> np.ndarray:
    """Read-only [len(a) - width + 1, width] view: row i is a[i : i + width]."""
    return np.lib.stride_tricks.as_strided(a, (len(a) - width + 1, width), (1, 1), writeable=False)


def _words(buf) -> np.ndarray:
    """Read-only view of every (unaligned) little-endian 8-byte word: w[i] = bytes i..i+7."""
    n = len(buf) - 7
    return np.ndarray(shape=(max(n, 0),), dtype="<u8", buffer=buf, offset=0, strides=(1,))


# SWAR ("SIMD within a register") constants: 8 bytes of a field in one uint64, first
# character in the lowest byte.
_U = np.uint64
_L8 = _U(0x0101010101010101)
_H8 = _U(0x8080808080808080)
_ZEROS = _U(0x3030303030303030)  # "00000000"
_FULL = _U(0xFFFFFFFFFFFFFFFF)
_LO4 = _U(0x0F0F0F0F0F0F0F0F)


def _bytes_ge(x: np.ndarray, c: int) -> np.ndarray:
    """0x80 in each byte of x (all bytes < 0x80) that is >= c (c <= 0x80), else 0."""
    return ((x | _H8) - _L8 * _U(c)) & _H8


_KEEP = np.array([0] + [(0xFFFFFFFFFFFFFFFF << (8 * (8 - k))) & 0xFFFFFFFFFFFFFFFF for k in range(1, 9)],
                 np.uint64)  # by field length: mask of the word's last k bytes
_FILL = _ZEROS & ~_KEEP  # "0" in the bytes before the field


def _keep_last(x: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Keep the last `lens` bytes (the field) of each word; earlier bytes become "0"."""
    k = np.minimum(lens, 8)
    x &= _KEEP[k]
    x |= _FILL[k]
    return x


def _swar_decimal(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, ok) of 8 ASCII decimal digits per word (most significant in the lowest byte)."""
    ok = ((_bytes_ge(x, 0x30) & ~_bytes_ge(x, 0x3A) & ~x) & _H8) == _H8
    x = x - _ZEROS
    x = (x * _U(10) + (x >> _U(8))) & _U(0x00FF00FF00FF00FF)
    x = (x * _U(100) + (x >> _U(16))) & _U(0x0000FFFF0000FFFF)
    x = (x * _U(10000) + (x >> _U(32))) & _U(0x00000000FFFFFFFF)
    return x, ok


def _swar_hex(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(value, ok) of 8 ASCII hex digits per word (most significant in the lowest byte)."""
    low = x | _U(0x2020202020202020)  # "A"-"F" -> "a"-"f"; digits unchanged
    digit = _bytes_ge(x, 0x30) & ~_bytes_ge(x, 0x3A)
    letter = _bytes_ge(low, 0x61) & ~_bytes_ge(low, 0x67)
    ok = ((digit | letter) & ~x & _H8) == _H8
    nib = (x & _LO4) + ((x >> _U(6)) & _L8) * _U(9)  # "a" = 0x61: 1 + 9 = 10
    t = ((nib & _U(0x00FF00FF00FF00FF)) << _U(4)) | ((nib >> _U(8)) & _U(0x00FF00FF00FF00FF))
    t = ((t & _U(0x0000FFFF0000FFFF)) << _U(8)) | ((t >> _U(16)) & _U(0x0000FFFF0000FFFF))
    return ((t & _U(0xFFFFFFFF)) << _U(16)) | (t >> _U(32)), ok


def _field_text(a: np.ndarray, start: int, end: int) -> str:
    raw = bytes(a[start:end])
    text = raw.decode("utf-8", "replace")
    return repr(text if len(text) <= 40 else text[:40] + "...")


_LOG1P_TABLE = np.log1p(np.arange(1 << 16, dtype=np.float64)).astype(np.float32)


def _log1p_f32(value: np.ndarray) -> np.ndarray:
    """float32(log1p(value)) for int values >= 0: a table for small values, exact as np.log1p."""
    out = _LOG1P_TABLE[np.minimum(value, (1 << 16) - 1)]
    big = np.flatnonzero(value >= (1 << 16))
    if len(big):
        out[big] = np.log1p(value[big].astype(np.float64)).astype(np.float32)
    return out


def parse_chunk(buf: "bytes | bytearray | memoryview", sizes: np.ndarray, sparse_dtype=np.int32,
                pad: int = PAD) -> ParsedChunk:
    """Parse complete Criteo lines in `buf[pad:]` (which must end with b"\\n").

    Every field of every line is located and decoded with whole-array operations: the
    positions of all tabs and newlines give each field's end and length; the 8 bytes
    ending at each field's end are loaded as one uint64 (an unaligned strided view) and
    decoded 8 digits at a time with SWAR bit tricks (bytes before the field's start
    masked to "0"), hex for categoricals and decimal for integer features (the rare
    longer integers take a per-digit path).  `buf[:pad]` must be filler without tabs or
    newlines, so that an 8-byte window never starts before the buffer.
    """
    a = np.frombuffer(buf, np.uint8)
    seps = np.flatnonzero(a <= _NL)
    chars = a[seps]
    if len(chars) and chars.min() < _TAB:  # control bytes are field content, not separators
        keep = chars >= _TAB
        seps, chars = seps[keep], chars[keep]
    is_nl = chars == _NL
    del chars
    n = int(np.count_nonzero(is_nl))
    if n == 0:
        return ParsedChunk(dense=np.zeros((0, INT_FEATURE_COUNT), np.float32),
                           sparse=np.zeros((0, CAT_FEATURE_COUNT), sparse_dtype),
                           labels=np.zeros((0, 1), np.int32), num_lines=0)
    bad: list[BadLine] = []
    good_lines: Optional[np.ndarray] = None  # chunk line index of each parsed row, None = all
    if len(seps) == NUM_FIELDS * n and is_nl[NUM_FIELDS - 1 :: NUM_FIELDS].all():
        ends = seps.reshape(n, NUM_FIELDS)
        starts = np.empty_like(ends)
        starts.reshape(-1)[1:] = seps[:-1] + 1
        starts[0, 0] = pad
    else:  # slow path: some line has a wrong number of fields
        nl = seps[is_nl]
        line_of_sep = np.cumsum(is_nl) - is_nl  # a newline belongs to the line it ends
        nfields = np.bincount(line_of_sep, minlength=n)
        ok = nfields == NUM_FIELDS
        all_starts = np.concatenate([[pad], nl[:-1] + 1])
        for i in np.flatnonzero(~ok):
            cr = bool((a[all_starts[i] : nl[i] - 1] == _CR).any())  # a "\r" before "\r\n" or "\n"
            bad.append(BadLine(int(i), "field_count", -1,
                               f"{int(nfields[i])} tab-separated fields, expected {NUM_FIELDS} "
                               f"(label, {INT_FEATURE_COUNT} integer, {CAT_FEATURE_COUNT} categorical)"
                               + ("; the line holds a \\r: CR-only (\\r) line ends? Criteo lines end in \\n"
                                  if cr else "")))
        good_lines = np.flatnonzero(ok)
        line_start = all_starts[good_lines]
        seps = seps[ok[line_of_sep]]
        ends = seps.reshape(len(good_lines), NUM_FIELDS)
        starts = np.empty_like(ends)
        starts.reshape(-1)[1:] = seps[:-1] + 1
        starts[:, 0] = line_start
        del nl, line_of_sep, line_start, all_starts
    del seps, is_nl
    m = len(ends)
    # Tolerate Windows line ends: a "\r" before the "\n" is not part of the last field.
    cr = (ends[:, -1] > starts[:, -1]) & (a[ends[:, -1] - 1] == _CR)
    if cr.any():
        ends[:, -1] -= cr
    del cr
    lens = ends - starts
    words = _words(buf)
    field_bad: list[tuple[np.ndarray, str, int]] = []  # (bad mask [m, k], kind, first field)

    # Label: exactly "0" or "1".
    lab_char = a[starts[:, 0]]
    labels = (lab_char - ord("0")).astype(np.int32)
    lab_bad = (lens[:, 0] != 1) | ((lab_char != ord("0")) & (lab_char != ord("1")))
    if lab_bad.any():
        field_bad.append((lab_bad[:, None], "label", 0))

    # Integer features: optional "-", then decimal digits; empty -> 0; log(1 + max(x, 0)).
    d_ends = ends[:, 1 : 1 + INT_FEATURE_COUNT].reshape(-1)
    d_lens = lens[:, 1 : 1 + INT_FEATURE_COUNT].reshape(-1)
    neg = (d_lens > 0) & (a[d_ends - d_lens] == _MINUS)
    ndig = d_lens - neg
    value, d_ok = _swar_decimal(_keep_last(words[d_ends - 8], ndig))
    d_bad = ~d_ok | (neg & (ndig == 0))
    long = np.flatnonzero(ndig > 8)
    if len(long):  # more than 8 digits: digit by digit
        le, ln = d_ends[long], ndig[long]
        width = min(int(ln.max()), MAX_DENSE_DIGITS)
        digits = _DEC[_windows(a, width)[le - width]]
        v = np.zeros(len(long), np.uint64)
        lb = ln > MAX_DENSE_DIGITS
        for k in range(width):
            dk = digits[:, k]
            active = k >= width - ln
            lb |= active & (dk == 255)
            v = v * _U(10) + np.where(active, dk, 0).astype(np.uint64)
        value[long] = v
        d_bad[long] = lb
    value[neg] = 0
    dense = _log1p_f32(value).reshape(m, INT_FEATURE_COUNT)
    del value, neg, ndig, d_ok
    if d_bad.any():
        field_bad.append((d_bad.reshape(m, INT_FEATURE_COUNT), "dense", 1))

    # Categorical: up to 8 hex digits; empty -> 0; then modulo the per-feature size.
    c_ends = ends[:, 1 + INT_FEATURE_COUNT :].reshape(-1)
    c_lens = lens[:, 1 + INT_FEATURE_COUNT :].reshape(-1)
    c_empty = c_lens == 0
    if np.all(c_empty | (c_lens == HEX_DIGITS)):  # Criteo's own format: no masking needed
        hexval, c_ok = _swar_hex(words[c_ends - 8])
        c_bad = ~(c_ok | c_empty)
        hexval[c_empty] = 0
    else:
        hexval, c_ok = _swar_hex(_keep_last(words[c_ends - 8], c_lens))
        c_bad = ~c_ok | (c_lens > HEX_DIGITS)
    del c_ok, c_empty
    hexval = hexval.reshape(m, CAT_FEATURE_COUNT)
    if int(np.max(sizes)) < 1 << 32:
        sparse = (hexval.astype(np.uint32) % np.asarray(sizes, np.uint32)).astype(sparse_dtype)
    else:
        sparse = (hexval % np.asarray(sizes, np.uint64)).astype(sparse_dtype)
    del hexval
    if c_bad.any():
        field_bad.append((c_bad.reshape(m, CAT_FEATURE_COUNT), "categorical", 1 + INT_FEATURE_COUNT))

    if field_bad:
        row_bad = np.zeros(m, bool)
        reasons = {
            "label": "label is not 0 or 1",
            "dense": f"not an integer (optional '-', at most {MAX_DENSE_DIGITS} digits)",
            "categorical": f"not a hex id of at most {HEX_DIGITS} hex digits",
        }
        first: dict[int, BadLine] = {}
        for mask2d, kind, f0 in field_bad:
            for r in np.flatnonzero(mask2d.any(axis=1)):
                row_bad[r] = True
                f = f0 + int(np.argmax(mask2d[r]))
                idx = int(good_lines[r]) if good_lines is not None else int(r)
                if idx not in first or f < first[idx].field:  # report a line's first bad field
                    text = _field_text(a, int(starts[r, f]), int(ends[r, f]))
                    first[idx] = BadLine(idx, kind, f, f"{text}: {reasons[kind]}")
        bad.extend(first.values())
        keep = ~row_bad
        dense, sparse, labels = dense[keep], sparse[keep], labels[keep]
    bad.sort(key=lambda b: b.index)
    return ParsedChunk(dense=dense, sparse=sparse, labels=labels.reshape(-1, 1), num_lines=n, bad=bad)


def describe_bad_line(path: str, lineno: int, b: BadLine) -> str:
    if b.field < 0:
        return f"{path}:{lineno}: malformed line: {b.detail}"
    return (f"{path}:{lineno}: malformed line: field {b.field + 1} of {NUM_FIELDS} "
            f"({FIELD_NAMES[b.field]}) = {b.detail}")
