"""The table of scaling axes (rundir.SCALING_AXES) is the one place an axis is declared:
run names, the analysis' series and joint laws, the report's words and the next sweep's
config keys derive from it.  The last test adds a made-up axis through the table alone
and sees it named, grouped and fitted."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rundir

REPO = Path(__file__).resolve().parents[2]


def test_every_axis_is_a_summary_field_with_a_unique_short_name():
    names = [a.run_name for a in rundir.SCALING_AXES]
    assert len(set(names)) == len(names)
    assert len({a.name for a in rundir.SCALING_AXES}) == len(rundir.SCALING_AXES)
    for a in rundir.SCALING_AXES:
        assert a.summary_field in rundir.SUMMARY_FIELDS, a
        assert a.kind in rundir.SCALING_AXIS_KINDS, a
        assert (a.joint_params_field is not None) == a.is_scheme, a
        assert all(p in rundir.SUMMARY_FIELDS for p in a.params_fields), a
        assert all(rundir.scaling_axis(m).is_scheme for m in a.moves), a
    assert rundir.data_axis().summary_field == "num_train_samples"


def test_every_config_key_is_a_key_of_the_composed_default_config():
    from omegaconf import OmegaConf

    from runner.compose import compose

    cfg = compose()
    for a in rundir.SCALING_AXES:
        assert OmegaConf.select(cfg, a.config_key, default="<absent>") != "<absent>", a.config_key


def test_the_models_formula_grows_every_scheme_of_the_table():
    from dlrm.model import SCALING_SCHEMES

    assert SCALING_SCHEMES == rundir.scaling_schemes()


def test_run_names_use_the_tables_short_names():
    from runner.naming import run_name

    assert run_name("data.num_train_samples=8192,model.embedding_dim=4,seed=1") == "n=8192,d=4,seed=1"
    assert run_name("model.dense_arch_width=32,model.over_arch_width=64") == "bottom=32,top=64"


def test_the_analysis_axes_derive_from_the_table():
    from analysis.conclusions import AXIS_WORDS
    from analysis.next_sweep import CONFIG_KEYS
    from analysis.pipeline import JOINT_P_FIELD
    from analysis.series import AXES, SCHEMES

    assert SCHEMES == ("embedding_dim", "dense_arch_width", "over_arch_width", "mlp_width")
    assert AXES["embedding_dim"].group_fields[-1] == "num_train_samples"
    assert "embedding_dim" not in AXES["embedding_dim"].group_fields
    # both MLPs' width moves the two widths: its series never holds them fixed
    assert not {"dense_arch_width", "over_arch_width"} & set(AXES["mlp_width"].group_fields)
    assert "mlp_depth" in AXES["data"].group_fields and "mlp_depth" not in AXES
    assert AXES["params_embedding"].schemes == ("embedding_dim",)
    assert JOINT_P_FIELD["embedding_dim"] == "params_total" and JOINT_P_FIELD["over_arch_width"] == "params_dense"
    assert AXIS_WORDS["over_arch_width"] == "Top MLP width"
    assert CONFIG_KEYS["num_train_samples"] == "data.num_train_samples" and "mlp_width" not in CONFIG_KEYS


# A made-up scheme, declared in the table only: the number of cross layers of a DCN.
_MADE_UP = textwrap.dedent('''
    import json, math, sys
    from pathlib import Path
    import numpy as np
    import rundir, rundir.contract as contract

    axis = contract.ScalingAxis("cross_layers", "cross_layers", "model.dcn_num_layers", "cross", "Cross layers",
                                "cross layers", "scheme", "params_dense", ("params_total", "params_dense"))
    contract.SCALING_AXES = rundir.SCALING_AXES = contract.SCALING_AXES[:-1] + (axis,) + contract.SCALING_AXES[-1:]

    sys.path.insert(0, sys.argv[3])  # tests/: the fixture writer lives with the tests
    from synthetic_runs import Config, SchemeWorld, v2_summary
    from runner.naming import run_name

    print("NAME", run_name("model.dcn_num_layers=4,seed=1"))
    world, root = SchemeWorld(), Path(sys.argv[1])
    n = 2 ** 20

    def write(config, cross, seed):
        s = v2_summary(world, config, n, seed, ne=1.0)
        noise = math.exp(0.002 * np.random.default_rng([seed, cross, config.emb]).normal())
        s["eval_ne"] = (world.ne(config.emb, config.w_bottom, config.w_top, n) + 0.08 * cross ** -0.5) * noise
        s["cross_layers"], s["run_name"] = cross, f"{config.name}_c{cross}_s{seed}"
        s["bayes_ne_realised"] = s["bayes_ne"]
        run_dir = root / s["run_name"]
        run_dir.mkdir(parents=True)
        (run_dir / rundir.CONFIG_FILE).write_text(f"model:\\n  dcn_num_layers: {cross}\\nseed: {seed}\\n")
        (run_dir / rundir.METRICS_FILE).write_text(json.dumps({
            "kind": rundir.POINT_EVAL, "step": n // 512, "samples_seen": n, "eval_ne": s["eval_ne"],
            "final": True}) + "\\n")
        (run_dir / rundir.SUMMARY_FILE).write_text(json.dumps(s))

    for seed in (0, 1, 2):
        for cross in (1, 2, 4, 8, 16, 32):
            write(Config(), cross, seed)
        for emb in (4, 8, 32, 64):  # an embedding-dim series at each of two cross values
            for cross in (1, 4):
                write(Config(emb=emb), cross, seed)

    from analysis.__main__ import main
    sys.exit(main([str(root), "--out", sys.argv[2], "--bootstrap", "200"]))
''')


@pytest.mark.timeout(300)
def test_a_made_up_axis_declared_in_the_table_is_named_grouped_and_fitted(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _MADE_UP, str(tmp_path / "runs"), str(tmp_path / "out"),
                           str(REPO / "tests")], cwd=REPO, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "NAME cross=4,seed=1" in proc.stdout
    fits = json.loads((tmp_path / "out" / "fits.json").read_text())
    cross = [f for f in fits if f["axis"] == "cross_layers"]
    assert len(cross) == 1 and cross[0]["determined"], cross
    lo, hi = cross[0]["ci95"]["beta"]
    assert lo <= 0.5 <= hi, (lo, hi)
    # the embedding-dim runs at two cross values are two series, not one pooled law
    emb = [f for f in fits if f["axis"] == "embedding_dim"]
    assert sorted(f["group"]["cross_layers"] for f in emb) == [1, 4]
    assert "Cross layers" in (tmp_path / "out" / "report.md").read_text()
