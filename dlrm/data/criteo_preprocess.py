"""Criteo TSV -> per-day NumPy arrays, streamed in chunks with bounded memory.

    python -m dlrm.data.criteo preprocess --raw RAW_DIR --out OUT_DIR --dataset kaggle|1tb

Input: Criteo's TSV, one sample a line: label, 13 integer features, 26 categorical
features as (up to) 8 hex digits; any feature may be empty.  Kaggle's `train.txt`
(~45.8M lines, 7 days in time order) or the 1TB logs `day_0` ... `day_23` (plain or
gzip; gzip is detected by its magic bytes, so `day_0.gz` and `day_0` both work).

Output, per day `d`, in the layout TorchRec's `InMemoryBinaryCriteoIterDataPipe` reads
(`torchrec/datasets/criteo.py`):

    day_{d}_dense.npy   float32 [n, 13]  log(1 + max(x, 0)); empty -> 0
    day_{d}_sparse.npy  int32   [n, 26]  int(hex, 16) % num_embeddings[f]; empty -> 0
    day_{d}_labels.npy  int32   [n, 1]   0 / 1
    day_{d}.done        JSON completion marker (rows, source lines, bad lines)
    metadata.json       written last: days, rows per day, split, sizes, threshold

Why not TorchRec's own `BinaryCriteoUtils.tsv_to_npys`: it builds Python lists of a
whole file (hundreds of GB for a 1TB day) and parses each field with `int()`.  Here a
chunk of lines is one `bytes` buffer, and every field of every line is located and
decoded with whole-array NumPy operations (see `parse_chunk`), so memory is bounded by
`--chunk-lines` and a worker parses ~0.6-0.9M lines per CPU-second (scripts/bench_criteo_preprocess.py).

Conventions (see docs/CRITEO.md):
- Empty categorical -> hex 0 -> id 0 (TorchRec's convention: `int(row[i] or "0", 16)`).
- Frequency threshold T: ids seen fewer than T times in the *training* days (after the
  modulo) map to bucket 0, shared with the empty value; ids of the eval day that never
  occur in training map there too.
- Kaggle: `train.txt` is split into 7 equal "days" in file order (the DLRM reference's
  convention; the first `total % 7` days get one extra line); days 0-5 train, day 6 is
  held out.  1TB: days 0-22 train, day 23 held out.  The eval set is the first half
  (ceil(n/2) rows) of the held-out day -- TorchRec's "val" stage; the second half is its
  "test" stage and is never read by training.
"""
from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import queue as queue_mod
import struct
import sys
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import numpy as np

# Same values as torchrec.datasets.criteo (checked by tests/criteo); not imported, because
# importing torchrec costs ~4 s and ~350 MB per worker process.
INT_FEATURE_COUNT = 13
CAT_FEATURE_COUNT = 26
NUM_FIELDS = 1 + INT_FEATURE_COUNT + CAT_FEATURE_COUNT
DEFAULT_INT_NAMES = [f"int_{i}" for i in range(INT_FEATURE_COUNT)]
DEFAULT_CAT_NAMES = [f"cat_{i}" for i in range(CAT_FEATURE_COUNT)]
FIELD_NAMES = ["label", *DEFAULT_INT_NAMES, *DEFAULT_CAT_NAMES]

FORMAT_VERSION = 1
KAGGLE_DAYS = 7
TB_DAYS = 24

# Per-feature table sizes used as the modulo.  Kaggle: the per-feature cardinalities of
# train.txt (TorchRec's DLRM example / the DLRM reference).  1TB: the MLPerf DLRM-v2
# sizes, i.e. the cardinalities capped at 40M (`--max-ind-range 40000000`).  Applied to
# the raw 32-bit hex ids they are a hash, as with TorchRec's `hashes=` option.
DEFAULT_NUM_EMBEDDINGS = {
    "kaggle": [
        1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593,
        3194, 27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105,
        142572,
    ],
    "1tb": [
        40000000, 39060, 17295, 7424, 20265, 3, 7122, 1543, 63, 40000000, 3067956,
        405282, 10, 2209, 11938, 155, 4, 976, 14, 40000000, 40000000, 40000000, 590152,
        12973, 108, 36,
    ],
}
DOWNLOAD_URLS = {
    "kaggle": "https://ailab.criteo.com/ressources/ (Kaggle Display Advertising "
    "Challenge dataset, dac.tar.gz -> train.txt; also "
    "https://www.kaggle.com/c/criteo-display-ad-challenge/data)",
    "1tb": "https://ailab.criteo.com/download-criteo-1tb-click-logs-dataset/ (day_0.gz "
    "... day_23.gz; mirrored at https://huggingface.co/datasets/criteo/CriteoClickLogs)",
}

