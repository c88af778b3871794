"""The learning-rate envelope: the best learning rate per point and per seed.

Tuning the learning rate at every scale is standard practice, and a rate fixed at the
value that suits small models can make a larger one look saturated.  When a sweep holds
several learning rates at one point (same config, data size and seed apart from
`embedding_lr` / `dense_lr`), the analysis keeps the run with the lowest metric and
records which rate won where; a winner at the edge of the rates tried says the range
should be widened there.  Optimiser, batch size, warm-up and schedule are not tuned
here: runs that differ in those are different configs.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

import rundir
from analysis.points import IDENTITY_FIELDS, identity

LR_FIELDS = ("embedding_lr", "dense_lr")
_POINT_FIELDS = tuple(f for f in IDENTITY_FIELDS if f not in LR_FIELDS + ("seed",))


def _lr(record: dict) -> tuple:
    return tuple(record.get(f) for f in LR_FIELDS)


def _lr_text(lr: tuple) -> str:
    emb, dense = lr
    return f"{emb:g}" if emb == dense and emb is not None else f"emb {emb}, dense {dense}"


def lr_envelope(points: list[dict], metric: str) -> tuple[list[dict], list[dict[str, Any]]]:
    """(points with one learning rate per (point, seed), one row per tuned grid point)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in points:
        key = tuple(v for f, v in zip(IDENTITY_FIELDS, identity(r)) if f not in LR_FIELDS)
        groups[(key, r.get("num_train_samples"))].append(r)
    kept, tuned = [], defaultdict(lambda: {"winners": {}, "lrs": set(), "runs": 0})
    for (key, n), runs in groups.items():
        lrs = {_lr(r) for r in runs}
        best = min(runs, key=lambda r: r[metric])
        kept.append(best)
        if len(lrs) < 2:
            continue
        point_key = (tuple(v for f, v in zip(IDENTITY_FIELDS, identity(best))
                           if f not in LR_FIELDS + ("seed",)), n)
        row = tuned[point_key]
        row["example"] = best
        row["lrs"] |= lrs
        row["runs"] += len(runs)
        row["winners"][best.get("seed")] = _lr(best)
    rows = []
    for (key, n), row in tuned.items():
        lrs = sorted(row["lrs"], key=lambda t: tuple(-1 if v is None else v for v in t))
        winners = list(row["winners"].values())
        edge = [w for w in winners if w in (lrs[0], lrs[-1])]
        ex = row["example"]
        rows.append({
            "point": {f: ex.get(f) for f in _POINT_FIELDS if ex.get(f) is not None} | {"num_train_samples": n},
            "label": " ".join([str(ex.get("model"))] + [f"{a.run_name}={ex.get(a.summary_field)}" for a in rundir.model_sizes()]
                              + [f"N={n}"]),
            "learning_rates": [list(t) for t in lrs],
            "winner_per_seed": {str(s): list(w) for s, w in row["winners"].items()},
            "winner_text": ", ".join(sorted({_lr_text(w) for w in winners})),
            "tried_text": ", ".join(_lr_text(t) for t in lrs),
            "winner_at_edge": bool(edge),
            "n_runs": row["runs"],
        })
    rows.sort(key=lambda r: r["label"])
    return kept, rows
