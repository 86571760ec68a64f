"""The exception and warning tree of tsglab.

Every error a user can trigger derives from :class:`TsglabError`, so a notebook can catch one class.
Messages name the parameter or file, the value received, and the fix.
"""

from __future__ import annotations


class TsglabError(Exception):
    """Base class of every tsglab error."""


class SpecError(TsglabError, ValueError):
    """An experiment spec or parameter set is invalid."""


class SuiteError(TsglabError, ValueError):
    """A request-suite file is malformed (the message names file, line and field)."""


class RunError(TsglabError):
    """A run directory is missing, unreadable or inconsistent."""


class MissingDependencyError(TsglabError, ImportError):
    """An optional dependency is not installed (the message names the extra or command)."""


class ModelNotInstalledError(TsglabError, FileNotFoundError):
    """A model package is not installed (the message names the command that installs it)."""


class BackendError(TsglabError):
    """A backend failed to produce a completion."""

    error_kind = "backend_error"


class BackendTimeout(BackendError):
    """A completion did not finish within its timeout; the observation is right-censored."""

    error_kind = "timeout"

    def __init__(self, message: str, *, elapsed_ms: float) -> None:
        super().__init__(message)
        self.elapsed_ms = elapsed_ms


class TsglabWarning(UserWarning):
    """Base class of tsglab warnings (degenerate statistics, underpowered tests...)."""


class DegenerateStatisticWarning(TsglabWarning):
    """A statistic is undefined for the data given and was returned as NaN."""
