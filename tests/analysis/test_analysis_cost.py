"""The cost model: its terms against hand counts, memory and devices, and its calibration
predicting measured runs it was not fitted to."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.cost import (Efficiency, Workload, calibrate, devices_needed, memory_bytes, seconds_per_sample,
                           term_amounts, training_seconds)
from analysis.hardware import PROFILES, profile

DEMO = json.loads((Path(__file__).parent / "data" / "demo_throughput.json").read_text())["runs"]


def _config(r):
    return (r["embedding_dim"], r["dense_arch_width"], r["over_arch_width"], r["data_id"])


def test_calibrated_on_half_of_the_demos_configs_it_predicts_the_others_wall_time():
    """Half of the grid points (every seed of each) calibrate; the other half's train time is
    predicted from their workloads alone: median error under 12%, none over 40%."""
    configs = sorted({_config(r) for r in DEMO})
    fit_on = set(configs[::2])
    train = [r for r in DEMO if _config(r) in fit_on]
    held = [r for r in DEMO if _config(r) not in fit_on]
    assert len(held) >= 20 and {r["embedding_dim"] for r in held} != {16}
    cal = calibrate(profile("cpu"), train)
    predicted = np.array([training_seconds(Workload.from_run(r), r["num_train_samples"], cal.hardware, 1)
                          for r in held])
    measured = np.array([r["num_train_samples"] / r["train_samples_per_second"] for r in held])
    err = np.abs(predicted / measured - 1)
    assert np.median(err) < 0.12 and err.max() < 0.40, (np.median(err), err.max())
    assert "dense" in cal.terms_fitted and 0.05 < cal.hardware.efficiency.dense < 1


def test_the_terms_are_the_counts_they_state():
    w = Workload(flops_per_sample=2e5, embedding_dim=16, lookups_per_sample=26, params_embedding=16 * 1000,
                 params_dense=10_000, batch_size=512, activations_per_sample=1000)
    one = term_amounts(w, 1, 8)
    assert one["dense"] == 2e5
    assert one["memory"] == 26 * (3 * 16 * 4 + 8)
    assert one["network"] == 0 and one["step"] == pytest.approx(1 / 512)
    four = term_amounts(w, 4, 8)
    assert four["network"] == pytest.approx(2 * 26 * 16 * 4 * 0.75 + 2 * 0.75 * 10_000 * 4 / 128)
    hw = profile("h100")
    inside, across = seconds_per_sample(w, hw, 8, 8), seconds_per_sample(w, hw, 16, 8)
    assert across["network"] > inside["network"] * 5  # the network is slower than NVLink
    # Wall time falls with devices, GPU-seconds do not.
    assert training_seconds(w, 1e9, hw, 8) < training_seconds(w, 1e9, hw, 1)


def test_memory_and_devices_needed():
    w = Workload(flops_per_sample=2e5, embedding_dim=128, lookups_per_sample=26, params_embedding=128 * 1e9,
                 params_dense=1e6, batch_size=512, activations_per_sample=5000)
    m = memory_bytes(w)
    assert m["tables"] == pytest.approx(128e9 * 4) and m["optimizer_state"] == pytest.approx(1e9 * 4)
    # 516 GB of tables and state over 0.85 x 80 GB usable per H100: 8 devices; an H200 needs 5.
    assert devices_needed(w, profile("h100")) == 8
    assert devices_needed(w, profile("h200")) == 5
    small = Workload(**{**w.__dict__, "params_embedding": 128 * 1e5})
    assert devices_needed(small, profile("h100")) == 1


def test_every_profile_names_its_source_and_how_its_efficiencies_were_set():
    for hw in PROFILES.values():
        assert hw.source and hw.calibration
        assert isinstance(hw.efficiency, Efficiency)
    with pytest.raises(ValueError, match="unknown hardware 'tpu': use one of"):
        profile("tpu")


def test_a_summary_without_lookups_or_placement_is_refused_by_name():
    r = {**DEMO[0], "tables_per_rank": None, "run_name": "x"}
    with pytest.raises(ValueError, match="run x: no embedding_lookups_per_sample"):
        Workload.from_run(r)
    assert Workload.from_run(DEMO[0]).lookups_per_sample == 26
