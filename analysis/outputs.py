"""Write an Analysis to OUT_DIR: runs.csv, excluded.csv, fits.json, joint.json,
plan.json (with targets), lr_envelope.json (when learning rates were tuned), the PNG
plots and report.md."""
from __future__ import annotations

from pathlib import Path

from analysis.records import fit_record, joint_record, write_json
from analysis.results import Analysis
from analysis.runs import write_rows_csv


def write_outputs(a: Analysis, out_dir: Path, make_plots: bool = True) -> list[Path]:
    """Every output file; returns the paths written."""
    from analysis import plots, report  # matplotlib only when writing

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def out(name: str) -> Path:
        written.append(out_dir / name)
        return out_dir / name

    write_rows_csv(a.table.points, out("runs.csv"))
    write_rows_csv(a.table.excluded + a.table.refused, out("excluded.csv"),
                   leading=("run_name", "state", "reason", "run_dir"))
    write_json([fit_record(r, a.options) for r in a.fitted], out("fits.json"))
    write_json([joint_record(j, a.options) for j in a.joint], out("joint.json"))
    if a.options.targets:
        write_json(a.plans, out("plan.json"))
    if a.lr_envelope:
        write_json(a.lr_envelope, out("lr_envelope.json"))
    figures = plots.write_all(a, out_dir) if make_plots else []
    written += figures
    out("report.md").write_text(report.render(a, [p.name for p in figures]))
    return written
