"""The run-dir contract is written once: docs/RUNDIR.md lists exactly the contract's fields,
training writes exactly those, and the analysis imports neither torch nor dlrm."""
from __future__ import annotations

import re
import subprocess
import sys

import rundir
from harness import REPO


def test_the_doc_lists_exactly_the_contracts_fields():
    doc = (REPO / "docs" / "RUNDIR.md").read_text()
    section = doc.split("## summary.json")[1].split("## Eval points")[0]
    listed = set(re.findall(r"^\| `(\w+)` \|", section, flags=re.M))
    assert listed == set(rundir.SUMMARY_FIELDS) | set(rundir.FAILURE_FIELDS)


def test_a_completed_summary_has_exactly_the_contracts_fields(tmp_path):
    from harness import run_job

    s = run_job(["data.num_train_samples=4096", "data.num_eval_samples=4096"], tmp_path / "run")["summary"]
    assert s["status"] == "completed"
    assert set(s) == set(rundir.SUMMARY_FIELDS)


def test_the_training_library_never_imports_hydra_and_the_analysis_never_torch():
    code = ("import sys, importlib, pkgutil, dlrm, dlrm.data\n"
            "for m in pkgutil.walk_packages(dlrm.__path__, 'dlrm.'):\n"
            "    if m.name != 'dlrm.train':\n"
            "        importlib.import_module(m.name)\n"
            "assert 'hydra' not in sys.modules, [k for k in sys.modules if k.startswith('hydra')]\n"
            "assert 'runner' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    code = "import sys, analysis.__main__, analysis.pipeline, rundir\nassert 'torch' not in sys.modules and 'dlrm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_one_writer_builds_every_summary(tmp_path):
    """rundir.write_summary: the identity fields every summary opens with, then the ending's own."""
    import json

    import rundir

    run_dir = tmp_path / "d=8,seed=1"
    run_dir.mkdir()
    written = rundir.write_summary(run_dir, rundir.Status.FAILED, 1, error="ValueError: x", traceback="...")
    assert json.loads((run_dir / rundir.SUMMARY_FILE).read_text()) == written == {
        "rundir_version": rundir.RUNDIR_VERSION, "status": "failed", "run_name": "d=8,seed=1", "seed": 1,
        "error": "ValueError: x", "traceback": "..."}
    assert rundir.run_status(run_dir) == rundir.Status.FAILED
    assert set(written) <= set(rundir.SUMMARY_FIELDS) | set(rundir.FAILURE_FIELDS)