MAX_DENSE_DIGITS = 18  # int64-safe; Criteo's integer features are far smaller
HEX_DIGITS = 8  # Criteo's categoricals are 32-bit hashes
PAD = 32  # bytes before each chunk, so that fixed-width windows never start before 0
NPY_HEADER_LEN = 128  # fixed, so the shape can be written after streaming the rows
FREQ_COUNTS_FILE = "freq_counts.npy"
ARGS_FILE = "preprocess_args.json"
METADATA_FILE = "metadata.json"
KAGGLE_SPLIT_FILE = "kaggle_split.json"
MAX_FREQ_TABLE_BYTES = 1 << 30  # frequency threshold: sum(sizes) one-byte counters
CHECKPOINT_LINES = 1 << 16  # Kaggle line-count pass: byte offset of every 65536th line


class CriteoPreprocessError(Exception):
    """A usage or input problem that stops preprocessing (message is user-facing)."""


class MalformedLineError(CriteoPreprocessError, ValueError):
    """A malformed input line; names the file, the 1-based line number and the field."""

    def __init__(self, message: str, path: str = "", line: int = 0, field: str = ""):
        super().__init__(message)
        self.path, self.line, self.field = path, line, field

    def __reduce__(self):  # keep the attributes across the worker -> parent pickle
        return (type(self), (str(self), self.path, self.line, self.field))


# ---------------------------------------------------------------- vectorised parsing

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
        for i in np.flatnonzero(~ok):
            bad.append(BadLine(int(i), "field_count", -1,
                               f"{int(nfields[i])} tab-separated fields, expected {NUM_FIELDS} "
                               f"(label, {INT_FEATURE_COUNT} integer, {CAT_FEATURE_COUNT} categorical)"))
        good_lines = np.flatnonzero(ok)
        line_start = np.concatenate([[pad], nl[:-1] + 1])[good_lines]
        seps = seps[ok[line_of_sep]]
        ends = seps.reshape(len(good_lines), NUM_FIELDS)
        starts = np.empty_like(ends)
        starts.reshape(-1)[1:] = seps[:-1] + 1
        starts[:, 0] = line_start
        del nl, line_of_sep, line_start
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


# ---------------------------------------------------------------- reading in chunks

def open_raw(path: str):
    """Open a Criteo TSV for binary reading; gzip is detected by its magic bytes."""
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=1 << 20)


