"""Small helpers for summary values shared by the loading and grouping modules."""
from __future__ import annotations

import math
from typing import Any, Optional


def finite_number(value: Any) -> Optional[float]:
    """`value` as a float when it is a finite number (bools and strings are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def positive(value: Any) -> Optional[float]:
    """`value` as a float when it is a finite number > 0."""
    v = finite_number(value)
    return v if v is not None and v > 0 else None


def freeze(v: Any) -> Any:
    """A hashable version of a summary value (lists become tuples)."""
    if isinstance(v, (list, tuple)):
        return tuple(freeze(u) for u in v)
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(u)) for k, u in v.items()))
    return v
