"""The data axis from one run: intermediate eval points of metrics.jsonl.

A completed run whose summary says `intermediate_evals_usable: true` (its learning-rate
schedule does not depend on N, so the model after n samples is the model an n-sample run
of the same seed and config ends with) contributes every eval point of its metrics.jsonl
as a data point at num_train_samples = samples_seen (train_flops = flops_per_sample x
samples_seen), marked `intermediate` with its `source_run`.  An eval point is a line with
`"kind": "eval"` (version 2), or, in version-1 files, any line holding `eval_ne`; the
final one (`"final": true`, or the last eval line of a version-1 file) is the summary
itself.  Without the flag the points are refused, one row per run, with the reason.

When an intermediate point and a separate run of the same seed and config at the same n
both exist, the separate run's final eval is kept; of two intermediate points of one
(config, seed, n) the one of the longest run is kept.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

import rundir

from analysis.values import finite_number, freeze

# A point's identity apart from its N: runs that agree here are one trajectory per seed.
IDENTITY_FIELDS = (
    "model", "data_id", *(a.summary_field for a in rundir.SCALING_AXES if a.kind != "data"),
    "dense_arch_layer_sizes", "over_arch_layer_sizes", "dense_arch_output", "batch_size", "embedding_optimizer", "embedding_lr",
    "dense_optimizer", "dense_lr", "lr_warmup_samples", "lr_schedule", "dense_precision", "seed",
)
# Fields of the final summary that describe the whole run, not the model after n samples.
_RUN_ONLY_FIELDS = ("wall_seconds", "setup_seconds", "train_seconds", "train_loss_last",
                    "checkpoints_written", "checkpoint_seconds", "resumed_from_samples", "steps")
REFUSED_REASON = ("intermediate_evals_usable is not true in its summary: the learning-rate "
                  "schedule depends on N, so an eval after n samples is not an n-sample run")


def identity(record: dict) -> tuple:
    return tuple(freeze(record.get(f)) for f in IDENTITY_FIELDS)


def eval_points(run_dir) -> list[dict]:
    """The eval points of a run's metrics.jsonl, in order, each with `final` set."""
    points = []
    for p in rundir.iter_points(run_dir):
        kind = p.get("kind")
        if kind == rundir.POINT_EVAL or (kind is None and "eval_ne" in p):
            points.append(p)
    if points and not any("final" in p for p in points):  # version 1: the last one is final
        for p in points:
            p["final"] = False
        points[-1]["final"] = True
    return points


def _intermediate_record(final: dict, point: dict, metric: str) -> Optional[dict]:
    samples = finite_number(point.get("samples_seen"))
    value = finite_number(point.get(metric))
    if samples is None or samples <= 0 or value is None or value <= 0:
        return None
    rec = {k: v for k, v in final.items() if not k.startswith("eval_") and k not in _RUN_ONLY_FIELDS}
    rec.update({k: v for k, v in point.items() if k.startswith("eval_")})
    rec[metric] = value
    rec["num_train_samples"] = int(samples) if float(samples).is_integer() else samples
    fps = finite_number(final.get("flops_per_sample"))
    rec["train_flops"] = fps * samples if fps is not None else None
    rec["step"] = point.get("step")
    rec["intermediate"] = True
    rec["source_run"] = final["run_name"]
    rec["run_name"] = f"{final['run_name']}@{rec['num_train_samples']}"
    return rec


def add_intermediate_points(table) -> None:
    """Append the usable intermediate points of every completed run to `table.points`
    (an analysis.runs.RunTable), refusing those of runs that do not allow them
    (`table.refused`)."""
    metric = table.metric
    finals = list(table.points)
    final_keys = {(identity(r), r.get("num_train_samples")): r for r in finals}
    candidates: dict[tuple, dict] = {}
    agreement = []
    for final in finals:
        evals = [p for p in eval_points(final["run_dir"]) if not p.get("final")]
        if not evals:
            continue
        if final.get("intermediate_evals_usable") is not True:
            seen = [p.get("samples_seen") for p in evals]
            table.refused.append({
                "run_name": final["run_name"], "state": "intermediate_refused", "run_dir": final["run_dir"],
                "n_points": len(evals), "reason": f"{len(evals)} intermediate evals (samples_seen "
                f"{min(seen)}..{max(seen)}) not used: {REFUSED_REASON}"})
            continue
        for p in evals:
            rec = _intermediate_record(final, p, metric)
            if rec is None:
                continue
            key = (identity(rec), rec["num_train_samples"])
            if key in final_keys:  # a separate run of this n exists: it is the point
                other = final_keys[key][metric]
                agreement.append(abs(rec[metric] - other) / other)
                continue
            kept = candidates.get(key)
            if kept is None or (final.get("num_train_samples") or 0) > (kept["_source_n"] or 0):
                rec["_source_n"] = final.get("num_train_samples")
                candidates[key] = rec
    for rec in candidates.values():
        rec.pop("_source_n", None)
        table.points.append(rec)
    if agreement:
        worst = float(np.max(agreement))
        table.notes.append(
            f"{len(agreement)} intermediate evals duplicate a separate run of the same seed, config "
            f"and N (the separate run was kept); they agree to {100 * worst:.3g}% at worst"
            + (" -- more than noise: check that the schedule does not depend on N" if worst > 0.01 else ""))
