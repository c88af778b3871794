"""Grouping runs into series, and the compute frontier."""
import numpy as np

from analysis.series import AXES, build_series, frontier_series


def run(model="dlrm", emb=16, width=128, n=2 ** 14, seed=0, ne=0.8, flops=None, data="synthetic"):
    return {"run_name": f"{model}_{emb}_{width}_{n}_{seed}", "model": model, "data": data,
            "embedding_dim": emb, "mlp_width": width, "mlp_depth": 3, "num_train_samples": n,
            "seed": seed, "eval_ne": ne, "params_total": emb * 1000 + width * 10,
            "params_embedding": emb * 1000, "params_dense": width * 10,
            "train_flops": flops if flops is not None else 60.0 * width * n}


def test_data_axis_series_share_every_other_axis_and_pool_seeds():
    points = [run(model=m, emb=e, n=2 ** k, seed=s)
              for m in ("dlrm", "dcn") for e in (16, 64) for k in range(13, 18) for s in (0, 1)]
    points.append(run(emb=32, n=2 ** 14))  # a single data size: not a data series
    series, notes = build_series(points, AXES["data"], "eval_ne")
    assert len(series) == 4 and not notes
    for s in series:
        assert len(s.runs) == 10 and s.n_distinct_x == 5
        assert {r["model"] for r in s.runs} == {s.group["model"]}
        assert {r["embedding_dim"] for r in s.runs} == {s.group["embedding_dim"]}
        assert sorted({r["seed"] for r in s.runs}) == [0, 1]
        assert np.all(np.diff(s.x) >= 0)


def test_params_axis_groups_by_model_and_data_size():
    points = [run(emb=e, n=n) for e in (8, 16, 32, 64) for n in (2 ** 14, 2 ** 20)]
    points += [run(model="dcn", emb=e, n=2 ** 20) for e in (8, 16, 32, 64)]
    series, _ = build_series(points, AXES["params"], "eval_ne")
    assert sorted((s.group["model"], s.group["num_train_samples"]) for s in series) == [
        ("dcn", 2 ** 20), ("dlrm", 2 ** 14), ("dlrm", 2 ** 20)]


def test_runs_without_the_axis_field_are_noted_and_left_out():
    points = [run(emb=e) for e in (4, 8, 16, 32, 64)]
    points[0] = {k: v for k, v in points[0].items() if k != "params_total"}
    _, notes = build_series(points, AXES["params"], "eval_ne")
    assert notes and "1 run(s) without a positive params_total" in notes[0]


def test_duplicate_x_and_seed_in_a_series_is_warned_with_the_differing_field():
    # Two learning rates at one point, seen before the learning-rate envelope picks one.
    points = [{**run(emb=16, n=2 ** 20), "dense_lr": lr} for lr in (0.01, 0.03)]
    points += [run(emb=e, n=2 ** 20) for e in (8, 32, 64)]
    series, _ = build_series(points, AXES["embedding_dim"], "eval_ne")
    assert "they differ in" in series[0].warnings[0] and "dense_lr" in series[0].warnings[0]


def test_frontier_keeps_the_lowest_mean_ne_per_budget_over_seeds():
    # (flops, ne per seed): B is dominated (more flops, worse NE than A); C is lucky in one
    # seed only and worse on average than A, so it is not on the frontier either.
    pts = []
    for name, flops, nes in [("A", 1e10, (0.90, 0.90)), ("B", 2e10, (0.92, 0.92)),
                             ("C", 3e10, (0.85, 0.97)), ("D", 4e10, (0.85, 0.86)),
                             ("E", 8e10, (0.80, 0.81))]:
        for seed, ne in enumerate(nes):
            pts.append(run(emb=ord(name), n=int(flops / 1e5), seed=seed, ne=ne, flops=flops))
    series, _ = frontier_series(pts, "eval_ne")
    (s,) = series
    assert sorted({r["train_flops"] for r in s.runs}) == [1e10, 4e10, 8e10]
    assert len(s.runs) == 6 and len(s.cloud) == 10
