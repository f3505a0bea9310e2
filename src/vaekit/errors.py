"""User-facing errors.

Anything raised as a :class:`VaekitError` is a problem with the user's input or environment, not a
bug: the command line prints its message on one line and exits non-zero, without a traceback.
"""


class VaekitError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


class DataError(VaekitError):
    """A dataset is unknown, missing, corrupt or malformed."""


class ConfigError(VaekitError):
    """A configuration value or key is invalid."""


class RunError(VaekitError):
    """A run folder is missing, incomplete, corrupt or would be overwritten."""


class TrainingDiverged(VaekitError):
    """The loss became NaN or infinite during training."""


class StorageError(VaekitError):
    """A file could not be written: the disk is full, over quota or read-only."""
