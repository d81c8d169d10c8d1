"""The project's own errors: one base type, so callers (the CLI first of all) can tell a problem
with the user's input or files from a bug.

Every error of aim's own is an :class:`AimError` whose message names what is wrong (the file,
key, value or shape) and, where there is one, the fix; ``exit_code`` is what the ``aim`` command
exits with when it stops on one: 2 for a bad setting or argument (:class:`UsageError`), 1 for a
run that failed on its data, files or numbers. Each subclass also derives from the built-in
exception it refines (``ValueError``, ``RuntimeError``, ...), so code that catches those keeps
working.
"""

from __future__ import annotations


class AimError(Exception):
    """A problem aim detected and can explain; the message is one line for a person to act on."""

    exit_code = 1


class UsageError(AimError, ValueError):
    """A bad argument or setting value: the message names it and the values it may take."""

    exit_code = 2


class ConfigError(UsageError):
    """A configuration key or value is wrong; the message names the key."""


class DatasetFormatError(AimError, ValueError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file."""


class NotFoundError(AimError, FileNotFoundError):
    """A file or folder aim needs is not there; the message names it and what would make it."""


class AlreadyExistsError(AimError, FileExistsError):
    """A target already holds something aim would overwrite; the message says how to go on."""


class CheckpointError(AimError, ValueError):
    """A checkpoint or run directory is damaged or of another kind; the message names it."""


class NonFiniteLossError(AimError, FloatingPointError):
    """A loss or gradient norm became NaN or inf; nothing of that step (or iteration) was saved."""


class WorkerError(AimError, RuntimeError):
    """A worker process could not start or died; the message names the job it was running."""
