"""Result parts as dataclasses that write themselves as the JSON objects of fits.json and joint.json.

A part's fields are its keys, in declaration order; a field made with `optional()` is a key
only while it holds a value (None leaves it out), as when the part was a dict that gained
the key only sometimes.  analysis.records.json_safe writes any Jsonable through to_json().
"""
from __future__ import annotations

from dataclasses import field, fields
from typing import Any


def optional(default: Any = None) -> Any:
    """A dataclass field that to_json() leaves out while it is None."""
    return field(default=default, metadata={"omit_none": True})


class Jsonable:
    def to_json(self) -> dict[str, Any]:
        """{field: value} in declaration order, without the optional fields that are None
        (values are written as they are: nested parts by json_safe, through their own to_json)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = v
        return out
