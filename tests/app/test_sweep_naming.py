"""Run names (runner/naming.py): stable, short, safe directory names from a run's overrides,
and the config diff that decides whether a run dir may be resumed.  Pure functions: fast."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from harness import compose
from runner.naming import RESULT_NEUTRAL_KEYS, result_relevant_diff, run_name


def _dirname(overrides: list[str]) -> str:
    """The run dir name Hydra gives a job with these overrides (the config's own hydra.run.dir)."""
    cfg = compose(overrides, with_hydra=True)
    return cfg.hydra.run.dir.rsplit("/", 1)[-1]


# --- run_name ---------------------------------------------------------------------------------

def test_well_known_keys_get_short_names():
    assert run_name("data.num_train_samples=8192,model.embedding_dim=4,model.mlp_width=64") == "n=8192,d=4,w=64"
    assert run_name("model.mlp_depth=3") == "depth=3"
    assert run_name("model=dcn,seed=7") == "model=dcn,seed=7"
    # Other keys are kept whole: the name still says what the run is.
    assert run_name("trainer.embedding_lr=0.01") == "trainer.embedding_lr=0.01"


def test_no_overrides_is_default_and_names_are_deterministic():
    assert run_name("") == "default"
    s = "data.num_train_samples=8192,model.embedding_dim=4"
    assert run_name(s) == run_name(s) == "n=8192,d=4"  # no timestamp, no counter


def test_names_follow_sorted_keys_whatever_the_command_line_order():
    a = _dirname(["model.embedding_dim=8", "data.num_train_samples=4096", "model.mlp_width=16"])
    b = _dirname(["model.mlp_width=16", "model.embedding_dim=8", "data.num_train_samples=4096"])
    assert a == b == "n=4096,d=8,w=16"


def test_result_neutral_and_launch_keys_stay_out_of_the_name():
    plain = _dirname(["data.num_train_samples=4096"])
    noisy = _dirname(["data.num_train_samples=4096", "out_root=/tmp/elsewhere", "sweep_name=other",
                      "retry_failed=true", "launcher=torchrun", "launcher.nproc_per_node=4",
                      "trainer.progress_bar=false", "trainer.log_every_samples=4096"])
    assert plain == noisy == "n=4096"


def test_append_prefix_is_dropped():
    assert run_name("+model.extra=1") == "model.extra=1"
    assert run_name("+data.num_train_samples=1024") == "n=1024"


@pytest.mark.parametrize("dirname", [
    "+data.path=/data/criteo day_0",
    "+tag='a b'",
    "+tag=../../etc/passwd",
    "+tag={a:1,b:2}",
    "+tag=x*y?z|w<v>u\"t\\s:r",
])
def test_unsafe_characters_give_one_safe_path_component(dirname):
    name = run_name(dirname)
    assert "/" not in name and "\\" not in name and " " not in name
    assert all(c.isalnum() or c in "_.,=+-" for c in name), name
    assert name not in ("", ".", "..")


def test_unsafe_characters_through_hydra():
    assert _dirname(["trainer.device='/data/x y'"]) == "trainer.device=__data_x_y_"


def test_hydras_exclude_keys_are_the_result_neutral_keys():
    """One list: every result-neutral key (and each field of a neutral group) is left out of
    run names, and nothing else is."""
    from runner.naming import override_exclude_keys

    keys = set(compose([], with_hydra=True).hydra.job.config.override_dirname.exclude_keys)
    assert keys == set(override_exclude_keys())
    assert set(RESULT_NEUTRAL_KEYS) <= keys and "launcher.nproc_per_node" in keys
    assert _dirname(["data=criteo_kaggle", "data.path=/somewhere/else"]) == "data=criteo_kaggle"
    assert all(k.split(".")[0] in {"out_root", "sweep_name", "retry_failed", "launcher", "trainer", "data",
                                   "sweep", "hydra", "hydra/launcher", "faults"} for k in keys)


def test_list_values_stay_whole_and_distinct():
    # Hydra joins overrides with ",", so a list value arrives split at its commas.
    a = run_name("model.dense_arch_layer_sizes=[64,32,8],model.embedding_dim=8")
    b = run_name("model.dense_arch_layer_sizes=[64,32],model.embedding_dim=8")
    assert a == "model.dense_arch_layer_sizes=_64,32,8_,d=8"
    assert b == "model.dense_arch_layer_sizes=_64,32_,d=8"
    assert _dirname(["model.dense_arch_layer_sizes=[64,32,8]", "model.embedding_dim=8"]) == a
    # List elements are values, never mistaken for keys to shorten.
    assert run_name("model.over_arch_layer_sizes=[seed,1]") == "model.over_arch_layer_sizes=_seed,1_"


def test_names_fit_a_directory_entry():
    long = ",".join(f"+key_{i:03d}=value_{i:03d}" for i in range(40))
    assert len(run_name(long)) <= 200  # under the 255-byte file-name limit


def test_long_names_stay_distinct():
    common = ",".join(f"+key_{i:03d}=value_{i:03d}" for i in range(20))  # > 200 characters
    a, b = run_name(common + ",seed=1"), run_name(common + ",seed=2")
    assert len(a) <= 200 and len(b) <= 200
    assert a != b


# --- result_relevant_diff ------------------------------------------------------------------------

def _cfg(*overrides: str):
    return compose(list(overrides))


def test_same_config_has_no_diff():
    assert result_relevant_diff(_cfg(), _cfg()) == []


def test_diff_names_each_result_relevant_key_with_both_values():
    old = _cfg("model.mlp_width=8", "data.num_train_samples=1024")
    new = _cfg("model.mlp_width=16", "data.num_train_samples=2048")
    assert result_relevant_diff(old, new) == ["data.num_train_samples: 1024 -> 2048", "model.mlp_width: 8 -> 16"]


def test_list_and_absent_keys_are_compared():
    old = OmegaConf.create({"model": {"dense_arch_layer_sizes": [64, 8]}, "seed": 0})
    new = OmegaConf.create({"model": {"dense_arch_layer_sizes": [64, 16]}, "seed": 0, "extra": 1})
    assert result_relevant_diff(old, new) == ["extra: <absent> -> 1",
                                              "model.dense_arch_layer_sizes: [64, 8] -> [64, 16]"]


def test_a_config_written_before_a_key_existed_is_the_run_of_its_old_value():
    old = OmegaConf.to_container(_cfg(), resolve=True)
    del old["model"]["dense_arch_output"]  # as a config.yaml written before the knob existed
    assert result_relevant_diff(OmegaConf.create(old), _cfg()) == []
    assert result_relevant_diff(OmegaConf.create(old), _cfg("model.dense_arch_output=linear")) == [
        "model.dense_arch_output: relu -> linear"]


def test_a_config_written_under_a_renamed_group_is_the_same_run():
    old = OmegaConf.to_container(_cfg(), resolve=True)
    old["debug"] = old.pop("faults")  # as a config.yaml written when fault injection was `debug`
    assert result_relevant_diff(OmegaConf.create(old), _cfg()) == []
    old["debug"]["nan_update_only"] = True  # a changed value under the old name still counts
    assert result_relevant_diff(OmegaConf.create(old), _cfg()) == ["faults.nan_update_only: True -> False"]


def test_result_neutral_keys_are_ignored():
    old = _cfg("model.mlp_width=8")
    new = _cfg("model.mlp_width=8", "out_root=/elsewhere", "sweep_name=other", "retry_failed=true",
               "launcher=torchrun", "trainer.log_every_samples=4096", "trainer.progress_bar=false",
               "trainer.eval_batch_size=1024", "trainer.num_threads=1", "trainer.prefetch_batches=2")
    assert result_relevant_diff(old, new) == []
    assert {"out_root", "sweep_name", "retry_failed", "launcher"} <= set(RESULT_NEUTRAL_KEYS)


def test_resolved_values_are_compared_not_interpolations():
    old = OmegaConf.create({"a": 4, "b": "${a}"})
    new = OmegaConf.create({"a": 4, "b": 4})
    assert result_relevant_diff(old, new) == []
    assert result_relevant_diff(old, OmegaConf.create({"a": 8, "b": "${a}"})) == ["a: 4 -> 8", "b: 4 -> 8"]
