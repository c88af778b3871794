"""Every config file composes and validates; every bad value is refused before work starts."""
from __future__ import annotations

import json

import pytest

from harness import CONFIGS, cli, compose, compose_hydra, run_job, typed
from dlrm.config import ConfigError
from dlrm.validate import validate

GROUP_FILES = sorted(p for p in CONFIGS.glob("*/*.yaml"))


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_config_file_composes_and_validates(path):
    group, name = path.parent.name, path.stem
    cfg = typed([f"{group}={name}"])
    if group == "sharding" and name == "row_wise":
        with pytest.raises(ConfigError, match="reduce_scatter"):
            validate(cfg, 1, "cpu")
        validate(cfg, 1, "cuda")
    else:
        validate(cfg, 1, "cpu")


BAD = [
    (["model.embedding_dim=0"], "model.embedding_dim must be a positive integer"),
    (["model.embedding_dim=2"], "not a multiple of 4"),
    (["model.mlp_width=-4"], "model.mlp_width must be a positive integer"),
    (["data.num_train_samples=0"], "data.num_train_samples must be a positive integer"),
    (["trainer.batch_size=0"], "trainer.batch_size must be a positive integer"),
    (["trainer.embedding_lr=0"], "trainer.embedding_lr must be a positive number"),
    (["model.embedding_dim=8", "model.dense_arch_layer_sizes=[64,16]"], "last layer to equal the embedding dim"),
    (["model.over_arch_layer_sizes=[64,2]"], "must end in 1"),
    (["model.name=transformer"], "model.name='transformer' is not known"),
    (["model.dense_arch_output=tanh"], "model.dense_arch_output='tanh' is not one of"),
    (["sharding.type=diagonal"], "sharding.type='diagonal' is not known"),
    (["sharding=row_wise"], "gloo backend"),
    (["trainer.embedding_optimizer=adam"], "needs a GPU: FBGEMM's CPU embedding kernels implement"),
    (["data.num_train_samples=256", "trainer.batch_size=512"], "smaller than one global batch"),
    (["data.num_train_samples=4096", "data.eval_offset=1024"], "overlaps the eval set"),
    (["data=synthetic_top", "data.gated_carrier_feature=3"], "none of them a top or interaction feature"),
    (["data=synthetic_top", "data.gated_carrier_feature=null"], "kink in one feature's per-id scalar"),
    (["data=synthetic_top", "data.gated_open=1.0"], "must lie strictly between 0 and 1"),
    (["data=synthetic_top", "data.gated_open=0.25"], "cardinalities it does not divide"),
]


@pytest.mark.parametrize("overrides,message", BAD, ids=lambda x: x if isinstance(x, str) else " ".join(x))
def test_bad_config_is_refused_with_a_message(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        validate(typed(overrides), 1, "cpu")


TYPE_ERRORS = [
    ("model.embedding_dim=abc", "could not be converted to Integer", "model.embedding_dim"),
    ("trainer.batch_size=[1,2]", "", "trainer.batch_size"),
    ("trainer.dense_lr=fast", "could not be converted to Float", "trainer.dense_lr"),
    ("data.cardinalities=7", "", "data.cardinalities"),
]


@pytest.mark.parametrize("override,message,key", TYPE_ERRORS, ids=[t[0] for t in TYPE_ERRORS])
def test_wrong_type_fails_at_composition_with_hydras_message(override, message, key):
    """The schemas (dlrm/config.py) type every knob: Hydra refuses a wrong type itself."""
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException) as info:
        compose([override])
    text = f"{info.value} {info.value.__cause__}"
    assert message in text and key in text


@pytest.mark.parametrize("override", ["model.no_such_key=1", "trainer.debug_nan_at_step=3", "data.teacher_dim=8"])
def test_unknown_key_fails_at_composition(override):
    """trainer.debug_nan_at_step moved to the faults group (faults.nan_at_step); Criteo has no teacher."""
    from hydra.errors import ConfigCompositionException

    extra = ["data=criteo_kaggle"] if override.startswith("data.") else []
    with pytest.raises(ConfigCompositionException, match="Could not override"):
        compose(extra + [override])


def test_a_mistyped_sweep_name_is_refused_and_the_sweeps_are_listed(tmp_path):
    proc = cli(["sweep=dem", f"out_root={tmp_path}"], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert "Could not find 'sweep/dem'" in out
    for name in ("demo", "data", "embedding_dim", "paper"):
        assert f"\t{name}\n" in out
    assert not list(tmp_path.rglob("summary.json"))  # nothing trained


def test_schemas_and_yaml_agree_on_every_key():
    """Each option file sets every field of its group's schema: values live in configs/ only."""
    from dataclasses import fields

    from omegaconf import MISSING, OmegaConf

    from dlrm.config import GROUP_SCHEMAS

    for path in GROUP_FILES:
        group = path.parent.name
        if group not in GROUP_SCHEMAS:
            continue
        node = compose([f"{group}={path.stem}"])[group]
        schema_fields = {f.name for schema in GROUP_SCHEMAS[group].values() for f in fields(schema)}
        assert set(node.keys()) <= schema_fields, path
        missing = [k for k in node.keys() if OmegaConf.is_missing(node, k)]
        assert not missing, f"{path}: no value for {missing}"


def test_global_batch_not_divisible_by_world_size():
    with pytest.raises(ConfigError, match="not divisible by the world size 3"):
        validate(typed(["trainer.batch_size=512"]), 3, "cpu")


def test_bad_config_in_a_job_records_failure_and_never_completion(tmp_path):
    out = run_job(["model.embedding_dim=8", "model.dense_arch_layer_sizes=[64,16]"], tmp_path / "run")
    assert out["status"] == "failed"
    assert out["summary"]["status"] == "failed"
    assert "embedding dim" in out["summary"]["error"]
    assert not (tmp_path / "run" / "metrics.jsonl").exists()  # refused before any work


@pytest.mark.parametrize("override,message", [
    ("model.no_such_key=1", "Key 'no_such_key' not in 'ModelConfig'"),
    ("trainer.batch_size=[1,2]", "trainer.batch_size"),  # a list where an int belongs
    ("model.embedding_dim=abc", "Value 'abc' of type 'str' could not be converted to Integer"),
])
def test_unknown_key_and_wrong_type_from_the_command_line(tmp_path, override, message):
    proc = cli([override, f"out_root={tmp_path}"], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stderr + proc.stdout
    for summary in tmp_path.rglob("summary.json"):
        assert json.loads(summary.read_text())["status"] != "completed"


def test_slurm_launcher_config_composes():
    cfg = compose_hydra(["hydra/launcher=slurm", "launcher=torchrun", "launcher.nproc_per_node=8",
                         "hydra.launcher.partition=a100"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.tasks_per_node) == ("a100", 8, 1)
    assert launcher.timeout_min > 0 and launcher.signal_delay_s > 0
