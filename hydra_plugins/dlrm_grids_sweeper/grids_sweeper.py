"""A Hydra sweeper over a union of grids: `hydra/sweeper=grids` (see runner/grids.py).

Hydra only instantiates sweepers that live in the `hydra_plugins` namespace package,
hence this small module; the expansion itself is `runner.grids.expand`.
"""

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore

from runner.grids import expand


@dataclass
class GridsSweeperConf:
    _target_: str = "hydra_plugins.dlrm_grids_sweeper.grids_sweeper.GridsSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, Any]] = None  # common to every grid
    grids: List[Dict[str, Any]] = field(default_factory=list)


ConfigStore.instance().store(group="hydra/sweeper", name="grids", node=GridsSweeperConf, provider="dlrm-scaling")


class GridsSweeper(BasicSweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 grids: Optional[List[Dict[str, str]]] = None) -> None:
        super().__init__(max_batch_size=max_batch_size, params=None)
        self.common = dict(params or {})
        self.grids = [dict(g) for g in (grids or [])]
        self._arguments: List[str] = []

    def sweep(self, arguments: List[str]) -> Any:
        from runner.report import record_outcome

        self._arguments = list(arguments)
        returns = super().sweep(arguments)
        for batch in returns:  # here, not only in on_job_end: a joblib job ends in its worker
            for job_return in batch:
                record_outcome(job_return)
        return returns

    def split_arguments(self, overrides: Any, max_batch_size: Optional[int]) -> List[List[List[str]]]:  # type: ignore[override]
        # BasicSweeper.sweep calls this with params + arguments parsed; expand the grids instead.
        jobs = expand(self.common, self.grids, self._arguments)
        return list(BasicSweeper.split_overrides_to_chunks(jobs, max_batch_size))
