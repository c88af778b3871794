"""Number and table formatting for report.md (display only: fits.json keeps full precision)."""
from __future__ import annotations

from typing import Any, Optional


def g(v: Any, sig: int = 4) -> str:
    """A number for display: 4 significant digits, scientific when large or small."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    v = float(v)
    if v != v:
        return "nan"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:
        return f"{v:.{sig - 1}e}"
    return f"{v:.{sig}g}"


def ci(interval: Optional[list], sig: int = 4) -> str:
    if not interval:
        return ""
    return f"[{g(interval[0], sig)}, {g(interval[1], sig)}]"


def vci(e: Any, sig: int = 4) -> str:
    """`value [lo, hi]` of an estimate (analysis.efficiency.Estimate: `value`, `ci95`)."""
    if e is None:
        return "–"
    return f"{g(e.value, sig)} {ci(e.ci95, sig)}".strip()


def nbytes(n: Optional[float]) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.3g} {unit}"
        n /= 1024


def seconds(s: Optional[float]) -> str:
    if s is None:
        return "–"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s / size:.3g} {unit}"
    return f"{s:.3g} s"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return "\n".join(lines)
