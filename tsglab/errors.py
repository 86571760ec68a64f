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


class SandboxError(TsglabError, RuntimeError):
    """The sandbox that runs code answers could not start (an answer that fails is a score, not this)."""


class InvalidArgument(TsglabError, ValueError):
    """A function was called with a bad argument; the message names the parameter, the value and the fix.

    It subclasses :class:`ValueError` so code that caught ``ValueError`` before keeps working.
    """


class InvalidArgumentType(InvalidArgument, TypeError):
    """An argument has the wrong type (e.g. a dict where a digest is expected).

    Also a :class:`TypeError`, which is what these calls raised before and what Python raises for a
    wrong type, so both ``except TypeError`` and ``except InvalidArgument`` catch it.
    """


class RunError(TsglabError):
    """A run directory is missing, unreadable or inconsistent."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM, its directory marked incomplete. ``str()`` is the one line that
    says so and how to resume; the command line prints it, the ``%tsg`` magic says the same with its own
    resume magic. ``terminated`` is True for SIGTERM (the command line exits 143, else 130)."""

    def __init__(self, message: str, *, terminated: bool = False) -> None:
        super().__init__(message)
        self.terminated = terminated


class ParameterComplaint(TsglabError):
    """A notebook parameter rule's complaint: what the value must be. :func:`tsglab.jupyter.params.notebook_params`
    turns it into an :class:`InvalidArgument` naming the parameter, the value given and the papermill flag."""


class MissingDependencyError(TsglabError, ImportError):
    """An optional dependency is not installed (the message names the extra or command)."""


class ModelNotInstalledError(TsglabError, FileNotFoundError):
    """A model package is not installed (the message names the command that installs it)."""


class BackendError(TsglabError):
    """A backend failed to produce a completion."""

    error_kind = "backend_error"


class BackendConnectError(BackendError):
    """The server could not be reached (connection refused, DNS, TLS)."""

    error_kind = "connect_error"


class BackendHTTPError(BackendError):
    """The server answered with an HTTP error status. ``error_kind`` is ``http_429``, ``http_4xx`` or
    ``http_5xx`` so a retry policy can name which ones it retries."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
        self.error_kind = "http_429" if status == 429 else ("http_5xx" if status >= 500 else "http_4xx")


class BackendMalformedResponse(BackendError):
    """The server answered, but not with what its API documents (bad JSON, missing fields)."""

    error_kind = "malformed_response"


class BackendStreamInterrupted(BackendError):
    """The connection broke after the answer started (e.g. the server died mid-stream)."""

    error_kind = "stream_interrupted"


class BackendContextOverflow(BackendError):
    """The prompt (with the answer's token budget) does not fit the model's context window."""

    error_kind = "context_overflow"


class PreflightError(TsglabError):
    """A tier's server or model failed the check made before the schedule starts (the message names the
    tier, the endpoint and the fix; ``preflight: false`` in the spec or ``--no-preflight`` skips it)."""


class BackendTimeout(BackendError):
    """A completion did not finish within its timeout; the observation is right-censored."""

    error_kind = "timeout"

    def __init__(self, message: str, *, elapsed_ms: float) -> None:
        super().__init__(message)
        self.elapsed_ms = elapsed_ms


class BackendCancelled(BackendError):
    """The caller cancelled a completion (a speculative attempt whose answer was no longer needed).

    ``completion_tokens`` is how many tokens were generated before the cancellation took effect (wasted
    work), ``elapsed_ms`` how long the attempt ran."""

    error_kind = "cancelled"

    def __init__(self, message: str, *, elapsed_ms: float, completion_tokens: int = 0, prompt_tokens: int = 0) -> None:
        super().__init__(message)
        self.elapsed_ms = elapsed_ms
        self.completion_tokens = completion_tokens
        self.prompt_tokens = prompt_tokens


class ServerStartError(TsglabError, RuntimeError):
    """A local server exited or did not answer in time (the message names its log file)."""


class LegacyFormatError(TsglabError, ValueError):
    """A legacy bench file is missing or malformed (the message names the file, line and field)."""


class LegacyMismatchError(TsglabError):
    """A legacy summary value is not what its events give under the legacy estimators."""


class EnergyError(TsglabError, ValueError):
    """Bad input to the energy meter: samples, request spans or options (the message names the fix)."""


class MeterUnavailable(TsglabError):
    """No energy source could be opened; ``reason`` says why in one line (it goes into the event)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TsglabWarning(UserWarning):
    """Base class of tsglab warnings (degenerate statistics, underpowered tests...)."""


class DegenerateStatisticWarning(TsglabWarning):
    """A statistic is undefined for the data given and was returned as NaN."""


class IdenticalRoutingWarning(TsglabWarning):
    """Two arms of a spec would route every selected prompt to the same tier and differ in nothing else:
    the parameters in which they differ have no effect on these prompts (``tsglab.load.dry_route``)."""