def iter_line_chunks(path: str, chunk_lines: int, byte_offset: int = 0, skip_lines: int = 0,
                     max_lines: Optional[int] = None) -> Iterator[tuple[memoryview, int]]:
    """Yield (buffer, num_lines): `PAD` filler bytes, then up to `chunk_lines` complete lines.

    Starts at `byte_offset` (which must be a line start), skips `skip_lines` lines, then
    yields at most `max_lines` lines.  A last line without "\\n" gets one.  The file is
    read straight into one reused buffer (no per-chunk copies); a yielded buffer is only
    valid until the next one is asked for.  Memory: about one chunk.
    """
    est = 256.0  # bytes per line, refined as we go
    left = max_lines
    to_skip = skip_lines
    buf = bytearray(PAD + int(min(chunk_lines, 1 << 20) * est * 1.5) + (1 << 16))
    buf[:PAD] = b" " * PAD
    fill = PAD  # buf[PAD:fill] holds data not yet yielded
    eof = False
    with open_raw(path) as f:
        if byte_offset:
            f.seek(byte_offset)
        while left is None or left > 0 or to_skip > 0:
            want = min(to_skip if to_skip > 0 else (chunk_lines if left is None else left), chunk_lines)
            need = int(want * est * 1.05) - (fill - PAD)
            if not eof and (need > 0 or buf.find(b"\n", PAD, fill) < 0):
                need = max(need, 1 << 16)
                if fill + need + 1 > len(buf):  # grow (rare: lines longer than estimated)
                    grown = bytearray(fill + need + 1 + len(buf) // 2)
                    grown[:fill] = memoryview(buf)[:fill]
                    buf = grown
                with memoryview(buf) as mv:
                    got = f.readinto(mv[fill : fill + need])
                if got:
                    fill += got
                else:
                    eof = True
            if eof:
                if fill == PAD:
                    break
                if buf[fill - 1] != _NL:
                    buf[fill] = _NL
                    fill += 1
            cnt = buf.count(b"\n", PAD, fill)
            if cnt == 0:
                continue  # a line longer than what was read so far
            if cnt > want:
                nl = np.flatnonzero(np.frombuffer(buf, np.uint8, count=fill - PAD, offset=PAD) == _NL)
                cut = PAD + int(nl[want - 1]) + 1
                del nl
                cnt = want
            else:
                cut = buf.rfind(b"\n", PAD, fill) + 1
            est = 0.7 * est + 0.3 * ((cut - PAD) / cnt)
            if to_skip > 0:
                to_skip -= cnt
            else:
                if left is not None:
                    left -= cnt
                yield memoryview(buf)[:cut], cnt
            tail = fill - cut
            buf[PAD : PAD + tail] = buf[cut:fill]
            fill = PAD + tail
    if to_skip > 0:
        raise CriteoPreprocessError(f"{path}: ended {to_skip} lines before the expected position")


# ---------------------------------------------------------------- streaming .npy output

class NpyStreamWriter:
    """Append rows to an .npy file of not-yet-known length (fixed 128-byte v1.0 header)."""

    def __init__(self, path: str, dtype, ncols: int):
        self.path, self.dtype, self.ncols, self.rows = path, np.dtype(dtype), ncols, 0
        self.f = open(path, "wb")
        self.f.write(b"\0" * NPY_HEADER_LEN)

    def append(self, arr: np.ndarray) -> None:
        assert arr.dtype == self.dtype and arr.ndim == 2 and arr.shape[1] == self.ncols, (arr.dtype, arr.shape)
        self.f.write(np.ascontiguousarray(arr).data)
        self.rows += len(arr)

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(npy_header(self.dtype, (self.rows, self.ncols)))
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()

    def abort(self) -> None:
        """Close and delete the partial file (a killed process leaves it; the next run deletes it)."""
        self.f.close()
        try:
            os.remove(self.path)
        except OSError:
            pass


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    d = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (np.dtype(dtype).str, tuple(shape))
    body_len = NPY_HEADER_LEN - 10
    assert len(d) + 1 <= body_len
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", body_len) + (d.ljust(body_len - 1) + "\n").encode("latin1")


def tmp_name(path: str) -> str:
    """A temp name beside `path`, unique per process (a stray worker of a killed run can
    never write into the temp file of the run that resumes it)."""
    return f"{path}.tmp.{os.getpid()}"


def _write_json_atomic(path: str, obj: Any) -> None:
    tmp = tmp_name(path)
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def day_files(out_dir: str, day: int) -> dict[str, str]:
    return {part: os.path.join(out_dir, f"day_{day}_{part}.npy") for part in ("dense", "sparse", "labels")}


def marker_path(out_dir: str, day: int) -> str:
    return os.path.join(out_dir, f"day_{day}.done")


def npy_rows(path: str) -> int:
    with open(path, "rb") as f:
        np.lib.format.read_magic(f)
        shape, _, _ = np.lib.format.read_array_header_1_0(f)
    return int(shape[0])


def read_marker(out_dir: str, day: int) -> Optional[dict]:
    """The day's completion marker if the day is finished and consistent, else None."""
    try:
        with open(marker_path(out_dir, day)) as f:
            marker = json.load(f)
        files = day_files(out_dir, day)
        if all(npy_rows(p) == marker["rows"] for p in files.values()):
            return marker
    except (OSError, ValueError, KeyError):
        pass
    return None


# ---------------------------------------------------------------- one day = one task

@dataclass
class DayTask:
    day: int
    path: str  # raw TSV (plain or gzip)
    byte_offset: int = 0
    skip_lines: int = 0
    max_lines: Optional[int] = None  # None: to end of file
    first_lineno: int = 1  # 1-based line number in `path` of the task's first line


_progress_queue = None


def tune_malloc() -> None:
    """Keep freed chunk temporaries in the heap instead of returning them to the OS.

    Parsing allocates the same few-MB temporaries for every chunk; glibc would mmap and
    unmap them each time, and the page faults cost up to half the parse time.  Memory
    stays bounded (the heap keeps about one chunk's worth).  A no-op off glibc.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-4, 0)  # M_MMAP_MAX: no mmap for large blocks
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD: keep up to 256 MB of free heap
    except (OSError, AttributeError):
        pass


def _init_worker(q) -> None:
    global _progress_queue
    _progress_queue = q
    try:  # Linux: a worker dies with the main process (e.g. when that is killed)
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _report(n: int) -> None:
    if _progress_queue is not None:
        _progress_queue.put(n)


def process_day(task: DayTask, out_dir: str, sizes: Sequence[int], chunk_lines: int,
                skip_bad_lines: bool, sparse_dtype: str) -> dict:
    """Parse one day's lines into its three .npy files (temp names, then rename, then marker)."""
    t0 = time.time()
    tune_malloc()
    sizes_arr = np.asarray(sizes, np.int64)
    files = day_files(out_dir, task.day)
    writers = {
        "dense": NpyStreamWriter(tmp_name(files["dense"]), np.float32, INT_FEATURE_COUNT),
        "sparse": NpyStreamWriter(tmp_name(files["sparse"]), np.dtype(sparse_dtype), CAT_FEATURE_COUNT),
        "labels": NpyStreamWriter(tmp_name(files["labels"]), np.int32, 1),
    }
    bad_counts = {k: 0 for k in BAD_KINDS}
    bad_examples: list[str] = []
    lineno = task.first_lineno
    lines = 0
    try:
        for buf, cnt in iter_line_chunks(task.path, chunk_lines, task.byte_offset, task.skip_lines,
                                         task.max_lines):
            chunk = parse_chunk(buf, sizes_arr, np.dtype(sparse_dtype))
            del buf
            for b in chunk.bad:
                msg = describe_bad_line(task.path, lineno + b.index, b)
                if not skip_bad_lines:
                    raise MalformedLineError(
                        msg + "\n(pass --skip-bad-lines to skip and count malformed lines instead)",
                        task.path, lineno + b.index, "field_count" if b.field < 0 else FIELD_NAMES[b.field])
                bad_counts[b.kind] += 1
                if len(bad_examples) < 5:
                    bad_examples.append(msg)
            writers["dense"].append(chunk.dense)
            writers["sparse"].append(chunk.sparse)
            writers["labels"].append(chunk.labels)
            lineno += cnt
            lines += cnt
            _report(cnt)
        if task.max_lines is not None and lines != task.max_lines:
            raise CriteoPreprocessError(
                f"{task.path}: expected {task.max_lines} lines for day {task.day}, read {lines} "
                "(did the file change since the line count? delete "
                f"{KAGGLE_SPLIT_FILE} in the output directory to recount)")
        for w in writers.values():
            w.close()
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    for part, w in writers.items():
        os.replace(w.path, files[part])
    rows = writers["labels"].rows
    marker = {
        "day": task.day, "rows": rows, "source": os.path.abspath(task.path),
        "source_first_line": task.first_lineno, "source_lines": lines,
        "bad_lines": bad_counts, "bad_line_examples": bad_examples,
        "sparse_dtype": sparse_dtype, "frequency_threshold_applied": 0,
        "seconds": round(time.time() - t0, 3),
    }
    _fsync_dir(out_dir)
    _write_json_atomic(marker_path(out_dir, task.day), marker)
    return marker


# ---------------------------------------------------------------- progress

class Progress:
    """tqdm bar with lines/s on a terminal; plain log lines every `every` seconds otherwise."""

    def __init__(self, desc: str, total: Optional[int], unit: str = "lines", every: float = 10.0,
                 stream=None):
        self.stream = stream or sys.stderr
        self.desc, self.total, self.unit, self.every = desc, total, unit, every
        self.n, self.t0, self.last = 0, time.time(), time.time()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=True, file=self.stream,
                            dynamic_ncols=True, smoothing=0.1)

    def update(self, k: int) -> None:
        self.n += k
        if self.bar is not None:
            self.bar.update(k)
        elif time.time() - self.last >= self.every:
            self.last = time.time()
            self._log()

    def _log(self) -> None:
        dt = max(time.time() - self.t0, 1e-9)
        tot = f"/{self.total:,}" if self.total else ""
        print(f"[criteo] {self.desc}: {self.n:,}{tot} {self.unit} ({self.n / dt:,.0f} {self.unit}/s)",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            self._log()


def log(msg: str) -> None:
    print(f"[criteo] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- raw inputs and the split

def find_raw_file(raw_dir: str, stem: str) -> Optional[str]:
    for name in (stem, stem + ".gz", stem + ".tsv", stem + ".tsv.gz"):
        p = os.path.join(raw_dir, name)
        if os.path.isfile(p):
            return p
    return None


def count_lines_with_checkpoints(path: str, every: Optional[int] = None,
                                 block: int = 16 << 20) -> tuple[int, list[tuple[int, int]]]:
    """Total lines and (line index, byte offset) of every `every`-th line start (line 0 first)."""
    every = every or CHECKPOINT_LINES
    checkpoints = [(0, 0)]
    lines, offset = 0, 0
    last_byte = b"\n"
    prog = Progress(f"counting lines of {os.path.basename(path)}", None)
    with open_raw(path) as f:
        while True:
            data = f.read(block)
            if not data:
                break
            cnt = data.count(b"\n")
            # the next checkpoint lies in this block if lines + cnt >= next multiple
            nxt = (lines // every + 1) * every
            if lines + cnt >= nxt:
                nl = np.flatnonzero(np.frombuffer(data, np.uint8) == _NL)
                # line L starts right after newline number L (1-based) overall
                k = np.arange(nxt, lines + cnt + 1, every)
                for L, pos in zip(k, nl[k - lines - 1]):
                    checkpoints.append((int(L), offset + int(pos) + 1))
            lines += cnt
            offset += len(data)
            last_byte = data[-1:]
            prog.update(cnt)
    prog.close()
    if last_byte != b"\n":
        lines += 1  # last line without a newline
    checkpoints = [c for c in checkpoints if c[0] < lines]
    return lines, checkpoints


def kaggle_tasks(raw_path: str, out_dir: str) -> list[DayTask]:
    """Split train.txt into 7 "days" of (nearly) equal line counts, in file order."""
    st = os.stat(raw_path)
    cache_path = os.path.join(out_dir, KAGGLE_SPLIT_FILE)
    key = {"source": os.path.abspath(raw_path), "size": st.st_size, "mtime": st.st_mtime}
    cached = None
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            cached = json.load(f)
        if cached.get("key") != key:
            cached = None
    if cached is None:
        total, checkpoints = count_lines_with_checkpoints(raw_path)
        per, extra = divmod(total, KAGGLE_DAYS)
        counts = [per + (1 if d < extra else 0) for d in range(KAGGLE_DAYS)]
        starts = np.cumsum([0] + counts[:-1]).tolist()
        cp_lines = np.array([c[0] for c in checkpoints])
        days = []
        for d in range(KAGGLE_DAYS):
            i = int(np.searchsorted(cp_lines, starts[d], side="right") - 1)
            cp_line, cp_off = checkpoints[i]
            days.append({"day": d, "start_line": int(starts[d]), "lines": int(counts[d]),
                         "byte_offset": int(cp_off), "skip_lines": int(starts[d] - cp_line)})
        cached = {"key": key, "total_lines": int(total), "days": days}
        _write_json_atomic(cache_path, cached)
    if cached["total_lines"] < 2 * KAGGLE_DAYS:
        raise CriteoPreprocessError(f"{raw_path}: only {cached['total_lines']} lines; need at least "
                                    f"{2 * KAGGLE_DAYS} to split into {KAGGLE_DAYS} days")
    return [DayTask(day=d["day"], path=raw_path, byte_offset=d["byte_offset"], skip_lines=d["skip_lines"],
                    max_lines=d["lines"], first_lineno=d["start_line"] + 1) for d in cached["days"]]


# ---------------------------------------------------------------- frequency threshold

def feature_offsets(sizes: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.asarray(sizes, np.int64))])


def count_day(out_dir: str, day: int, sizes: Sequence[int], threshold: int, chunk_rows: int) -> int:
    """Write day_{day}_counts.npy: uint8 [sum(sizes)], per (feature, id) min(count, T).

    Memory: sum(sizes) bytes (~204 MB for the 1TB default sizes, ~45 MB for Kaggle) plus
    a chunk of rows and its sort; the sparse file is read through mmap.
    """
    tune_malloc()
    offs = feature_offsets(sizes)
    counts = np.zeros(int(offs[-1]), np.uint8)
    sp = np.load(day_files(out_dir, day)["sparse"], mmap_mode="r")
    for s in range(0, len(sp), chunk_rows):
        block = np.array(sp[s : s + chunk_rows])
        for f in range(CAT_FEATURE_COUNT):
            ids = block[:, f]
            size = int(sizes[f])
            view = counts[offs[f] : offs[f + 1]]
            if size <= 4 * len(ids):
                c = np.bincount(ids, minlength=size)
                view[:] = np.minimum(view + np.minimum(c, threshold), threshold)
            else:
                u, c = np.unique(ids, return_counts=True)
                view[u] = np.minimum(view[u] + np.minimum(c, threshold), threshold)
        _report(len(block))
    del sp
    path = os.path.join(out_dir, f"day_{day}_counts.npy")
    with open(tmp_name(path), "wb") as fh:
        np.save(fh, counts)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp_name(path), path)
    return day


