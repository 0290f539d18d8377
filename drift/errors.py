"""Errors that stop a command. Each carries a one-line message meant for the person at the terminal.

Problems with a single input are not exceptions: they become `InputError` rows (see kinds.base).
"""


class DriftError(Exception):
    """A command cannot go on; the message says why and, where possible, what to do."""


class ConfigError(DriftError):
    """The job file is missing, unreadable or invalid."""


class InputLogError(DriftError):
    """The input log cannot be read at all (no files, missing required columns)."""


class BaselineError(DriftError):
    """The baseline is missing, damaged, or does not match the run."""


class EmbedderError(DriftError):
    """The configured encoder cannot be loaded."""


class StoreLockedError(DriftError):
    """Another process is writing to the store."""
