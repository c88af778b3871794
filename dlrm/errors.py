"""The error every config check raises (config.py, and each data source's own checks)."""


class ConfigError(ValueError):
    """A config value the harness cannot run with; the message says how to fix it."""
