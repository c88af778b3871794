"""The learning-rate envelope: with several learning rates at a point the
analysis keeps the best per point and per seed, and says which rate won where."""
import json

from analysis.__main__ import main
from analysis.envelope import lr_envelope
from analysis.runs import load_runs
from synthetic_runs import Config, SchemeWorld, write_v2_run

WORLD = SchemeWorld(noise_seed=0.0003, noise_walk=0.0001, noise=0.0001)  # lr_best = 0.01


def _sweep(root, lrs, seeds=(0, 1)):
    for lr in lrs:
        for seed in seeds:
            write_v2_run(root, WORLD, Config(lr=lr), 2 ** 16, seed)


def test_the_best_rate_per_point_and_seed_is_kept(tmp_path):
    _sweep(tmp_path, (0.003, 0.01, 0.03))
    table = load_runs([tmp_path])
    kept, rows = lr_envelope(table.points, "eval_ne")
    assert len(table.points) == 3 * len(kept)  # one of the three rates at every (point, seed)
    assert {p["dense_lr"] for p in kept} == {0.01}
    assert len(rows) == 7  # 2^10 .. 2^16
    for row in rows:
        assert row["winner_per_seed"] == {"0": [0.01, 0.01], "1": [0.01, 0.01]}
        assert not row["winner_at_edge"] and row["tried_text"] == "0.003, 0.01, 0.03"


def test_a_winner_at_the_edge_of_the_rates_tried_is_flagged(tmp_path):
    _sweep(tmp_path, (0.001, 0.002, 0.004))  # the best rate (0.01) lies beyond the range
    _, rows = lr_envelope(load_runs([tmp_path]).points, "eval_ne")
    assert rows and all(r["winner_at_edge"] and r["winner_text"] == "0.004" for r in rows)


def test_the_report_says_which_rate_won_where(tmp_path):
    _sweep(tmp_path / "s", (0.001, 0.002, 0.004))
    out = tmp_path / "out"
    assert main([str(tmp_path / "s"), "--out", str(out), "--bootstrap", "50", "--no-plots"]) == 0
    report = (out / "report.md").read_text()
    assert "## Learning-rate envelope" in report
    assert "0.004 won (of 0.001, 0.002, 0.004)" in report and "widen the range there" in report
    fits = json.loads((out / "fits.json").read_text())
    data = [f for f in fits if f["axis"] == "data"]
    assert len(data) == 1 and data[0]["n_points"] == 14  # 7 sizes x 2 seeds, one rate each
    assert len(json.loads((out / "lr_envelope.json").read_text())) == 7
