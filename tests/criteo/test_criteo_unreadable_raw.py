"""Raw files that are not line-oriented TSV, or not whole: a clear error naming the file.

A file without "\\n" (CR-only line ends, or binary) must fail fast in bounded memory, not
be buffered whole; a truncated or corrupt gzip must not escape as a raw EOFError.  Both
are `CriteoPreprocessError`s, printed by the command line as one `error:` line (exit 1).
"""
from __future__ import annotations

import gzip
import os
import random
import tracemalloc

import pytest

from dlrm.data.criteo import reader
from dlrm.data.criteo.cli import main as criteo_main
from dlrm.data.criteo.errors import CriteoPreprocessError
from dlrm.data.criteo.preprocess import preprocess

MIB = 1 << 20


class _CountingFile:
    """Wraps a raw file: how many bytes were read from it."""

    total = 0

    def __init__(self, f):
        self.f = f

    def read(self, n=-1):
        data = self.f.read(n)
        _CountingFile.total += len(data)
        return data

    def readinto(self, mv):
        got = self.f.readinto(mv)
        _CountingFile.total += got or 0
        return got

    def seek(self, *a):
        return self.f.seek(*a)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


@pytest.fixture
def bytes_read(monkeypatch):
    real = reader.open_raw
    _CountingFile.total = 0
    monkeypatch.setattr(reader, "open_raw", lambda path: _CountingFile(real(path)))
    return lambda: _CountingFile.total


def _cr_only(criteo, size: int) -> bytes:
    """Criteo lines ended by "\\r" only (old Mac line ends): no "\\n" anywhere."""
    block = "\r".join(criteo.make_lines(200, seed=70)).encode() + b"\r"
    return (block * (size // len(block) + 1))[:size]


def _binary(size: int) -> bytes:
    data = bytearray(random.Random(71).randbytes(size))
    return bytes(data.replace(b"\n", b"\x0b"))


@pytest.mark.parametrize("content", ["cr_only", "binary"])
def test_a_1tb_day_without_any_newline_fails_fast_in_bounded_memory_naming_the_file(
        tmp_path, criteo, bytes_read, content):
    raw = tmp_path / "raw"
    raw.mkdir()
    size = 48 * MIB
    data = _cr_only(criteo, size) if content == "cr_only" else _binary(size)
    (raw / "day_0").write_bytes(data)
    del data
    criteo.write_tsv(str(raw / "day_1"), criteo.make_lines(5))
    tracemalloc.start()
    try:
        with pytest.raises(CriteoPreprocessError) as e:
            preprocess(str(raw), str(tmp_path / "out"), "1tb", days=[0, 1], workers=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert str(raw / "day_0") in msg and "no line end" in msg and "1,048,576 bytes" in msg, msg
    assert "tab-separated" in msg and "\n" not in msg  # says what is expected, in one line
    assert bytes_read() < size / 4, bytes_read()  # it stopped early ...
    assert peak < 24 * MIB, peak  # ... and never held the file in one buffer


def test_kaggle_train_txt_without_any_newline_fails_in_the_line_count_pass(tmp_path, criteo, bytes_read):
    raw = tmp_path / "raw"
    raw.mkdir()
    size = 64 * MIB
    (raw / "train.txt").write_bytes(_cr_only(criteo, size))
    with pytest.raises(CriteoPreprocessError, match=r"train.txt: no line end .* within the first 1,048,576 bytes"):
        preprocess(str(raw), str(tmp_path / "out"), "kaggle", workers=1)
    assert bytes_read() <= size / 2, bytes_read()


def test_a_small_file_with_cr_only_line_ends_is_a_malformed_line_that_says_so(tmp_path, criteo):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "day_0").write_bytes(_cr_only(criteo, 50_000))
    criteo.write_tsv(str(raw / "day_1"), criteo.make_lines(5))
    with pytest.raises(CriteoPreprocessError, match=r"day_0:1: malformed line: .*\\r"):
        preprocess(str(raw), str(tmp_path / "out"), "1tb", days=[0, 1], workers=1)


def _truncated_gzip(path, criteo, n=3000):
    criteo.write_tsv(str(path), criteo.make_lines(n, seed=72), gz=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])  # a download or copy cut short
    return str(path)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_truncated_gzip_day_is_a_criteo_error_naming_the_file(tmp_path, criteo, workers):
    raw = tmp_path / "raw"
    raw.mkdir()
    criteo.write_tsv(str(raw / "day_0"), criteo.make_lines(20))
    path = _truncated_gzip(raw / "day_1.gz", criteo)
    with pytest.raises(CriteoPreprocessError, match=rf"{path}: truncated gzip file") as e:
        preprocess(str(raw), str(tmp_path / "out"), "1tb", days=[0, 1], workers=workers)
    assert "\n" not in str(e.value) and not isinstance(e.value, EOFError)
    assert not (tmp_path / "out" / "day_1.done").exists()


def test_a_truncated_kaggle_train_txt_gz_is_a_criteo_error_naming_the_file(tmp_path, criteo):
    raw = tmp_path / "raw"
    raw.mkdir()
    path = _truncated_gzip(raw / "train.txt.gz", criteo)
    with pytest.raises(CriteoPreprocessError, match=rf"{path}: truncated gzip file"):
        preprocess(str(raw), str(tmp_path / "out"), "kaggle", workers=1)


def test_a_corrupt_gzip_is_a_criteo_error_naming_the_file(tmp_path, criteo):
    raw = tmp_path / "raw"
    raw.mkdir()
    criteo.write_tsv(str(raw / "day_0"), criteo.make_lines(20))
    good = gzip.compress(("\n".join(criteo.make_lines(3000, seed=73)) + "\n").encode())
    (raw / "day_1").write_bytes(good[:200] + bytes(255 - b for b in good[200:400]) + good[400:])
    with pytest.raises(CriteoPreprocessError, match=rf"{raw / 'day_1'}: .*gzip"):
        preprocess(str(raw), str(tmp_path / "out"), "1tb", days=[0, 1], workers=1)


@pytest.mark.parametrize("case", ["no_newline", "truncated_gzip"])
def test_the_command_line_prints_an_unreadable_file_as_one_error_line_and_exits_1(tmp_path, criteo, capsys,
                                                                                 case):
    raw = tmp_path / "raw"
    raw.mkdir()
    criteo.write_tsv(str(raw / "day_0"), criteo.make_lines(20))
    if case == "no_newline":
        (raw / "day_1").write_bytes(_cr_only(criteo, 3 * MIB))
    else:
        _truncated_gzip(raw / "day_1", criteo)
    rc = criteo_main(["preprocess", "--raw", str(raw), "--out", str(tmp_path / "out"), "--dataset", "1tb",
                      "--days", "0", "1", "--workers", "2"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if not line.startswith("[criteo]")]
    assert rc == 1 and "Traceback" not in err
    assert len(errors) == 1 and errors[0].startswith("error: ") and str(raw / "day_1") in errors[0], err
    assert os.path.getsize(raw / "day_1") > 0
