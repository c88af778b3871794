"""Resuming preprocessing trusts earlier work only while its source file is the same one.

The identity of a raw file (size, mtime_ns, a hash of its first and last 64 KiB) is
recorded in every day's completion marker and in Kaggle's line-count checkpoint; a rerun
redoes every day whose source no longer matches, and says why.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from dlrm.data.criteo import parse
from dlrm.data.criteo.errors import CriteoPreprocessError
from dlrm.data.criteo.preprocess import preprocess
from dlrm.data.criteo.resume import read_marker


def _kaggle_days(criteo, out, lines):
    start = 0
    for d, n in enumerate(criteo.kaggle_split(len(lines))):
        criteo.check_day(out, d, lines[start : start + n])
        start += n


def _forget_finish(out, days):
    """What a run killed before these days (and the metadata) were finished leaves."""
    (out / "metadata.json").unlink()
    for d in days:
        (out / f"day_{d}.done").unlink()


def test_kaggle_resume_after_train_txt_grew_redoes_the_days_of_the_old_file(tmp_path, criteo, capsys):
    """Killed while the archive was still being extracted, restarted once extraction finished."""
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    lines = criteo.make_lines(7 * 12 + 5, seed=90)
    partial = criteo.write_tsv(str(raw / "train.txt"), lines[:40])  # extraction not finished
    kw = dict(num_embeddings_per_feature=criteo.SIZES, workers=1, chunk_lines=7)
    preprocess(str(raw), str(out), "kaggle", **kw)
    _forget_finish(out, [4, 5, 6])  # days 0-3 of the partial file look finished
    criteo.write_tsv(partial, lines)  # extraction finished
    capsys.readouterr()
    meta = preprocess(str(raw), str(out), "kaggle", **kw)
    err = capsys.readouterr().err
    _kaggle_days(criteo, out, lines)
    assert meta["rows_per_day"] == {str(d): n for d, n in enumerate(criteo.kaggle_split(len(lines)))}
    assert "kaggle_split.json" in err and "counting" in err  # the split was recounted, and why
    for d in range(4):
        assert f"day {d}: redoing it" in err and "changed" in err, err
    assert "skipped" not in err
    for d in range(7):
        assert json.loads((out / f"day_{d}.done").read_text())["source_identity"]["size"] == os.path.getsize(partial)


def test_kaggle_resume_notices_a_change_of_content_with_the_same_size_and_mtime(tmp_path, criteo, capsys):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    lines = criteo.make_lines(7 * 10, seed=91)
    path = criteo.write_tsv(str(raw / "train.txt"), lines)
    kw = dict(num_embeddings_per_feature=criteo.SIZES, workers=1)
    preprocess(str(raw), str(out), "kaggle", **kw)
    st = os.stat(path)
    new = list(lines)
    new[-1] = ("1" if new[-1][0] == "0" else "0") + new[-1][1:]  # the last label flipped: same size
    assert len(new[-1]) == len(lines[-1]) and new[-1] != lines[-1]
    criteo.write_tsv(path, new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # e.g. a copy that keeps the times
    assert os.stat(path).st_size == st.st_size
    capsys.readouterr()
    preprocess(str(raw), str(out), "kaggle", **kw)
    err = capsys.readouterr().err
    assert "day 6: redoing it" in err and "64 KiB" in err, err
    _kaggle_days(criteo, out, new)


def _three_days(tmp_path, criteo, n=30):
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    days = [criteo.make_lines(n, seed=95 + d) for d in range(3)]
    for d, lines in enumerate(days):
        criteo.write_tsv(str(raw / f"day_{d}"), lines)
    return raw, out, days


def test_1tb_resume_redoes_only_the_days_whose_file_changed(tmp_path, criteo, capsys):
    raw, out, days = _three_days(tmp_path, criteo)
    kw = dict(days=[0, 1, 2], num_embeddings_per_feature=criteo.SIZES, workers=1)
    preprocess(str(raw), str(out), "1tb", **kw)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("day_*.npy")}
    days[1] = criteo.make_lines(33, seed=99)  # day_1 downloaded again: another file
    criteo.write_tsv(str(raw / "day_1"), days[1])
    capsys.readouterr()
    meta = preprocess(str(raw), str(out), "1tb", **kw)
    err = capsys.readouterr().err
    assert "day 1: redoing it" in err and str(raw / "day_1") in err and "size" in err, err
    assert "day 0: finished earlier" in err and "day 2: finished earlier" in err
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("day_*.npy")}
    assert {k for k in before if before[k] != after[k]} == {f"day_1_{p}.npy" for p in ("dense", "sparse", "labels")}
    for d in range(3):
        criteo.check_day(out, d, days[d])
    assert meta["rows_per_day"] == {"0": 30, "1": 33, "2": 30}


def test_a_marker_that_records_no_source_identity_is_not_trusted(tmp_path, criteo, capsys):
    raw, out, days = _three_days(tmp_path, criteo)
    kw = dict(days=[0, 1, 2], num_embeddings_per_feature=criteo.SIZES, workers=1)
    preprocess(str(raw), str(out), "1tb", **kw)
    marker = json.loads((out / "day_2.done").read_text())
    marker.pop("source_identity")  # as an older version wrote it
    (out / "day_2.done").write_text(json.dumps(marker))
    capsys.readouterr()
    preprocess(str(raw), str(out), "1tb", **kw)
    err = capsys.readouterr().err
    assert "day 2: redoing it" in err and "no identity" in err, err
    assert "source_identity" in read_marker(str(out), 2)


def test_1tb_changed_training_day_after_frequency_threshold_gives_a_fresh_run_s_output(tmp_path, criteo):
    """The id counts include every training day, so a changed one invalidates the counts and
    every day already remapped with them."""
    raw, out, days = _three_days(tmp_path, criteo, n=40)
    sizes = [min(s, 5000) for s in criteo.SIZES]
    kw = dict(days=[0, 1, 2], num_embeddings_per_feature=sizes, frequency_threshold=3, workers=1)
    preprocess(str(raw), str(out), "1tb", **kw)
    criteo.write_tsv(str(raw / "day_0"), criteo.make_lines(45, seed=100))
    meta = preprocess(str(raw), str(out), "1tb", **kw)
    fresh = preprocess(str(raw), str(tmp_path / "fresh"), "1tb", **kw)
    assert meta["rows_per_day"] == fresh["rows_per_day"] == {"0": 45, "1": 40, "2": 40}
    for d in range(3):
        for got, want in zip(criteo.load_day(str(out), d), criteo.load_day(str(tmp_path / "fresh"), d)):
            np.testing.assert_array_equal(got, want)


def test_a_file_that_changes_while_its_day_is_read_is_an_error_not_a_finished_day(tmp_path, criteo,
                                                                                 monkeypatch):
    raw, out, days = _three_days(tmp_path, criteo)
    real_parse = parse.parse_chunk
    calls = {"n": 0}

    def parse_while_extracting(*a, **k):  # day_1 grows while it is being read
        calls["n"] += 1
        if calls["n"] == 3:
            with open(raw / "day_1", "a") as f:
                f.write("\n".join(criteo.make_lines(5, seed=101)) + "\n")
        return real_parse(*a, **k)

    monkeypatch.setattr(parse, "parse_chunk", parse_while_extracting)
    with pytest.raises(CriteoPreprocessError, match=r"day_1 changed \(.*\) while day 1 was being read"):
        preprocess(str(raw), str(out), "1tb", days=[0, 1, 2], num_embeddings_per_feature=criteo.SIZES,
                   workers=1, chunk_lines=10)  # 3 chunks a day: day_1's first chunk is the 4th call
    assert read_marker(str(out), 0) is not None and read_marker(str(out), 1) is None
    assert not (out / "day_1_dense.npy").exists() and not list(out.glob("*.tmp*"))