def apply_threshold_day(out_dir: str, day: int, sizes: Sequence[int], threshold: int, chunk_rows: int) -> int:
    """Rewrite day_{day}_sparse.npy with ids seen < T times in training -> 0. Idempotent."""
    counts = np.load(os.path.join(out_dir, FREQ_COUNTS_FILE), mmap_mode="r")
    offs = feature_offsets(sizes)[:-1]
    files = day_files(out_dir, day)
    sp = np.load(files["sparse"], mmap_mode="r")
    w = NpyStreamWriter(tmp_name(files["sparse"]), sp.dtype, CAT_FEATURE_COUNT)
    try:
        for s in range(0, len(sp), chunk_rows):
            block = np.array(sp[s : s + chunk_rows])
            rare = counts[(block.astype(np.int64) + offs)] < threshold
            block[rare] = 0
            w.append(block)
            _report(len(block))
        w.close()
    except BaseException:
        w.abort()
        raise
    del sp
    os.replace(w.path, files["sparse"])
    marker = read_marker(out_dir, day)
    assert marker is not None
    marker["frequency_threshold_applied"] = threshold
    _write_json_atomic(marker_path(out_dir, day), marker)
    return day


# ---------------------------------------------------------------- the driver

def _run_tasks(fn, arg_tuples: list[tuple], workers: int, desc: str, total: Optional[int],
               unit: str = "lines") -> list:
    """Run fn(*args) for each tuple, over worker processes when workers > 1.

    Workers report progress through a queue.  The first failure stops the run: the other
    workers are killed (their temp files are deleted by the next run), and the error is
    raised here.  A worker killed by the OS is reported as an error too, never waited
    for forever (that is why this uses ProcessPoolExecutor, not multiprocessing.Pool).
    """
    global _progress_queue
    prog = Progress(desc, total, unit=unit)
    if workers <= 1 or len(arg_tuples) <= 1:
        class _Q:
            def put(self, k):
                prog.update(k)
        saved, _progress_queue = _progress_queue, _Q()
        try:
            return [fn(*a) for a in arg_tuples]
        finally:
            _progress_queue = saved
            prog.close()

    def drain() -> None:
        while True:
            try:
                prog.update(q.get_nowait())
            except queue_mod.Empty:
                return

    q = mp.Queue()
    ex = ProcessPoolExecutor(min(workers, len(arg_tuples)), initializer=_init_worker, initargs=(q,))
    ok = False
    try:
        futures = [ex.submit(fn, *a) for a in arg_tuples]
        while True:
            drain()
            finished, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
            for f in finished:
                err = f.exception()
                if isinstance(err, BrokenProcessPool):
                    raise CriteoPreprocessError(
                        "a worker process died (killed by the OS: out of memory?); finished days are kept, "
                        "rerun the same command to resume (with fewer --workers or --chunk-lines)") from err
                if err is not None:
                    raise err
            if not pending:
                break
        drain()
        ok = True
        return [f.result() for f in futures]
    finally:
        if not ok:  # stop the other workers now, mid-day: their output has temp names only
            for proc in list(getattr(ex, "_processes", {}).values()):
                proc.kill()
        ex.shutdown(wait=True, cancel_futures=True)
        prog.close()


