"""Errors a user can act on. The CLI prints ``str(error)`` as one line and exits with ``exit_code``
(2: bad input or a damaged file; 3: the work is incomplete, run again to finish it)."""

from __future__ import annotations

from typing import ClassVar


class GlanError(Exception):
    """Base of every error caused by input or environment: its message says what is wrong and how to fix it."""

    exit_code: ClassVar[int] = 2


class UsageError(GlanError):
    """A flag, file or setting is wrong."""


class ConfigurationError(GlanError):
    """The endpoint cannot be used as configured (missing API key or base URL, bad price table, ...)."""


class IncompleteError(GlanError):
    """Units are still outstanding (failed calls, disciplines without records): nothing is wrong with the
    input, but what was asked for is not all there. Running the same command again retries them."""

    exit_code: ClassVar[int] = 3
