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
