"""Reading raw Criteo files: plain or gzip, in chunks of complete lines, and counting lines.

Memory is bounded whatever the input: a file with no "\\n" within `MAX_LINE_BYTES` is
refused (`RawFileError`), and so is a truncated or corrupt gzip file, naming the file.
"""
from __future__ import annotations

import gzip
import os
import zlib
from typing import Iterator, Optional

import numpy as np

from dlrm.data.criteo.errors import CriteoPreprocessError, RawFileError
from dlrm.data.criteo.format import EXPECTED_FORMAT, MAX_LINE_BYTES, MAX_LINE_ESTIMATE, PAD
from dlrm.data.criteo.pool import Progress

CHECKPOINT_LINES = 1 << 16  # Kaggle line-count pass: byte offset of every 65536th line
_NL = 10


def find_raw_file(raw_dir: str, stem: str) -> Optional[str]:
    for name in (stem, stem + ".gz", stem + ".tsv", stem + ".tsv.gz"):
        p = os.path.join(raw_dir, name)
        if os.path.isfile(p):
            return p
    return None


class RawFile:
    """A raw Criteo TSV open for binary reading, plain or gzip (detected by its magic bytes).

    A truncated or corrupt gzip stream raises `RawFileError` naming the file, not EOFError.
    """

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb") as f:
            magic = f.read(2)
        self.f = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb", buffering=1 << 20)

    def _io(self, fn, *args):
        try:
            return fn(*args)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            what = "truncated" if isinstance(e, EOFError) else "corrupt"
            raise RawFileError(f"{self.path}: {what} gzip file ({e}): the download or copy is incomplete or "
                               "damaged; fetch it again (`gzip -t FILE` checks a file)") from e

    def read(self, n: int) -> bytes:
        return self._io(self.f.read, n)

    def readinto(self, buf) -> int:
        return self._io(self.f.readinto, buf)

    def seek(self, offset: int) -> int:
        return self._io(self.f.seek, offset)

    def close(self) -> None:
        self.f.close()

    def __enter__(self) -> "RawFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_raw(path: str) -> RawFile:
    return RawFile(path)


def _no_line_end(path: str, start: int, has_cr: bool) -> RawFileError:
    where = "the first " if start == 0 else ""
    after = f" after byte {start:,}" if start else ""
    hint = ("; it holds CR-only (\\r) line ends: convert them, e.g. with tr '\\r' '\\n'" if has_cr
            else "; is it a binary or compressed file of another kind?")
    return RawFileError(f"{path}: no line end (\\n) found within {where}{MAX_LINE_BYTES:,} bytes{after}: not a "
                        f"Criteo TSV file, which has {EXPECTED_FORMAT}, lines under 4 KiB{hint}")


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
    line_start = byte_offset  # (decompressed) offset in the file of buf[PAD]
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
            if cnt == 0:  # a line longer than what was read so far
                if fill - PAD > MAX_LINE_BYTES:
                    raise _no_line_end(path, line_start, buf.find(b"\r", PAD, fill) >= 0)
                continue
            if cnt > want:
                nl = np.flatnonzero(np.frombuffer(buf, np.uint8, count=fill - PAD, offset=PAD) == _NL)
                cut = PAD + int(nl[want - 1]) + 1
                del nl
                cnt = want
            else:
                cut = buf.rfind(b"\n", PAD, fill) + 1
            est = min(0.7 * est + 0.3 * ((cut - PAD) / cnt), MAX_LINE_ESTIMATE)
            if to_skip > 0:
                to_skip -= cnt
            else:
                if left is not None:
                    left -= cnt
                yield memoryview(buf)[:cut], cnt
            line_start += cut - PAD
            tail = fill - cut
            buf[PAD : PAD + tail] = buf[cut:fill]
            fill = PAD + tail
    if to_skip > 0:
        raise CriteoPreprocessError(f"{path}: ended {to_skip} lines before the expected position")


def count_lines_with_checkpoints(path: str, every: Optional[int] = None,
                                 block: int = 16 << 20) -> tuple[int, list[tuple[int, int]]]:
    """Total lines and (line index, byte offset) of every `every`-th line start (line 0 first)."""
    every = every or CHECKPOINT_LINES
    checkpoints = [(0, 0)]
    lines, offset = 0, 0
    last_byte = b"\n"
    since_nl = 0  # bytes of the current line read so far
    prog = Progress(f"counting lines of {os.path.basename(path)}", None)
    with open_raw(path) as f:
        while True:
            data = f.read(block)
            if not data:
                break
            cnt = data.count(b"\n")
            first = data.find(b"\n") if cnt else len(data)
            if since_nl + first > MAX_LINE_BYTES:
                raise _no_line_end(path, offset - since_nl, data.find(b"\r", 0, first) >= 0)
            since_nl = since_nl + len(data) if not cnt else len(data) - 1 - data.rfind(b"\n")
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
