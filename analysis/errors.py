"""The errors the analysis raises for bad input, each saying what is wrong and where."""


class AnalysisInputError(ValueError):
    """The input as a whole cannot be analysed (no run dirs, no completed runs, ...)."""


class FitError(ValueError):
    """One series (or one joint grid) cannot be fitted; the rest of the report goes on."""
