"""User-facing errors: each carries a one-line message; the CLI prints it and exits with code 2."""

from __future__ import annotations


class ImpastoError(Exception):
    """Base class for errors caused by user input or environment, not by bugs."""


class InputError(ImpastoError):
    """A file or argument given by the user cannot be used (missing, corrupt, too large, invalid)."""


class WeightsError(ImpastoError):
    """Pretrained weights are missing, corrupt, or of the wrong kind."""


class ModelFileError(ImpastoError):
    """A saved impasto model file is missing, corrupt, or of another kind."""


class WriteError(ImpastoError):
    """An output could not be written (disk full, quota, read-only file system, permission): the
    environment, not the input; nothing partial is left behind."""
