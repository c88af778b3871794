"""Scaling-law analysis of DLRM run directories.

Reads run directories only (the contract in rundir/contract.py); it imports the
standard-library-only `rundir` package and never `dlrm` or torch, so it runs anywhere
numpy, scipy and matplotlib do.  Entry point: `python -m analysis SWEEP_DIR ... --out
OUT_DIR` (see docs/ANALYSIS.md).

Modules, in the order data flows through them: runs, points (loading); envelope, series
(grouping); linsolve, search, varpro, bootstrap, fit, determined, seeds, efficiency,
extrapolate, joint, plan (fitting and reading the fits); results, pipeline (the pure
analysis); records, fmt, conclusions, report, plots, outputs (writing); parallel (jobs
on the cores).  The known-law run dirs of the tests and the benchmark come from a fixture
writer that lives with the tests (tests/synthetic_runs.py), not here.
"""
