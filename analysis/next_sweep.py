"""The next sweep, written for the user: the runs that most narrow an undecided decision.

For the two allocations that an undecided decision cannot tell apart (the best and the
first whose interval overlaps it), and so for their two laws, the candidates are:

- a larger size, where the allocation lies past the measured range (its interval is the
  extrapolation's): the series' seeds at 2x and 4x its largest size;
- more seeds, where it lies inside: three new seeds at the series' two largest sizes
  (the seed bootstrap's interval narrows with the seeds).

Each candidate's expected narrowing is simulated (a preposterior check): its runs are drawn
from the law itself, with the between-seed spread measured, the law refitted with the
same settings and the allocation's interval measured again (the median over draws).  Each
candidate's cost is priced by the cost model on the runs' own hardware (a profile
calibrated on them).  Candidates are taken in order of narrowing per hour until the budget
of hours is spent.

The sweep is a Hydra config (configs/sweep/<name>.yaml, the grids sweeper) that `python -m
dlrm.train sweep=<name>` runs as is: every grid entry gives the data, the model's sizes,
the seeds, and every other value in which the runs' config.yaml differs from the default
composition, so the new runs are the old runs' siblings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import yaml
from omegaconf import OmegaConf

import rundir
from analysis.budget import Allocation, WorkloadModel, final_runs
from analysis.cost import Hardware, calibrate, seconds_per_sample
from analysis.fit import FitSettings, fit_power_law
from analysis.hardware import profile
from analysis.results import Analysis, SeriesResult

# The sizes each new run sets from its base run (a scheme that moves others is set through
# them; the shape values come with the base run's config differences).
CONFIG_KEYS = {a.summary_field: a.config_key for a in rundir.SCALING_AXES if a.kind != "shape" and not a.moves}
NEW_SEEDS = 3
SIMULATIONS = 5
SIM_BOOTSTRAP = 200
PLANNER_MARK = "written by `python -m analysis plan`"  # in every sweep the planner writes
_MAD = 1.4826  # a normal's standard deviation per median absolute deviation


@dataclass
class Candidate:
    allocation: str
    law: SeriesResult
    kind: str  # "a larger size" | "more seeds"
    points: list[tuple[float, int]]  # (x, seed)
    narrowing: float  # expected fraction of the allocation's interval width removed
    hours: float  # on the runs' own hardware

    runs: list[tuple[float, int]] = None  # type: ignore[assignment]  # (x, seed) of each run

    @property
    def per_run(self) -> float:
        return self.narrowing / max(len(self.runs or self.points), 1)


def _width(fit, x: float) -> float:
    lo, hi = fit.interval(fit.predict_boot([x])[:, 0], float(fit.predict(x)), 0.0)
    return float(hi - lo)


def _size(axis_field: str, v: float) -> float:
    if axis_field == "embedding_dim":
        return float(max(4, int(round(v / 4)) * 4))  # FBGEMM's tables take multiples of 4
    return float(int(round(v)))


def _candidates_for(res: SeriesResult, alloc: Allocation) -> list[tuple[str, list[tuple[float, int]]]]:
    """(kind, the points it adds): a new seed covers every size of the series, as the old
    seeds do (a seed is a resampling block of the bootstrap)."""
    s = res.series
    seeds = sorted({int(r["seed"]) for r in s.runs if r.get("seed") is not None})[:NEW_SEEDS] or [0]
    xs = sorted(set(float(v) for v in s.x))
    out = []
    if alloc.past_range:
        out.append(("a larger size", [(_size(s.axis.x_field, f * xs[-1]), sd) for f in (2, 4) for sd in seeds]))
    first_new = max(int(r.get("seed") or 0) for r in s.runs) + 1
    out.append(("more seeds", [(x, sd) for x in xs for sd in range(first_new, first_new + NEW_SEEDS)]))
    return out


def runs_of(res: SeriesResult, points: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """The runs that give `points`: on the data axis one run per seed, at its largest size
    (its intermediate evals give the smaller ones)."""
    if res.series.axis.name != "data":
        return sorted(set(points))
    top: dict[int, float] = {}
    for x, sd in points:
        top[sd] = max(top.get(sd, 0.0), x)
    return sorted((x, sd) for sd, x in top.items())


def _narrowing(res: SeriesResult, points: list[tuple[float, int]], x_at: float, seed: int) -> float:
    s, fit = res.series, res.fit
    settings = FitSettings(n_bootstrap=SIM_BOOTSTRAP)
    floor = res.floor
    blocks = s.blocks()
    seed_ids = {("seed", r.get("seed")): b for r, b in zip(s.runs, blocks)}
    new_blocks = np.array([seed_ids.setdefault(("seed", sd), len(seed_ids) + 1000) for _, sd in points])
    old = fit_power_law(s.x, s.y, settings, seed=seed, blocks=blocks, floor=floor)
    w_old = _width(old, x_at)
    # New seeds are drawn as the old ones scatter about the law: an offset per seed (shared
    # along its trajectory) plus each point's own noise; robust scales (MAD), as the Huber
    # fit itself discounts an outlying point.
    resid = s.y - fit.predict(s.x)
    per_block = {b: float(np.median(resid[blocks == b])) for b in np.unique(blocks)}
    offsets_seen = np.array(list(per_block.values()))
    between = _MAD * float(np.median(np.abs(offsets_seen - np.median(offsets_seen))))
    within = _MAD * float(np.median(np.abs(resid - np.array([per_block[b] for b in blocks]))))
    rng = np.random.default_rng(seed)
    widths = []
    x_new = np.array([p[0] for p in points])
    for _ in range(SIMULATIONS):
        offsets = {b: rng.normal(0.0, between) for b in np.unique(new_blocks)}
        y_new = fit.predict(x_new) + np.array([offsets[b] for b in new_blocks]) + rng.normal(0.0, within, len(points))
        joined = np.unique(np.concatenate([blocks, new_blocks]), return_inverse=True)[1]  # blocks 0..n-1
        f = fit_power_law(np.concatenate([s.x, x_new]), np.concatenate([s.y, y_new]), settings, seed=seed,
                          blocks=joined, floor=floor)
        widths.append(_width(f, x_at))
    return float(1 - np.median(widths) / w_old) if w_old > 0 else 0.0


def _runs_hardware(res: SeriesResult) -> Hardware:
    finals = final_runs(res.series.runs)
    try:
        return calibrate(profile("cpu"), finals, name="the runs' own").hardware
    except ValueError:
        return profile("cpu")


def _hours(res: SeriesResult, points: list[tuple[float, int]], hw: Hardware) -> float:
    finals = final_runs(res.series.runs)
    x_field = res.series.axis.x_field
    model = WorkloadModel(finals, x_field, 4.0)
    samples_fixed = float(np.median([r["num_train_samples"] for r in finals]))
    total = 0.0
    for x, _ in points:
        samples = x if x_field == "num_train_samples" else samples_fixed
        total += samples * seconds_per_sample(model.at(x), hw)["total"] / 3600
    return total


def plan_next(analysis: Analysis, study_allocs: list[Allocation], decision: dict[str, Any],
              budget_hours: float, seed: int = 0) -> list[Candidate]:
    """The candidates chosen within `budget_hours` on the runs' own hardware, best first."""
    if decision.get("decided") or not decision.get("overlapping"):
        return []
    by_label = {r.series.label: r for r in analysis.series if r.determined}
    pair = [a for a in study_allocs if a.name in (decision["best"], decision["overlapping"][0])]
    cands: list[Candidate] = []
    for a in pair:
        res = by_label.get(a.law)
        if res is None:  # a joint law: its crossing design is the data and embedding grids
            continue
        hw = _runs_hardware(res)
        for kind, points in _candidates_for(res, a):
            runs = runs_of(res, points)
            cands.append(Candidate(a.name, res, kind, points, _narrowing(res, points, a.x, seed),
                                   _hours(res, runs, hw), runs))
    cands.sort(key=lambda c: -c.narrowing / max(c.hours, 1e-9))
    chosen, spent = [], 0.0
    for c in cands:
        if c.narrowing > 0 and spent + c.hours <= budget_hours:
            chosen.append(c)
            spent += c.hours
    return chosen


