"""Scaling-law analysis of DLRM run directories.

Reads run directories only (the contract in DESIGN.md, "The run directory"); it
never imports `dlrm` or torch, so it runs anywhere numpy, scipy and matplotlib do.
Entry point: `python -m analysis SWEEP_DIR ... --out OUT_DIR` (see docs/ANALYSIS.md).
"""
