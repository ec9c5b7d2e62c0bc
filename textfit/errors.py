"""Errors a user can act on. The CLI prints their message alone (no traceback) and exits with status 2."""


class TextfitError(Exception):
    """Base class: the message names the file, line, column or value at fault."""


class ConfigError(TextfitError):
    """A setting is missing, unknown or out of range."""


class DataError(TextfitError):
    """The dataset cannot be read or does not fit the task."""


class ModelError(TextfitError):
    """The model cannot be found or loaded."""


class DiskFull(TextfitError):
    """A checkpoint or the output folder could not be written for want of space; the previous one is intact."""


class TrainingDiverged(TextfitError):
    """The loss stopped being a number before any evaluation was good enough to keep."""
