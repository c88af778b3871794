"""Criteo preprocessing: output equals an independent reference parse; resume; malformed lines."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from dlrm.data.criteo import format as fmt
from dlrm.data.criteo import parse, pool, reader
from dlrm.data.criteo.cli import main as criteo_main
from dlrm.data.criteo.errors import CriteoPreprocessError, MalformedLineError
from dlrm.data.criteo.preprocess import preprocess
from dlrm.data.criteo.resume import read_marker

MATCH = dict(rtol=0, atol=0)


def test_1tb_layout_all_24_days_gzip_and_plain_matches_reference(tmp_path, criteo):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    per_day = {}
    for d in range(24):
        lines = criteo.make_lines(5 + d % 4, seed=d)
        # odd days gzip (named day_D.gz), day 5 gzip without the .gz suffix, the rest plain;
        # day 23 without a final newline
        name = f"day_{d}.gz" if d % 2 else f"day_{d}"
        criteo.write_tsv(str(raw / name), lines, gz=bool(d % 2) or d == 4, trailing_newline=d != 23)
        per_day[d] = lines
    meta = preprocess(str(raw), str(out), "1tb", num_embeddings_per_feature=criteo.SIZES, workers=2,
                         chunk_lines=3)
    for d in range(24):
        criteo.check_day(str(out), d, per_day[d])
        assert (out / f"day_{d}.done").exists()
    assert meta["train_days"] == list(range(23)) and meta["eval_day"] == 23
    assert meta["num_train_rows"] == sum(len(per_day[d]) for d in range(23))
    n23 = len(per_day[23])
    assert meta["num_eval_rows"] == (n23 + 1) // 2  # TorchRec's "val": first ceil(n/2) rows
    assert json.loads((out / "metadata.json").read_text()) == meta
    assert not list(out.glob("*.tmp*"))


@pytest.mark.parametrize("gz", [False, True])
def test_kaggle_layout_split_into_7_days_matches_reference(tmp_path, criteo, monkeypatch, gz):
    # Checkpoints every 4 lines, so day starts are found by seeking to a checkpoint and
    # skipping lines (the path that a 45M-line train.txt takes with 65536).
    monkeypatch.setattr(reader, "CHECKPOINT_LINES", 4)
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    lines = criteo.make_lines(7 * 9 + 4, seed=1)
    criteo.write_tsv(str(raw / ("train.txt.gz" if gz else "train.txt")), lines, gz=gz)
    meta = preprocess(str(raw), str(out), "kaggle", num_embeddings_per_feature=criteo.SIZES, workers=1,
                         chunk_lines=5)
    counts = criteo.kaggle_split(len(lines))
    assert counts == [10, 10, 10, 10, 9, 9, 9]
    assert [meta["rows_per_day"][str(d)] for d in range(7)] == counts
    start = 0
    for d, n in enumerate(counts):
        criteo.check_day(str(out), d, lines[start : start + n])
        start += n
    assert meta["train_days"] == [0, 1, 2, 3, 4, 5] and meta["eval_day"] == 6
    assert meta["num_eval_rows"] == 5 and meta["num_test_rows"] == 4


def test_crlf_line_ends_and_default_sizes(tmp_path, criteo):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    lines = criteo.make_lines(30, seed=2)
    criteo.write_tsv(str(raw / "day_0"), lines[:20], crlf=True)
    criteo.write_tsv(str(raw / "day_1"), lines[20:])
    preprocess(str(raw), str(out), "1tb", days=[0, 1])
    sizes = fmt.DEFAULT_NUM_EMBEDDINGS["1tb"]
    criteo.check_day(str(out), 0, lines[:20], sizes)
    criteo.check_day(str(out), 1, lines[20:], sizes)


def test_frequency_threshold_matches_reference(tmp_path, criteo):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    days = [criteo.make_lines(40, seed=10 + d) for d in range(3)]
    for d, lines in enumerate(days):
        criteo.write_tsv(str(raw / f"day_{d}"), lines)
    threshold = 3
    sizes = [min(s, 5000) for s in criteo.SIZES]  # the counts take sum(sizes) bytes
    meta = preprocess(str(raw), str(out), "1tb", days=[0, 1, 2], num_embeddings_per_feature=sizes,
                         frequency_threshold=threshold, workers=2)
    refs = [criteo.reference(lines, sizes)[1] for lines in days]
    expected = criteo.reference_threshold(np.concatenate(refs[:2]), refs, threshold)  # counts: train days only
    for d in range(3):
        got = criteo.load_day(str(out), d)[1]
        np.testing.assert_array_equal(got, expected[d])
        assert json.loads((out / f"day_{d}.done").read_text())["frequency_threshold_applied"] == threshold
    assert meta["frequency_threshold"] == threshold
    # it did bite: some ids survive (the frequent ones) and some were mapped to 0
    assert (expected[0][:, 3] != 0).any() and (expected[0] != refs[0]).any()
    # a rerun finds everything done and changes nothing (the remap is not applied twice)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("day_*_sparse.npy")}
    preprocess(str(raw), str(out), "1tb", days=[0, 1, 2], num_embeddings_per_feature=sizes,
                  frequency_threshold=threshold)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("day_*_sparse.npy")} == before
    with pytest.raises(CriteoPreprocessError, match="sum of the table sizes"):
        preprocess(str(raw), str(tmp_path / "out2"), "1tb", days=[0, 1, 2], frequency_threshold=2,
                      num_embeddings_per_feature=[2**31] * 26)


def test_torchrec_reads_the_output(tmp_path, criteo):
    torchrec_criteo = pytest.importorskip("torchrec.datasets.criteo")
    # our constants are TorchRec's
    assert fmt.INT_FEATURE_COUNT == torchrec_criteo.INT_FEATURE_COUNT
    assert fmt.CAT_FEATURE_COUNT == torchrec_criteo.CAT_FEATURE_COUNT
    assert fmt.DEFAULT_INT_NAMES == torchrec_criteo.DEFAULT_INT_NAMES
    assert fmt.DEFAULT_CAT_NAMES == torchrec_criteo.DEFAULT_CAT_NAMES
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    days = [criteo.make_lines(n, seed=20 + n) for n in (13, 8, 9)]
    for d, lines in enumerate(days):
        criteo.write_tsv(str(raw / f"day_{d}"), lines)
    preprocess(str(raw), str(out), "1tb", days=[0, 1, 2], num_embeddings_per_feature=criteo.SIZES)
    t = str(out / "day_{}_{}.npy")
    train = torchrec_criteo.InMemoryBinaryCriteoIterDataPipe(
        "train", [t.format(d, "dense") for d in (0, 1)], [t.format(d, "sparse") for d in (0, 1)],
        [t.format(d, "labels") for d in (0, 1)], batch_size=7, rank=0, world_size=1)
    batches = list(train)
    rd, rs, rl = criteo.reference(days[0] + days[1])
    np.testing.assert_allclose(np.concatenate([b.dense_features.numpy() for b in batches]), rd, rtol=1e-7)
    np.testing.assert_array_equal(np.concatenate([b.labels.numpy() for b in batches]), rl)
    kjt = batches[0].sparse_features
    assert kjt.keys() == torchrec_criteo.DEFAULT_CAT_NAMES
    np.testing.assert_array_equal(kjt.values().numpy().reshape(26, 7).T, rs[:7])
    val = torchrec_criteo.InMemoryBinaryCriteoIterDataPipe(
        "val", [t.format(2, "dense")], [t.format(2, "sparse")], [t.format(2, "labels")],
        batch_size=100, rank=0, world_size=1)
    assert sum(len(b.labels) for b in val) == 5  # ceil(9 / 2), the eval convention


# ------------------------------------------------------------------ resume


def _three_days(tmp_path, criteo):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    days = [criteo.make_lines(30, seed=30 + d) for d in range(3)]
    for d, lines in enumerate(days):
        criteo.write_tsv(str(raw / f"day_{d}"), lines)
    kw = dict(days=[0, 1, 2], num_embeddings_per_feature=criteo.SIZES, workers=1)
    return raw, out, days, kw


def test_resume_skips_finished_days_and_redoes_partial_ones(tmp_path, criteo):
    raw, out, days, kw = _three_days(tmp_path, criteo)
    preprocess(str(raw), str(out), "1tb", **kw)
    # Simulate a run killed late: day 0 finished; day 1 killed mid-write (a partial temp
    # file, no final files); day 2 killed after renaming its arrays but before its marker.
    old = time.time() - 3600
    for p in out.glob("day_0*"):
        os.utime(p, (old, old))
    day0_mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("day_0*")}
    for part in ("dense", "sparse", "labels"):
        (out / f"day_1_{part}.npy").unlink()
    (out / "day_1.done").unlink()
    (out / "day_1_dense.npy.tmp.12345").write_bytes(b"\x93NUMPY partial garbage")
    (out / "day_2.done").unlink()
    (out / "metadata.json").unlink()
    meta = preprocess(str(raw), str(out), "1tb", **kw)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("day_0*")} == day0_mtimes  # skipped
    assert (out / "day_2_dense.npy").stat().st_mtime > old + 1800  # redone: no marker, not finished
    assert not list(out.glob("*.tmp*"))
    for d in range(3):
        criteo.check_day(str(out), d, days[d])
    assert meta["rows_per_day"] == {"0": 30, "1": 30, "2": 30}


def test_killed_run_leaves_nothing_that_looks_finished(tmp_path, criteo, monkeypatch):
    raw, out, days, kw = _three_days(tmp_path, criteo)
    real_parse = parse.parse_chunk
    calls = {"n": 0}

    def dying_parse(*a, **k):  # day 0 completes; the process "dies" in day 1's third chunk
        calls["n"] += 1
        if calls["n"] == 9:
            raise KeyboardInterrupt
        return real_parse(*a, **k)

    monkeypatch.setattr(parse, "parse_chunk", dying_parse)
    with pytest.raises(KeyboardInterrupt):
        preprocess(str(raw), str(out), "1tb", chunk_lines=5, **kw)  # 6 chunks a day
    assert read_marker(str(out), 0) is not None
    assert read_marker(str(out), 1) is None and read_marker(str(out), 2) is None
    assert not (out / "day_1_dense.npy").exists() and not (out / "day_1.done").exists()
    assert not (out / "metadata.json").exists()
    assert not list(out.glob("*.tmp*"))  # the partial output (temp names) was removed on the way out
    from dlrm.data.criteo.source import CriteoDataNotFoundError, CriteoSource

    with pytest.raises(CriteoDataNotFoundError, match="resume"):
        CriteoSource(str(out), "criteo_1tb")
    monkeypatch.setattr(parse, "parse_chunk", real_parse)
    preprocess(str(raw), str(out), "1tb", chunk_lines=5, **kw)
    for d in range(3):
        criteo.check_day(str(out), d, days[d])


def test_sigkilled_run_resumes(tmp_path, criteo):
    """A real `kill -9` of the command line (main process and its pool workers)."""
    import signal
    import subprocess
    import sys

    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    days = [criteo.make_lines(12000, seed=60 + d) for d in range(4)]
    for d, lines in enumerate(days):
        criteo.write_tsv(str(raw / f"day_{d}"), lines)
    cmd = [sys.executable, "-m", "dlrm.data.criteo", "preprocess", "--raw", str(raw), "--out", str(out),
           "--dataset", "1tb", "--days", "0", "1", "2", "3", "--workers", "2", "--chunk-lines", "200",
           "--num-embeddings-per-feature", *map(str, criteo.SIZES)]
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(cmd, cwd=repo, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (out / "day_0.done").exists() and not (out / "day_1.done").exists():
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.2)  # the workers die with the main process (PR_SET_PDEATHSIG)
    assert not (out / "metadata.json").exists()
    finished = [d for d in range(4) if read_marker(str(out), d) is not None]
    assert 1 <= len(finished) < 4
    for d in range(4):
        if d not in finished:  # nothing of an unfinished day has its final name and a marker
            assert not (out / f"day_{d}.done").exists()
    preprocess(str(raw), str(out), "1tb", days=[0, 1, 2, 3], num_embeddings_per_feature=criteo.SIZES)
    assert not list(out.glob("*.tmp*"))
    for d in range(4):
        criteo.check_day(str(out), d, days[d])


def test_rerun_with_other_settings_is_refused(tmp_path, criteo):
    raw, out, days, kw = _three_days(tmp_path, criteo)
    preprocess(str(raw), str(out), "1tb", **kw)
    kw["num_embeddings_per_feature"] = [5] * 26
    with pytest.raises(CriteoPreprocessError, match="other settings"):
        preprocess(str(raw), str(out), "1tb", **kw)


def test_missing_raw_files_are_named(tmp_path, criteo):
    raw = tmp_path / "raw"
    raw.mkdir()
    criteo.write_tsv(str(raw / "day_0"), criteo.make_lines(3))
    with pytest.raises(CriteoPreprocessError, match=r"day_1, day_2.*criteo-1tb-click-logs"):
        preprocess(str(raw), str(tmp_path / "out"), "1tb")
    with pytest.raises(CriteoPreprocessError, match="train.txt"):
        preprocess(str(raw), str(tmp_path / "out2"), "kaggle")


# ------------------------------------------------------------------ malformed lines

BAD = {
    # kind: (line text builder, expected field description in the message)
    "too_few_fields": (lambda f: "\t".join(f[:39]), "field_count", r"39 tab-separated fields, expected 40"),
    "too_many_fields": (lambda f: "\t".join(f + ["1"]), "field_count", r"41 tab-separated fields, expected 40"),
    "empty_line": (lambda f: "", "field_count", r"1 tab-separated fields, expected 40"),
    "non_hex_categorical": (lambda f: "\t".join(f[:16] + ["xyz12345"] + f[17:]), "categorical",
                            r"field 17 of 40 \(cat_2\) = 'xyz12345'"),
    "long_categorical": (lambda f: "\t".join(f[:39] + ["123456789"]), "categorical",
                         r"field 40 of 40 \(cat_25\) = '123456789'"),
    "float_dense": (lambda f: "\t".join(f[:5] + ["1.5"] + f[6:]), "dense", r"field 6 of 40 \(int_4\) = '1.5'"),
    "word_dense": (lambda f: "\t".join(f[:1] + ["abc"] + f[2:]), "dense", r"field 2 of 40 \(int_0\) = 'abc'"),
    "lone_minus_dense": (lambda f: "\t".join(f[:13] + ["-"] + f[14:]), "dense", r"field 14 of 40 \(int_12\) = '-'"),
    "long_dense": (lambda f: "\t".join(f[:2] + ["1" * 19] + f[3:]), "dense", r"field 3 of 40 \(int_1\)"),
    "label_2": (lambda f: "\t".join(["2"] + f[1:]), "label", r"field 1 of 40 \(label\) = '2'"),
    "label_empty": (lambda f: "\t".join([""] + f[1:]), "label", r"field 1 of 40 \(label\) = ''"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_line_stops_with_file_line_and_field(tmp_path, criteo, case):
    build, kind, pattern = BAD[case]
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    lines = criteo.make_lines(24, seed=40)
    bad_at = 17  # 0-based; reported 1-based
    lines[bad_at] = build(lines[bad_at].split("\t"))
    criteo.write_tsv(str(raw / "day_0"), lines[:10])
    path = criteo.write_tsv(str(raw / "day_1"), lines[10:])
    with pytest.raises(MalformedLineError, match=rf"{path}:{bad_at - 10 + 1}: malformed line: {pattern}") as e:
        preprocess(str(raw), str(out), "1tb", days=[0, 1], num_embeddings_per_feature=criteo.SIZES,
                      chunk_lines=4)
    assert e.value.line == bad_at - 10 + 1 and e.value.path == path
    assert "--skip-bad-lines" in str(e.value)
    assert not (out / "day_1_dense.npy").exists() and not (out / "metadata.json").exists()

    # With skip_bad_lines the line is skipped, counted by kind and reported.
    meta = preprocess(str(raw), str(out), "1tb", days=[0, 1], num_embeddings_per_feature=criteo.SIZES,
                         chunk_lines=4, skip_bad_lines=True)
    assert meta["bad_lines_skipped"] == {k: int(k == kind) for k in parse.BAD_KINDS}
    good = lines[10:bad_at] + lines[bad_at + 1 :]
    criteo.check_day(str(out), 1, good)
    marker = json.loads((out / "day_1.done").read_text())
    assert marker["source_lines"] == 14 and marker["rows"] == 13
    assert marker["bad_line_examples"][0].startswith(f"{path}:{bad_at - 10 + 1}:")


def test_malformed_line_numbers_in_kaggle_train_txt_and_across_workers(tmp_path, criteo, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    lines = criteo.make_lines(70, seed=41)
    lines[45] = lines[45].replace("\t", "\t7\t", 1)  # day 4 of 7 (lines 41-50), 41 fields
    f = lines[62].split("\t")
    lines[62] = "\t".join(["1", "-5"] + f[2:])  # a negative integer feature is valid
    lines[63] = "\t".join(["0"] + lines[63].split("\t")[1:14] + ["g" * 8] + lines[63].split("\t")[15:])
    path = criteo.write_tsv(str(raw / "train.txt"), lines)
    rc = criteo_main(["preprocess", "--raw", str(raw), "--out", str(out), "--dataset", "kaggle",
                      "--workers", "2", "--num-embeddings-per-feature", *map(str, criteo.SIZES)])
    err = capsys.readouterr().err
    assert rc == 1
    # Which bad line a parallel run meets first is not fixed; each names its own line.
    assert (f"{path}:46: malformed line: 41 tab-separated fields" in err
            or f"{path}:64: malformed line: field 15 of 40 (cat_0) = 'gggggggg'" in err), err
    rc = criteo_main(["preprocess", "--raw", str(raw), "--out", str(out), "--dataset", "kaggle",
                      "--workers", "2", "--skip-bad-lines", "--num-embeddings-per-feature",
                      ",".join(map(str, criteo.SIZES))])
    err = capsys.readouterr().err
    assert rc == 0
    assert "skipped malformed lines" in err
    # Both messages, exactly as the stopping run would have printed whichever it met first.
    assert f"{path}:46: malformed line: 41 tab-separated fields" in err, err
    assert f"{path}:64: malformed line: field 15 of 40 (cat_0) = 'gggggggg'" in err, err
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["bad_lines_skipped"] == {"field_count": 1, "label": 0, "dense": 0, "categorical": 1}
    assert meta["rows_per_day"] == {"0": 10, "1": 10, "2": 10, "3": 10, "4": 9, "5": 10, "6": 9}
    criteo.check_day(str(out), 6, lines[60:63] + lines[64:])


def test_malformed_line_error_survives_pickling():
    import pickle

    e = MalformedLineError("f:3: malformed", "f", 3, "cat_1")
    e2 = pickle.loads(pickle.dumps(e))
    assert (str(e2), e2.path, e2.line, e2.field) == (str(e), "f", 3, "cat_1")


# ------------------------------------------------------------------ the vectorised parser itself


def _line_bytes(label=b"1", dense=None, cats=None) -> bytes:
    dense = dense or [b"3"] * 13
    cats = cats or [b"0123abcd"] * 26
    return b"\t".join([label, *dense, *cats])


@pytest.mark.parametrize("pos", [0, 7])
def test_every_byte_value_in_a_categorical_is_classified_exactly(pos):
    """Hex digits (either case) decode; any other byte, at any position, flags the field."""
    sizes = np.full(26, 2**32 - 1, np.uint64)
    hexdigits = set(b"0123456789abcdefABCDEF")
    values = [b for b in range(256) if b not in (9, 10)]
    lines = []
    for b in values:
        field = bytearray(b"00000000")
        field[pos] = b
        lines.append(_line_bytes(cats=[b"1234abcd"] * 5 + [bytes(field)] + [b"ffffffff"] * 20))
    buf = b" " * fmt.PAD + b"\n".join(lines) + b"\n"
    chunk = parse.parse_chunk(buf, sizes, np.int64)
    bad = {b.index: b for b in chunk.bad}
    for i, b in enumerate(values):
        if b in hexdigits:
            assert i not in bad, chr(b)
        else:
            assert i in bad and bad[i].kind == "categorical" and bad[i].field == 19, (b, bad.get(i))
    good = [b for b in values if b in hexdigits]
    expected = [int(bytes(bytearray(b"00000000")[:pos] + bytes([b]) + b"0" * (7 - pos)), 16) for b in good]
    np.testing.assert_array_equal(chunk.sparse[:, 5], expected)
    np.testing.assert_array_equal(chunk.sparse[:, 0], int("1234abcd", 16))


@pytest.mark.parametrize("width", [1, 5, 8, 12])
def test_every_byte_value_in_an_integer_feature_is_classified_exactly(width):
    sizes = np.full(26, 1000, np.uint64)
    values = [b for b in range(256) if b not in (9, 10)]
    lines = []
    for b in values:
        field = bytes([b]) + b"7" * (width - 1)  # first byte varies; "-" is valid there
        lines.append(_line_bytes(dense=[b"12"] * 3 + [field] + [b"0"] * 9))
    chunk = parse.parse_chunk(b" " * fmt.PAD + b"\n".join(lines) + b"\n", sizes)
    bad = {b.index for b in chunk.bad}
    ok = [b for b in values if b in b"0123456789" or (b == ord("-") and width > 1)]
    assert bad == {i for i, b in enumerate(values) if b not in ok}
    import math

    exp = [np.float32(math.log1p(max(int(bytes([b]) + b"7" * (width - 1)), 0))) for b in ok]
    np.testing.assert_allclose(chunk.dense[:, 3], exp, rtol=1e-7)
    np.testing.assert_allclose(chunk.dense[:, 0], np.float32(math.log1p(12)), rtol=1e-7)


def test_fast_and_general_categorical_paths_agree(criteo):
    """A chunk of 8-digit-or-empty categoricals takes the fast path; one short id switches
    the whole chunk to the masked path.  Both must give the same ids and flag the same lines."""
    sizes = np.asarray(criteo.SIZES, np.uint64)
    lines = [ln.encode() for ln in criteo.make_lines(50, seed=50)]
    fixed = []
    for ln in lines:  # make every categorical 8 digits or empty
        f = ln.split(b"\t")
        f[14:] = [c if len(c) in (0, 8) else c.rjust(8, b"0") for c in f[14:]]
        fixed.append(b"\t".join(f))
    fixed[7] = fixed[7].replace(fixed[7].split(b"\t")[20], b"0000zz00")
    fast = parse.parse_chunk(b" " * fmt.PAD + b"\n".join(fixed) + b"\n", sizes)
    short = [*fixed, _line_bytes(cats=[b"abc"] * 26)]
    general = parse.parse_chunk(b" " * fmt.PAD + b"\n".join(short) + b"\n", sizes)
    assert [(b.index, b.field) for b in fast.bad] == [(b.index, b.field) for b in general.bad] == [(7, 20)]
    np.testing.assert_array_equal(general.sparse[:-1], fast.sparse)
    np.testing.assert_array_equal(general.sparse[-1], int("abc", 16) % sizes)


def _die_or_sleep(i):
    import signal

    if i == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer would
    time.sleep(0.2)
    return i


def test_a_worker_killed_by_the_os_is_an_error_not_a_hang():
    t = time.time()
    with pytest.raises(CriteoPreprocessError, match="worker process died"):
        pool.run_tasks(_die_or_sleep, [(0,), (1,), (2,)], 2, "test", None)
    assert time.time() - t < 30
    assert pool.run_tasks(_die_or_sleep, [(0,), (2,)], 2, "test", None) == [0, 2]


def test_command_line_exit_codes_and_a_light_package_import():
    """`python -m dlrm.data.criteo`: 2 without a command or with an unknown one, 0 for --help;
    importing the package (and even CriteoSource) imports no torch."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    run = lambda *a: subprocess.run([sys.executable, "-m", "dlrm.data.criteo", *a], cwd=repo,  # noqa: E731
                                    capture_output=True, text=True)
    assert run().returncode == 2
    assert run("nonsense").returncode == 2
    helped = run("preprocess", "--help")
    assert helped.returncode == 0 and "--raw" in helped.stdout and "--skip-bad-lines" in helped.stdout
    assert run("preprocess", "--raw", "x").returncode == 2  # --out and --dataset missing
    probe = "import sys, dlrm.data.criteo as c; c.CriteoSource; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", probe], cwd=repo).returncode == 0
