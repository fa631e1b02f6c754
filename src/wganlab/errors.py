"""Errors a user can act on. The CLI prints them as one line and exits with a fixed code."""


class ConfigError(ValueError):
    """A flag or config value is invalid. The message names the flag and what is allowed."""

    exit_code = 2


class DataError(ValueError):
    """A data file or folder is missing or malformed. The message names the file."""

    exit_code = 3


class CheckpointError(ValueError):
    """A checkpoint or weights file cannot be loaded safely. The message names the file."""

    exit_code = 4


class NonFiniteError(RuntimeError):
    """A loss, penalty or gradient became NaN or Inf."""

    exit_code = 5
