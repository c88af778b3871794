"""The errors of Criteo preprocessing: one family, every message user-facing and naming the file.

Standard library only, so that the package `__init__` can expose them cheaply.
"""
from __future__ import annotations


class CriteoPreprocessError(Exception):
    """A usage or input problem that stops preprocessing (message is user-facing)."""


class MalformedLineError(CriteoPreprocessError, ValueError):
    """A malformed input line; names the file, the 1-based line number and the field."""

    def __init__(self, message: str, path: str = "", line: int = 0, field: str = ""):
        super().__init__(message)
        self.path, self.line, self.field = path, line, field

    def __reduce__(self):  # keep the attributes across the worker -> parent pickle
        return (type(self), (str(self), self.path, self.line, self.field))


class RawFileError(CriteoPreprocessError):
    """A raw file that cannot be read as Criteo TSV (no line ends; truncated or corrupt gzip)."""