def _apply_frequency_threshold(out_dir: str, day_list: list[int], train_days: list[int], done: dict,
                               sizes: list[int], threshold: int, chunk_lines: int, workers: int) -> None:
    """Count ids over the training days (one task per day), merge, then remap every day."""
    counts_path = os.path.join(out_dir, FREQ_COUNTS_FILE)
    count_rows = 1 << 20
    if not os.path.exists(counts_path):
        day_counts = lambda d: os.path.join(out_dir, f"day_{d}_counts.npy")  # noqa: E731
        todo = [d for d in train_days if not os.path.exists(day_counts(d))]
        if todo:
            # each counting worker holds sum(sizes) bytes plus a chunk; keep them under ~3 GiB
            per_worker = sum(sizes) + count_rows * CAT_FEATURE_COUNT * 16
            n = max(1, min(workers, (3 << 30) // per_worker))
            _run_tasks(count_day, [(out_dir, d, sizes, threshold, count_rows) for d in todo], n,
                       f"counting ids for frequency threshold {threshold}",
                       sum(done[d]["rows"] for d in todo), unit="rows")
        counts = np.zeros(sum(sizes), np.uint8)
        for d in train_days:
            c = np.load(day_counts(d), mmap_mode="r")
            np.minimum(counts.astype(np.uint16) + c, threshold, out=counts, casting="unsafe")
            del c
        with open(tmp_name(counts_path), "wb") as fh:
            np.save(fh, counts)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name(counts_path), counts_path)
        del counts
        for d in train_days:
            os.remove(day_counts(d))
    pending = [d for d in day_list if done[d].get("frequency_threshold_applied") != threshold]
    if pending:
        _run_tasks(apply_threshold_day, [(out_dir, d, sizes, threshold, max(chunk_lines, 1 << 16))
                                         for d in pending], workers,
                   f"mapping ids seen < {threshold} times to 0", sum(done[d]["rows"] for d in pending),
                   unit="rows")
        for d in pending:
            done[d] = read_marker(out_dir, d)


def resolve_sizes(dataset: str, num_embeddings_per_feature: Optional[Sequence[int]],
                  max_ind_range: Optional[int]) -> list[int]:
    sizes = list(num_embeddings_per_feature) if num_embeddings_per_feature else list(DEFAULT_NUM_EMBEDDINGS[dataset])
    if len(sizes) != CAT_FEATURE_COUNT:
        raise CriteoPreprocessError(f"--num-embeddings-per-feature needs {CAT_FEATURE_COUNT} sizes, got {len(sizes)}")
    if max_ind_range:
        sizes = [min(int(s), int(max_ind_range)) for s in sizes]
    if any(int(s) < 1 or int(s) > 1 << 32 for s in sizes):
        raise CriteoPreprocessError(f"table sizes must lie in [1, 2**32], got {sizes}")
    return [int(s) for s in sizes]


def preprocess(raw_dir: str, out_dir: str, dataset: str, *, chunk_lines: int = 1 << 14,
               workers: Optional[int] = None, skip_bad_lines: bool = False,
               num_embeddings_per_feature: Optional[Sequence[int]] = None,
               max_ind_range: Optional[int] = None, frequency_threshold: int = 0,
               days: Optional[Sequence[int]] = None) -> dict:
    """Preprocess a raw Criteo directory into `out_dir`; resumable.  Returns the metadata."""
    t0 = time.time()
    dataset = {"criteo_kaggle": "kaggle", "criteo_1tb": "1tb"}.get(dataset, dataset)
    if dataset not in ("kaggle", "1tb"):
        raise CriteoPreprocessError(f"--dataset must be kaggle or 1tb, got {dataset!r}")
    if chunk_lines < 1:
        raise CriteoPreprocessError("--chunk-lines must be >= 1")
    if not 0 <= frequency_threshold <= 255:
        raise CriteoPreprocessError("--frequency-threshold must lie in [0, 255] (0 = off)")
    sizes = resolve_sizes(dataset, num_embeddings_per_feature, max_ind_range)
    if frequency_threshold > 0 and sum(sizes) > MAX_FREQ_TABLE_BYTES:
        raise CriteoPreprocessError(
            f"--frequency-threshold counts every (feature, id) in one byte each: sum of the table sizes "
            f"= {sum(sizes):,} bytes, over the {MAX_FREQ_TABLE_BYTES >> 20:,} MiB limit that keeps memory "
            "bounded; lower --max-ind-range or --num-embeddings-per-feature")
    sparse_dtype = "int32" if max(sizes) <= 2**31 else "int64"
    if not os.path.isdir(raw_dir):
        raise CriteoPreprocessError(f"raw directory {raw_dir!r} does not exist; download from {DOWNLOAD_URLS[dataset]}")

    # Which raw files make which days.
    if dataset == "kaggle":
        if days is not None:
            raise CriteoPreprocessError("--days applies to --dataset 1tb only (Kaggle is always 7 days)")
        raw = find_raw_file(raw_dir, "train.txt")
        if raw is None:
            raise CriteoPreprocessError(
                f"{raw_dir} holds no train.txt (or train.txt.gz); download the Kaggle Display Advertising "
                f"Challenge data from {DOWNLOAD_URLS['kaggle']} and extract train.txt there")
        day_list = list(range(KAGGLE_DAYS))
    else:
        day_list = sorted(set(int(d) for d in days)) if days is not None else list(range(TB_DAYS))
        if len(day_list) < 2 or any(not 0 <= d < TB_DAYS for d in day_list):
            raise CriteoPreprocessError(f"--days needs at least 2 distinct days in 0..{TB_DAYS - 1} "
                                        "(the last one is held out for eval)")
        raws = {d: find_raw_file(raw_dir, f"day_{d}") for d in day_list}
        missing = [f"day_{d}" for d, p in raws.items() if p is None]
        if missing:
            raise CriteoPreprocessError(
                f"{raw_dir} lacks {', '.join(missing)} (plain or .gz); download them from "
                f"{DOWNLOAD_URLS['1tb']}, or pick the days present with --days")

    os.makedirs(out_dir, exist_ok=True)
    args_record = {
        "format_version": FORMAT_VERSION, "dataset": dataset, "days": day_list,
        "num_embeddings_per_feature": sizes, "frequency_threshold": frequency_threshold,
        "sparse_dtype": sparse_dtype,
    }
    args_path = os.path.join(out_dir, ARGS_FILE)
    if os.path.exists(args_path):
        with open(args_path) as f:
            previous = json.load(f)
        if previous != args_record:
            diff = {k: (previous.get(k), v) for k, v in args_record.items() if previous.get(k) != v}
            raise CriteoPreprocessError(
                f"{out_dir} holds output of a preprocessing run with other settings "
                f"(setting: (before, now)): {diff}; use another --out directory or delete this one")
    else:
        _write_json_atomic(args_path, args_record)

    for name in os.listdir(out_dir):  # temp files of a killed run: never finished output
        if ".tmp" in name:
            os.remove(os.path.join(out_dir, name))
    tasks = kaggle_tasks(raw, out_dir) if dataset == "kaggle" else [DayTask(day=d, path=raws[d]) for d in day_list]
    done = {t.day: read_marker(out_dir, t.day) for t in tasks}
    todo = [t for t in tasks if done[t.day] is None]
    for t in tasks:
        if done[t.day] is not None:
            log(f"day {t.day}: finished earlier ({done[t.day]['rows']:,} rows), skipped")
    if workers is None:
        workers = min(len(tasks), os.cpu_count() or 1, 8)
    total = sum(t.max_lines for t in todo) if dataset == "kaggle" else None
    t_parse = time.time()
    lines = 0
    if todo:
        log(f"parsing {len(todo)} day(s) with {max(1, min(workers, len(todo)))} worker(s), "
            f"{chunk_lines:,} lines per chunk")
        results = _run_tasks(process_day, [(t, out_dir, sizes, chunk_lines, skip_bad_lines, sparse_dtype)
                                           for t in todo], workers, "parsing", total)
        for r in results:
            done[r["day"]] = r
            lines += r["source_lines"]
    parse_seconds = time.time() - t_parse

    train_days, eval_day = day_list[:-1], day_list[-1]
    if frequency_threshold > 0:
        _apply_frequency_threshold(out_dir, day_list, train_days, done, sizes, frequency_threshold,
                                   chunk_lines, workers)

    bad_total = {k: sum(done[d]["bad_lines"][k] for d in day_list) for k in BAD_KINDS}
    rows_per_day = {str(d): done[d]["rows"] for d in day_list}
    eval_rows = done[eval_day]["rows"]
    metadata = {
        "format_version": FORMAT_VERSION,
        "dataset": dataset,
        "days": day_list,
        "train_days": train_days,
        "eval_day": eval_day,
        "rows_per_day": rows_per_day,
        "num_train_rows": int(sum(done[d]["rows"] for d in train_days)),
        "num_eval_rows": int((eval_rows + 1) // 2),  # TorchRec's "val": first ceil(n/2) rows
        "num_test_rows": int(eval_rows // 2),
        "num_dense_features": INT_FEATURE_COUNT,
        "num_embeddings_per_feature": sizes,
        "frequency_threshold": frequency_threshold,
        "sparse_dtype": sparse_dtype,
        "bad_lines_skipped": bad_total,
        "conventions": {
            "dense": "log(1 + max(x, 0)), empty -> 0, float32",
            "sparse": "int(hex, 16) % num_embeddings_per_feature[f]; empty -> 0"
                      + (f"; ids seen < {frequency_threshold} times in train_days -> 0"
                         if frequency_threshold else ""),
            "labels": "int32 [n, 1]",
            "eval": "first ceil(n/2) rows of eval_day (TorchRec 'val'); the rest is 'test'",
        },
    }
    _write_json_atomic(os.path.join(out_dir, METADATA_FILE), metadata)
    _fsync_dir(out_dir)
    secs = time.time() - t0
    if lines:
        log(f"parsed {lines:,} lines in {parse_seconds:.1f} s ({lines / max(parse_seconds, 1e-9):,.0f} lines/s)")
    if any(bad_total.values()):
        log(f"skipped malformed lines: {bad_total} (total {sum(bad_total.values()):,}); examples:")
        for d in day_list:
            for ex in done[d].get("bad_line_examples", [])[:2]:
                log("  " + ex)
    log(f"done in {secs:.1f} s: {metadata['num_train_rows']:,} training rows in days "
        f"{train_days[0]}..{train_days[-1]}, "
        f"eval = first {metadata['num_eval_rows']:,} rows of day {eval_day}; output in {out_dir}")
    return metadata


def build_parser(prog: str = "python -m dlrm.data.criteo preprocess") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--raw", required=True,
                   help="directory holding train.txt (kaggle) or day_0 ... day_23 (1tb), plain or gzip")
    p.add_argument("--out", required=True, help="output directory (resumable: finished days are skipped)")
    p.add_argument("--dataset", required=True, choices=["kaggle", "1tb", "criteo_kaggle", "criteo_1tb"])
    p.add_argument("--chunk-lines", type=int, default=1 << 14,
                   help="lines parsed at once per worker; a worker's peak memory is ~30 MB + ~4 kB per "
                        "chunk line (default 16384: ~100 MB, and the chunk's arrays stay in the CPU cache; "
                        "larger chunks are slower)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, one day at a time each (default: min(days, CPUs, 8))")
    p.add_argument("--skip-bad-lines", action="store_true",
                   help="skip and count malformed lines instead of stopping at the first one")
    p.add_argument("--num-embeddings-per-feature", nargs="+", default=None, metavar="N",
                   help="26 per-feature table sizes (ids are taken modulo these); "
                        "default: the dataset's standard sizes")
    p.add_argument("--max-ind-range", type=int, default=None, help="cap every table size at N")
    p.add_argument("--frequency-threshold", type=int, default=0,
                   help="map ids seen fewer than T times in the training days to 0 (0 = off, max 255)")
    p.add_argument("--days", nargs="+", type=int, default=None,
                   help="1tb only: the days to use (default 0..23); the last is held out for eval")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    nepf = None
    if args.num_embeddings_per_feature:
        nepf = [int(x) for tok in args.num_embeddings_per_feature for x in str(tok).split(",") if x]
    try:
        preprocess(args.raw, args.out, args.dataset, chunk_lines=args.chunk_lines, workers=args.workers,
                   skip_bad_lines=args.skip_bad_lines, num_embeddings_per_feature=nepf,
                   max_ind_range=args.max_ind_range, frequency_threshold=args.frequency_threshold,
                   days=args.days)
    except CriteoPreprocessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