def _config_differences(run_dir: Path) -> dict[str, Any]:
    """Every leaf of the run's config.yaml that differs from the default composition with the
    same data, as override values (the sizes and the seed left to the grid)."""
    from runner.compose import compose

    try:
        cfg = OmegaConf.to_container(OmegaConf.load(run_dir / rundir.CONFIG_FILE), resolve=True)
        data_name = cfg["data"]["name"]
    except (OSError, KeyError, TypeError):
        return {}  # not a config the app wrote (runs made elsewhere): the sizes and seeds alone
    base = OmegaConf.to_container(compose([f"data={data_name}"]), resolve=True)
    out: dict[str, Any] = {"data": data_name}

    def walk(prefix: str, a: Any, b: Any) -> None:
        if isinstance(a, dict):
            for k, v in a.items():
                walk(f"{prefix}.{k}" if prefix else k, v, b.get(k) if isinstance(b, dict) else None)
        elif a != b:
            out[prefix] = a
    for group in ("model", "data", "trainer", "sharding"):
        walk(group, cfg.get(group, {}), base.get(group, {}))
    for key in ("seed", "sweep_name", "retry_failed", *CONFIG_KEYS.values()):
        out.pop(key, None)
    return out


def _override_value(v: Any) -> Any:
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(str(_override_value(x)) for x in v) + "]"
    return v


def sweep_yaml(name: str, chosen: list[Candidate], about: str) -> str:
    grids = []
    for c in chosen:
        finals = final_runs(c.law.series.runs)
        base_run = max(finals, key=lambda r: r["num_train_samples"])  # with its intermediate evals, if any
        entry = {k: _override_value(v) for k, v in _config_differences(Path(base_run["run_dir"])).items()}
        for field_, key in CONFIG_KEYS.items():
            entry[key] = int(base_run[field_])
        for x in sorted({p[0] for p in c.runs}):
            seeds = sorted({sd for xx, sd in c.runs if xx == x})
            grids.append({**entry, CONFIG_KEYS[c.law.series.axis.x_field]: int(x),
                          "seed": ",".join(str(s) for s in seeds)})
    doc = {"defaults": [{"override /hydra/sweeper": "grids"}, {"override /hydra/launcher": "joblib"}],
           "sweep_name": name, "hydra": {"mode": "MULTIRUN", "sweeper": {"grids": grids}}}
    header = "# @package _global_\n" + "".join(f"# {line}\n" for line in about.splitlines())
    return header + yaml.safe_dump(doc, sort_keys=False)


def write_sweep(path: Path, text: str) -> Optional[str]:
    """Writes the sweep; refuses to replace a file it did not write (returns why)."""
    if path.exists() and PLANNER_MARK not in path.read_text():
        return f"{path} exists and was not written by the planner: give another --sweep-name"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return None
