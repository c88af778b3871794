"""Which model each resource's compute doubling starts from.

A comparison of "what one more doubling of compute buys" is fair only from one model: the
data law's model at its largest data size is the point the report plans from, and each
scheme's law is asked how much a doubling of compute spent through that scheme buys from
the same model -- where the design allows, i.e. where the scheme's series was run at that
data size and passes through that model (a star design around a base model does).  A
scheme whose series does not starts from its own largest size, and the report says so.
"""
from __future__ import annotations

from typing import Any, Optional

import rundir
from analysis.efficiency import compute_margin
from analysis.results import headline
from analysis.series import SCHEMES, short_value

# Fields of a scheme series' group that a data series' group must match (besides the
# scheme's own size and N, which the data law's model fixes).
_IGNORED = ("scheme", "num_train_samples")


def base_size(data_group: dict, scheme: str) -> Optional[float]:
    """The data law's model's size along `scheme` (both widths, when they are equal, for mlp_width)."""
    if scheme == "mlp_width":
        w = data_group.get("dense_arch_width")
        return w if w is not None and w == data_group.get("over_arch_width") else None
    return data_group.get(scheme)


def _passes_through(scheme_res, data_res) -> Optional[float]:
    """The data law's model's size on the scheme series, when that series passes through it."""
    sg, dg = scheme_res.series.group, data_res.series.group
    scheme = scheme_res.series.scheme
    if sg.get("num_train_samples") != data_res.fit.x_max:
        return None
    for key, value in sg.items():
        if key in _IGNORED or key == scheme or key not in dg:
            continue
        if dg[key] != value:
            return None
    x0 = base_size(dg, scheme)
    return float(x0) if x0 is not None and x0 in set(scheme_res.series.x.tolist()) else None


_SIZES = tuple(a.summary_field for a in rundir.model_sizes())


def _model_words(group: dict, n: float) -> str:
    parts = [f"{k}={short_value(v)}" for k, v in group.items()
             if k in _SIZES and v is not None]
    return f"the data law's model ({', '.join(parts)}, N={short_value(n)})"


def center(data_results: list, results: list):
    """Of a study's data laws, the one at the centre of the design: the model the most scheme
    series pass through (a star design's base), then the headline's order (most seeds, ...)."""
    laws = [d for d in data_results if d.determined]
    if not laws:
        return headline(data_results)
    schemes = [r for r in results if r.determined and r.series.axis.name in SCHEMES]
    best = max(sum(_passes_through(r, d) is not None for r in schemes) for d in laws)
    return headline([d for d in laws if sum(_passes_through(r, d) is not None for r in schemes) == best])


def _study(r) -> tuple:
    return r.series.group.get("model"), r.series.group.get("data_id")


def attach_margins(results: list) -> None:
    """Each determined series' `efficiency.compute_margin`: from its study's central data
    law's model where its design allows, else from the series' own largest size."""
    by_study: dict[tuple, list] = {}
    for r in results:
        if r.series.axis.name == "data":
            by_study.setdefault(_study(r), []).append(r)
    centres = {k: center(v, results) for k, v in by_study.items()}
    for r in results:
        if not r.determined:
            continue
        axis = r.series.axis.name
        if axis in ("data", "compute"):
            start = _model_words(r.series.group, r.fit.x_max) if axis == "data" else "the largest measured budget"
            r.efficiency.compute_margin = compute_margin(r.fit, r.series, r.fit.x_max, start)
        elif axis in SCHEMES:
            d = centres.get(_study(r))
            x0 = _passes_through(r, d) if d is not None and d.determined else None
            if x0 is not None:
                r.efficiency.compute_margin = compute_margin(r.fit, r.series, x0,
                                                                _model_words(d.series.group, d.fit.x_max))
            else:
                r.efficiency.compute_margin = compute_margin(
                    r.fit, r.series, r.fit.x_max, f"its own largest size ({short_value(r.fit.x_max)}): no data "
                    "law passes through this series")
