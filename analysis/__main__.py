"""`python -m analysis SWEEP_DIR [SWEEP_DIR ...] --out OUT_DIR` (also `dlrm-analyze`).

Reads run directories, fits the scaling laws, writes runs.csv, excluded.csv, fits.json,
joint.json, plan.json (with --target-ne), PNG plots and report.md.  Safe to re-run at
any time, also on a sweep still in progress (unfinished runs are listed, not fitted).
Exit status: 0 done, 2 bad input (no run dirs, no completed runs, bad option).
`python -m analysis plan SWEEP_DIR ... --budget-gpu-hours H`: the budget planner
(analysis.plan_cli); a sweep directory named `plan` is given as `./plan`.
"""
from __future__ import annotations

import os

# The fits are thousands of tiny array operations; OpenBLAS threads spinning between
# them only steal the few cores from numpy (measured 2-4x slower on 2 cores).  Set
# before numpy is imported; an explicit user setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dlrm-analyze",
        description="Fit NE = alpha * x^-beta + gamma scaling laws to DLRM run directories.")
    p.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR",
                   help="directories searched recursively for run dirs")
    p.add_argument("--out", required=True, type=Path, metavar="OUT_DIR", help="where outputs go")
    p.add_argument("--target-ne", type=float, action="append", default=[], metavar="NE",
                   help="plan for this target NE (repeatable)")
    p.add_argument("--metric", default="eval_ne", choices=("eval_ne", "eval_logloss"))
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples per fit (default 1000; 0 = no intervals)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the bootstrap (default 0)")
    p.add_argument("--huber-delta", type=float, default=0.01,
                   help="log-space residual where the Huber loss turns linear (default 0.01)")
    p.add_argument("--saturation-threshold", type=float, default=0.0015, metavar="NE",
                   help="NE gain per doubling (at the largest x) below which an axis counts as saturated "
                        "(default 0.0015, i.e. 0.005 per decade)")
    p.add_argument("--min-points", type=int, default=4, metavar="K",
                   help="distinct x values a series needs to be fitted (default 4, at least 4)")
    p.add_argument("--bytes-per-param", type=float, default=4.0,
                   help="embedding memory per parameter for planning (default 4: fp32)")
    p.add_argument("--axes", nargs="+", default=None, metavar="AXIS",
                   help="only these axes (default: all)")
    p.add_argument("--no-joint", action="store_true", help="skip the joint law NE(P, D)")
    p.add_argument("--jobs", type=int, default=None, metavar="J",
                   help="processes for the fits and plots (default: every core, or DLRM_ANALYSIS_JOBS)")
    p.add_argument("--no-intermediate", action="store_true",
                   help="use final evals only, not the intermediate evals of runs that allow them")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--budget-gpu-hours", type=float, default=None, metavar="H",
                   help="add to report.md where H GPU-hours would go (the planner's decision; "
                        "`python -m analysis plan` also writes the next sweep)")
    p.add_argument("--hardware", default="h100", help="device profile for --budget-gpu-hours (default h100)")
    p.add_argument("--gpus-per-node", type=int, default=8, metavar="G", help="devices the budget is spent on")
    p.add_argument("--no-floor-bound", action="store_true",
                   help="do not bound gamma (and E) below by a known floor (the planted world's Bayes floor)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["plan"]:  # `python -m analysis plan ...`: the budget planner
        from analysis.plan_cli import main as plan_main

        return plan_main(argv[1:])
    args = build_parser().parse_args(argv)
    from analysis.errors import AnalysisInputError
    from analysis.fit import FitSettings
    from analysis.out_dir import out_dir_problems
    from analysis.outputs import write_outputs
    from analysis.parallel import default_jobs
    from analysis.pipeline import analyze
    from analysis.results import Options
    from analysis.runs import load_runs
    from analysis.series import AXES

    problems = []
    if args.jobs is not None and args.jobs < 1:
        problems.append("--jobs must be >= 1")
    if args.bootstrap < 0:
        problems.append("--bootstrap must be >= 0")
    if args.huber_delta <= 0:
        problems.append("--huber-delta must be > 0")
    if args.min_points < 4:
        problems.append("--min-points must be >= 4 (three parameters plus one degree of freedom)")
    if any(not (t > 0) for t in args.target_ne):
        problems.append("--target-ne must be > 0")
    if args.axes and set(args.axes) - set(AXES):
        problems.append(f"unknown --axes {sorted(set(args.axes) - set(AXES))}; known: {', '.join(AXES)}")
    problems += out_dir_problems(args.out)
    if args.budget_gpu_hours is not None and not args.budget_gpu_hours > 0:
        problems.append("--budget-gpu-hours must be > 0")
    if args.gpus_per_node < 1:
        problems.append("--gpus-per-node must be >= 1")
    from analysis.hardware import PROFILES

    if args.hardware not in PROFILES:
        problems.append(f"unknown --hardware {args.hardware!r}: use one of {', '.join(PROFILES)}")
    if problems:
        for msg in problems:
            print(f"dlrm-analyze: error: {msg}", file=sys.stderr)
        return 2

    options = Options(
        metric=args.metric,
        fit=FitSettings(huber_delta=args.huber_delta, n_bootstrap=args.bootstrap,
                        min_distinct_x=args.min_points),
        seed=args.seed, targets=tuple(args.target_ne), saturation_threshold=args.saturation_threshold,
        bytes_per_param=args.bytes_per_param, axes=tuple(args.axes or AXES), joint=not args.no_joint,
        intermediate=not args.no_intermediate, jobs=args.jobs or default_jobs(),
        floor_bound=not args.no_floor_bound,
    )
    t0 = time.perf_counter()
    try:
        table = load_runs(args.sweep_dirs, metric=args.metric, intermediate=not args.no_intermediate)
        if args.budget_gpu_hours is not None:
            from analysis.cost import pricing_problems

            unpriced = pricing_problems(table.finals)
            if unpriced:  # before the fits: a refusal costs no work
                raise AnalysisInputError(unpriced[0])
        result = analyze(table, options)
    except AnalysisInputError as e:
        print(f"dlrm-analyze: error: {e}", file=sys.stderr)
        return 2
    written = write_outputs(result, args.out, make_plots=not args.no_plots)
    if args.budget_gpu_hours is not None:
        from analysis.hardware import profile
        from analysis.plan_cli import budget_payload, markdown

        payload, _, _ = budget_payload(result, profile(args.hardware), args.gpus_per_node, args.gpus_per_node,
                                       args.budget_gpu_hours)
        with open(args.out / "report.md", "a") as report:
            report.write("\n" + markdown(payload, title="##") + "\n")

    counts = table.counts()
    print("runs: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
          + (f"; {table.n_intermediate} intermediate eval points" if table.n_intermediate else ""))
    print(f"fits: {len(result.fitted)} series fitted ({len(result.determined)} determined), "
          f"{len(result.skipped)} skipped, {sum(j.fit is not None for j in result.joint)} joint laws "
          f"({sum(j.determined for j in result.joint)} determined)")
    if result.skipped:
        print(f"  {len(result.skipped)} series skipped (too few distinct x values or unfittable; "
              f"listed in report.md), e.g. {result.skipped[0].skipped}", file=sys.stderr)
    for row in table.excluded[:10]:
        print(f"  excluded: {row['run_name']}: {row['reason']}", file=sys.stderr)
    if len(table.excluded) > 10:
        print(f"  ... and {len(table.excluded) - 10} more excluded runs (excluded.csv)", file=sys.stderr)
    print(f"wrote {len(written)} files to {args.out} in {time.perf_counter() - t0:.1f} s "
          f"(report: {args.out / 'report.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
