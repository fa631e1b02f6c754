"""The package version, in one place: pyproject.toml reads it, run.json and exports record it."""

__version__ = "0.1.0"
