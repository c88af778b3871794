"""`python -m analysis plan SWEEP_DIR ... --budget-gpu-hours H --hardware h100 --out OUT_DIR`.

Fits the laws (as `python -m analysis` does), prices every way of spending H GPU-hours on
the given devices (analysis.budget, analysis.cost), states a decision per study (the runs of
one data), and where it is undecided writes the next sweep (analysis.next_sweep) to
configs/sweep/<name>.yaml.  Writes budget_plan.json, budget_plan.md and budget_plan.png to
OUT_DIR.  Exit status: 0 done, 2 bad input.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

CONFIG_SWEEPS = Path(__file__).resolve().parents[1] / "configs" / "sweep"


def build_parser() -> argparse.ArgumentParser:
    from analysis.hardware import PROFILES

    p = argparse.ArgumentParser(prog="dlrm-analyze plan",
                                description="Where the next GPU-hours go: the NE each allocation of a budget reaches.")
    p.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR", help="directories searched recursively for run dirs")
    p.add_argument("--budget-gpu-hours", type=float, required=True, metavar="H")
    p.add_argument("--hardware", default="h100", choices=sorted(PROFILES), help="device profile (default h100)")
    p.add_argument("--gpus-per-node", type=int, default=8, metavar="G")
    p.add_argument("--max-gpus", type=int, default=None, metavar="N",
                   help="devices the budget is spent on (default: one node, --gpus-per-node)")
    p.add_argument("--calibrate", nargs="+", default=None, metavar="RUNS_DIR",
                   help="fit the profile's efficiencies to run dirs made on that hardware first")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_DIR")
    p.add_argument("--sweep-name", default="next", help="name of the next sweep (configs/sweep/NAME.yaml)")
    p.add_argument("--sweep-hours", type=float, default=1.0, metavar="HOURS",
                   help="budget of the next sweep, in hours of the runs' own hardware (default 1)")
    p.add_argument("--no-sweep", action="store_true", help="do not write the next sweep")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples per fit")
    p.add_argument("--jobs", type=int, default=None, metavar="J")
    return p


def _problems(args) -> list[str]:
    out = []
    if not args.budget_gpu_hours > 0:
        out.append("--budget-gpu-hours must be > 0")
    if args.gpus_per_node < 1 or (args.max_gpus is not None and args.max_gpus < 1):
        out.append("--gpus-per-node and --max-gpus must be >= 1")
    if not args.sweep_hours > 0:
        out.append("--sweep-hours must be > 0")
    if not args.sweep_name.replace("_", "").replace("-", "").isalnum():
        out.append(f"--sweep-name {args.sweep_name!r}: use letters, digits, - and _ only")
    elif not args.no_sweep:
        from analysis.next_sweep import PLANNER_MARK

        path = CONFIG_SWEEPS / f"{args.sweep_name}.yaml"
        if path.exists() and PLANNER_MARK not in path.read_text():
            out.append(f"{path} exists and was not written by the planner: give another --sweep-name")
    return out


def budget_payload(result: Any, hw: Any, devices: int, per_node: int, gpu_hours: float) -> tuple[dict, list, list]:
    """Every allocation of `gpu_hours` and the decision per study, as plain data."""
    from analysis.budget import Budget, allocations, decide

    allocs, left = allocations(result, Budget(hw, devices, per_node), gpu_hours)
    payload: dict[str, Any] = {
        "budget_gpu_hours": gpu_hours, "devices": devices, "gpus_per_node": per_node,
        "wall_hours": gpu_hours / devices,
        "hardware": {"name": hw.name, "source": hw.source, "calibration": hw.calibration,
                     "efficiency": hw.efficiency.__dict__}, "studies": []}
    for study in sorted({a.study for a in allocs}):
        mine = [a for a in allocs if a.study == study]
        payload["studies"].append({"study": study, "decision": decide(mine), "allocations": [a.to_json() for a in mine],
                                   "left_out": [m for m in left if study in m]})
    return payload, allocs, left


def markdown(payload: dict[str, Any], title: str = "#") -> str:
    hw = payload["hardware"]
    lines = [f"{title} Where the next GPU hour goes ({payload['budget_gpu_hours']:g} GPU-hours)",
             "", f"On {payload['devices']} x {hw['name']} ({hw['source']}; efficiencies: {hw['calibration']}).",
             f"Wall time per allocation: {payload['wall_hours']:.3g} h.", ""]
    for st in payload["studies"]:
        lines += [f"{title}# Data {st['study']}", "", f"**Decision:** {st['decision']['words']}", "",
                  "| allocation | NE [95%] | size | x past the measured range | samples | memory (devices it needs) | note |",
                  "|---|---|---|---|---|---|---|"]
        for a in st["allocations"]:
            ci = f" [{a['ne_ci95'][0]:.4g}, {a['ne_ci95'][1]:.4g}]" if a["ne_ci95"] else ""
            flag = " (past the range)" if a["past_range"] else ""
            truth = ""
            if a.get("planted_limit") is not None:
                below = " -- the law promises less: it cannot hold" if a["ne"] < a["planted_limit"] else ""
                truth = f" (planted: {a['planted_limit_kind']} {a['planted_limit']:.4g}{below})"
            lines.append(f"| {a['name']} | {a['ne']:.4g}{ci}{truth} | {a['x_field']} {a['x']:.4g} | "
                         f"{a['beyond_factor']:.3g}x{flag} | {a['samples']:.3g} | {a['memory_gb']:.3g} GB ({a['devices_needed']}) | "
                         f"{a['note'] or ''} |")
        if st["left_out"]:
            lines += ["", "Left out: " + "; ".join(st["left_out"])]
        if st.get("next_sweep"):
            ns = st["next_sweep"]
            lines += ["", f"**The next sweep** ({ns['path']}, `python -m dlrm.train sweep={ns['name']}`), "
                          f"{ns['hours']:.3g} h on the runs' own hardware:"]
            lines += [f"- {c['kind']} for {c['allocation']}: {c['runs']} runs, expected narrowing of its "
                      f"interval {100 * c['narrowing']:.0f}% ({100 * c['narrowing_per_run']:.1f}% per run), "
                      f"{c['hours']:.3g} h" for c in ns["candidates"]]
        lines.append("")
    return "\n".join(lines)


def _plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    studies = payload["studies"]
    fig, axes = plt.subplots(1, max(len(studies), 1), figsize=(6 * max(len(studies), 1), 4.5), squeeze=False)
    for ax, st in zip(axes[0], studies):
        for a in st["allocations"]:
            c = a["curve"]
            ax.plot([p["gpu_hours"] for p in c], [p["ne"] for p in c], marker=".", label=a["name"][:60])
        ax.set_xscale("log")
        ax.set_xlabel("GPU-hours")
        ax.set_ylabel("NE (fitted law)")
        ax.set_title(f"data {st['study']}", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    problems = _problems(args)
    from analysis.out_dir import out_dir_problems

    problems += out_dir_problems(args.out)
    if problems:
        for m in problems:
            print(f"dlrm-analyze plan: error: {m}", file=sys.stderr)
        return 2
    from analysis.cost import calibrate, pricing_problems
    from analysis.errors import AnalysisInputError
    from analysis.fit import FitSettings
    from analysis.hardware import profile
    from analysis.next_sweep import plan_next, sweep_yaml, write_sweep
    from analysis.parallel import default_jobs
    from analysis.pipeline import analyze
    from analysis.results import Options
    from analysis.runs import load_runs

    t0 = time.perf_counter()
    hw = profile(args.hardware)
    try:
        if args.calibrate:
            hw = calibrate(hw, load_runs(args.calibrate, metric="eval_ne").finals,
                           args.gpus_per_node).hardware
        table = load_runs(args.sweep_dirs, metric="eval_ne")
        problems = pricing_problems(table.finals)
        if problems:
            raise AnalysisInputError(problems[0])
        result = analyze(table, Options(fit=FitSettings(n_bootstrap=args.bootstrap), jobs=args.jobs or default_jobs()))
    except (AnalysisInputError, ValueError) as e:
        print(f"dlrm-analyze plan: error: {e}", file=sys.stderr)
        return 2
    devices = args.max_gpus or args.gpus_per_node
    payload, allocs, left = budget_payload(result, hw, devices, args.gpus_per_node, args.budget_gpu_hours)
    args.out.mkdir(parents=True, exist_ok=True)
    studies = sorted({a.study for a in allocs})
    for entry in payload["studies"]:
        study, decision = entry["study"], entry["decision"]
        mine = [a for a in allocs if a.study == study]
        chosen = [] if args.no_sweep else plan_next(result, mine, decision, args.sweep_hours)
        if chosen:
            name = args.sweep_name if len(studies) == 1 else f"{args.sweep_name}_{study[-8:]}"
            path = CONFIG_SWEEPS / f"{name}.yaml"
            about = (f"The next sweep, written by `python -m analysis plan` for a budget of "
                     f"{args.budget_gpu_hours:g} GPU-hours on {hw.name}:\n{decision['words'][:300]}\n"
                     f"Its runs most narrow that decision's intervals within {args.sweep_hours:g} h of the runs' "
                     f"own hardware.  Run: python -m dlrm.train sweep={name}")
            why = write_sweep(path, sweep_yaml(name, chosen, about))
            if why:
                print(f"dlrm-analyze plan: error: {why}", file=sys.stderr)
                return 2
            entry["next_sweep"] = {"name": name, "path": str(path), "hours": sum(c.hours for c in chosen),
                                   "candidates": [{"allocation": c.allocation, "kind": c.kind, "runs": len(c.runs),
                                                   "narrowing": c.narrowing, "narrowing_per_run": c.per_run,
                                                   "hours": c.hours} for c in chosen]}
    (args.out / "budget_plan.json").write_text(json.dumps(payload, indent=1, default=float))
    (args.out / "budget_plan.md").write_text(markdown(payload))
    _plot(payload, args.out / "budget_plan.png")
    for st in payload["studies"]:
        print(f"data {st['study']}: {st['decision']['words']}")
        if st.get("next_sweep"):
            print(f"  next sweep: {st['next_sweep']['path']} (python -m dlrm.train sweep={st['next_sweep']['name']})")
    if not payload["studies"]:
        print("no determined law to plan with: " + "; ".join(left[:3]))
    print(f"wrote budget_plan.json, budget_plan.md, budget_plan.png to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0
