"""analysis reads run dirs only: it must not pull in torch or the training library."""
import subprocess
import sys
from pathlib import Path


def test_analysis_imports_neither_torch_nor_dlrm():
    modules = sorted(f"analysis.{p.stem}" for p in Path(__file__).resolve().parents[2].joinpath("analysis").glob("*.py"))
    code = (f"import sys, {', '.join(modules)}; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'dlrm', 'torchrec')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_module_entry_point_runs(tmp_path):
    r = subprocess.run([sys.executable, "-m", "analysis", str(tmp_path), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "no run directories found" in r.stderr
