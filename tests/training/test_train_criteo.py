"""A short training run on preprocessed Criteo-format files writes a valid run dir."""
from __future__ import annotations

import random

from harness import run_job

from dlrm.data.criteo.preprocess import preprocess


def _criteo_line(rng: random.Random) -> str:
    label = str(rng.randint(0, 1))
    ints = [str(rng.randint(-2, 500)) if rng.random() > 0.1 else "" for _ in range(13)]
    cats = [f"{rng.randrange(16 ** 8):08x}" if rng.random() > 0.1 else "" for _ in range(26)]
    return "\t".join([label, *ints, *cats]) + "\n"


def test_training_on_preprocessed_kaggle_files(tmp_path):
    rng = random.Random(0)
    raw, out = tmp_path / "raw", tmp_path / "out"
    raw.mkdir()
    (raw / "train.txt").write_text("".join(_criteo_line(rng) for _ in range(7 * 1400)))
    preprocess(str(raw), str(out), "kaggle", num_embeddings_per_feature=[997] * 26, workers=1)
    result = run_job(["data=criteo_kaggle", f"data.path={out}", "data.num_train_samples=4096",
                      "data.num_eval_samples=512", "model.embedding_dim=4", "model.mlp_width=16"], tmp_path / "run")
    s = result["summary"]
    assert result["status"] == "completed", s
    assert s["data"] == "criteo_kaggle" and s["num_train_samples"] == 4096 and s["num_eval_samples"] == 512
    assert s["bayes_ne"] is None and s["bayes_logloss"] is None  # no known floor for real data
    assert s["params_embedding"] == 26 * 997 * 4
    assert 0.0 < s["eval_ne"] < 1.5  # random labels: nothing to learn, but a finite, sane NE
    for name in ("config.yaml", "metrics.jsonl", "env.json"):
        assert (tmp_path / "run" / name).is_file()
