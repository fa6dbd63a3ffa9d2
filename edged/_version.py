"""The version of edged: the one place it is set (pyproject.toml reads it from here)."""

__version__ = "0.3.0"
