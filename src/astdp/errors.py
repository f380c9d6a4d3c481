"""The failures a user can fix. Every stage turns them into one line on stderr (see stages/_cli.py)."""


class ConfigError(ValueError):
    """A config value is invalid; the message names the key and what is allowed."""


class DataError(RuntimeError):
    """A data file is missing, damaged or inconsistent; the message names the file."""


class DivergenceError(RuntimeError):
    """Activities or weights stopped being finite."""


class StageError(RuntimeError):
    """Missing input, damaged checkpoint, preemption: the message says what to do."""
