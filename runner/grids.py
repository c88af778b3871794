"""The job expansion of the `grids` sweeper (hydra_plugins/dlrm_grids_sweeper).

Hydra's basic sweeper runs one Cartesian product.  A scaling study wants several
products at once -- the data axis at two model sizes, the width axis at the largest
data size, ... -- without training the same point twice.  This sweeper is Hydra's basic
sweeper with `grids`: a list of `params`-style dicts, each expanded as a product; jobs
are their union, in order, each point once.  Precedence for a key: the command line, then
the grid, then the common `params`.  Launchers, callbacks, run dirs and
`hydra.sweep.subdir` behave exactly as under the basic sweeper.
"""
from __future__ import annotations

from typing import Any, Dict, List

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser


def _key(override: Any) -> str:
    return override.get_key_element()


def expand(params: Dict[str, str], grids: List[Dict[str, str]], arguments: List[str]) -> List[List[str]]:
    """Every job's overrides: the union over grids of params x grid x command line."""
    parser = OverridesParser.create()
    common = parser.parse_overrides([f"{k}={v}" for k, v in (params or {}).items()])
    cli = parser.parse_overrides(list(arguments))
    jobs: List[List[str]] = []
    seen = set()
    for grid in grids or [{}]:
        merged: Dict[str, Any] = {_key(o): o for o in common}
        merged.update({_key(o): o for o in parser.parse_overrides([f"{k}={v}" for k, v in grid.items()])})
        merged.update({_key(o): o for o in cli})
        for job in BasicSweeper.split_arguments(list(merged.values()), None)[0]:
            identity = tuple(sorted(job))
            if identity not in seen:
                seen.add(identity)
                jobs.append(job)
    return jobs
