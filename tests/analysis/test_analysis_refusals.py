"""Bad input to the analysis refused in one line before any fitting; nothing dropped unsaid."""
import csv
import os

from analysis.runs import load_runs
from synthetic_runs import World, summary, write_run


def _completed(**kw):
    args = dict(model="dlrm", embedding_dim=16, mlp_width=128, num_train_samples=2 ** 14, seed=0)
    args.update(kw)
    return summary(World(), **args)


def _no_fitting(monkeypatch):
    import analysis.pipeline

    def fitting(*a, **k):
        raise AssertionError("the analysis fitted before refusing --out")

    monkeypatch.setattr(analysis.pipeline, "analyze", fitting)


def test_an_out_that_is_a_file_is_refused_before_any_fitting(tmp_path, monkeypatch, capsys):
    from analysis.__main__ import main

    write_run(tmp_path / "runs", "a", _completed())
    (tmp_path / "report").write_text("not a directory")
    _no_fitting(monkeypatch)
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"dlrm-analyze: error: --out {tmp_path / 'report'}: a file, not a directory: "
                   f"give --out a directory you can write (it is created if missing)")
    assert (tmp_path / "report").read_text() == "not a directory"  # left as it was


def test_an_out_that_cannot_be_written_is_refused_before_any_fitting(tmp_path, monkeypatch, capsys):
    from analysis.__main__ import main

    write_run(tmp_path / "runs", "a", _completed())
    (tmp_path / "out").mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == str(tmp_path / "out") else real_access(p, mode))
    _no_fitting(monkeypatch)
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"dlrm-analyze: error: --out {tmp_path / 'out'}: a directory this user may not write")
    assert len(err.splitlines()) == 1


def test_a_symlinked_run_dir_is_listed_in_excluded_csv(tmp_path):
    from analysis.__main__ import main

    root, elsewhere = tmp_path / "runs", tmp_path / "elsewhere"
    for seed, n in enumerate((2 ** 12, 2 ** 13, 2 ** 14, 2 ** 15)):
        write_run(root, f"n={n}", _completed(num_train_samples=n))
    target = write_run(elsewhere, "linked", _completed(seed=7))
    (root / "linked").symlink_to(target)
    (root / "inside").symlink_to(root / "n=4096")  # a second path to a run analysed anyway

    table = load_runs([root])
    rows = {r["run_name"]: r for r in table.excluded}
    assert rows["linked"]["state"] == "symlink"
    assert rows["linked"]["reason"] == (f"a symbolic link to {target}, not followed (a link can loop or reach a run "
                                        f"twice): pass its target as a SWEEP_DIR to analyse it")
    assert rows["inside"]["reason"].endswith("its target is analysed here")
    assert len(table.finals) == 4

    assert main([str(root), "--out", str(tmp_path / "out"), "--bootstrap", "0", "--no-plots", "--no-joint",
                 "--jobs", "1"]) == 0
    with open(tmp_path / "out" / "excluded.csv") as f:
        listed = {r["run_name"]: r["state"] for r in csv.DictReader(f)}
    assert listed == {"linked": "symlink", "inside": "symlink"}
