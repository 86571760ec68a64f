"""The event record: one typed, frozen record per request (schema version :data:`SCHEMA_VERSION`).

An :class:`Event` holds what the gateway decided (:class:`Plan`, :class:`Route`), every
:class:`Attempt`, the :class:`Schedule` stamps and the :class:`Latency` derived from them, the
:class:`Censoring`, :class:`Quality` and :class:`ErrorInfo` of the outcome, the :class:`Energy` it
was written with and the :class:`Fingerprint` of what produced it. The runner builds events with
:meth:`Event.answered` (the gateway returned: an answer, a timeout or a backend error, with its
attempts) and :meth:`Event.failed` (no gateway result: a runner exception, or a request the
load generator abandoned); the legacy importer builds them from the legacy rows; the log reader
decodes them. Nothing else writes the nested structure by hand.

Rules the constructors apply (DESIGN §3 "Cost"):

- ``latency.raw_ms`` = completed − dispatched, ``co_ms`` = completed − intended start,
  ``dispatch_lag_ms`` = dispatched − intended start (monotonic ns → ms).
- ``latency.cost_ms`` is the sum of the attempts' ``cost_ms`` (``cost_source: "attempts"``): an
  attempt that answered costs its prompt-eval + eval ms as its backend measured them
  (``cost_source: "backend"``), a timed-out or failed attempt its elapsed time (``"elapsed"``). A
  request with no attempt record (abandoned by the runner's watchdog, or a runner exception) costs its
  elapsed time since dispatch and says ``cost_source: "elapsed"``. ``eval_ms`` and ``prompt_eval_ms``
  stay the backends' measured durations (a failed attempt has none).
- ``route.tiers_touched`` is the sorted set of the attempts' tiers; ``cold_start`` is true when an
  attempt loaded its model (``load_ms > 0``); ``latency.ttft_ms`` is the first attempt's.
- A duration the backend did not measure (a time to first token) is null, never NaN.

Version 2 added ``prompt_sha`` (sha256 of the prompt text, 16 hex digits; the report refuses to pair
different prompts under one id) and ``fingerprint.ladder`` (the tier names, lowest rung first; the
report takes the top tier from it). Version-1 records are converted on reading
(:func:`tsglab.events.log.read_events`); writers write version 2 only.

The record's JSON Schema is generated from these dataclasses (:func:`event_json_schema`) and
committed as ``tsglab/events/event.schema.json`` (:func:`write_event_json_schema` regenerates it;
a test checks the committed file is current). Decoding and validation use msgspec.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from tsglab._version import __version__
from tsglab.errors import RunError

SCHEMA_VERSION: Literal[2] = 2
SCHEMA_FILE = Path(__file__).with_name("event.schema.json")

# msgspec has no "finite" constraint: ge=0 refuses negatives (and NaN, which compares false), and an
# upper bound of the largest double refuses +infinity, so a decoded duration is a finite number >= 0.
Duration = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max,
                                         description="milliseconds: a finite number >= 0")]
Seconds = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max, description="seconds: a finite number >= 0")]
Stratum = str | bool | int
# counts, sequence numbers and ns stamps fit a signed 64-bit integer (the report's frames hold int64)
Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
PromptSha = Annotated[str, msgspec.Meta(pattern="^([0-9a-f]{16})?$",
                                        description="sha256 of the prompt text, 16 hex digits; empty when unknown")]
Ladder = Annotated[tuple[str, ...], msgspec.Meta(min_length=1, description="tier names, lowest rung first")]

NO_METER_REASON = "no energy meter configured for this run"


def prompt_sha(prompt: str) -> str:
    """The event's ``prompt_sha``: the first 16 hex digits of the sha256 of the prompt text (UTF-8)."""
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


def _nan_to_none(value: float | None) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value


class _Part:
    """``to_json`` for every record part: the plain JSON value the log holds."""

    __slots__ = ()

    def to_json(self) -> dict[str, Any]:
        """The record as plain JSON types (dicts, lists, str, numbers, bool, None): what the log holds."""
        return msgspec.json.decode(msgspec.json.encode(self))


@dataclass(frozen=True)
class Plan(_Part):
    """What the planner learned: the clipped ``score`` the router used and the ``raw_score`` before
    clipping, the detected ``task``, the prompt's ``chars``, ``marks`` and ``heavy`` keyword flag, and
    the ``risk_factors``. Unknown values are null (a request that failed before a plan, a legacy import)."""

    score: float | None = None
    raw_score: float | None = None
    task: str = ""
    chars: Int64 = 0
    marks: Int64 | None = None
    heavy: bool | None = None
    risk_factors: tuple[str, ...] = ()

    @classmethod
    def from_report(cls, report: Any) -> Plan:
        """From a :class:`tsglab.policy.planner.PlanReport` (read by attribute: policy sits above events)."""
        return cls(_nan_to_none(report.score), _nan_to_none(report.raw_score), report.task, report.chars,
                   report.marks, report.heavy, tuple(report.risk_factors))


@dataclass(frozen=True)
class Route(_Part):
    """The router's decision (``initial`` tier after the floor, ``score_tier`` from the thresholds alone,
    the ``floor``, ``fast_lane``, ``reason``, ``score``) and where the cascade ended (``final`` tier,
    ``upgrades``, ``repaired``, ``tiers_touched`` = the attempts' tiers, sorted). A request without a
    gateway result has an empty route whose ``reason`` is the error kind."""

    initial: str = ""
    score_tier: str | None = None
    floor: str | None = None
    final: str = ""
    upgrades: Int64 = 0
    repaired: bool = False
    fast_lane: bool = False
    reason: str = ""
    score: float | None = None
    tiers_touched: tuple[str, ...] = ()

    @classmethod
    def from_decision(cls, decision: Any, execution: Any) -> Route:
        """From a :class:`tsglab.policy.router.RouteDecision` and the executor's
        :class:`~tsglab.policy.executor.Execution` (read by attribute); ``tiers_touched`` is filled in by
        :meth:`Event.answered` from the attempts."""
        return cls(decision.tier, decision.score_tier, decision.floor, execution.final_tier, execution.upgrades,
                   execution.repaired, decision.fast_lane, decision.reason, _nan_to_none(decision.score))


@dataclass(frozen=True)
class Attempt(_Part):
    """One generation of the cascade: its ``tier``, ``kind`` (initial | repair | upgrade | retry), model,
    tokens and durations (ms), the check's verdict, and what it cost.

    ``cost_ms`` is what the attempt spent: prompt-eval + eval ms as the backend measured them when it
    answered (``cost_source="backend"``), or its elapsed time until it timed out or failed
    (``cost_source="elapsed"``) — never 0. Such an attempt reports no tokens and 0 prompt-eval / eval ms
    (the split is unknown); its ``total_ms`` is the same elapsed time. ``ttft_ms`` is null when no first
    token was measured (a NaN given here becomes null). ``check_ok`` is null when no check ran (legacy).
    ``details`` holds backend-specific figures (inter-token latency, server durations).
    """

    tier: str
    kind: str
    model: str
    prompt_tokens: Int64
    completion_tokens: Int64
    prompt_eval_ms: Duration
    eval_ms: Duration
    total_ms: Duration
    ttft_ms: Duration | None
    load_ms: Duration
    finish_reason: str
    check_ok: bool | None
    check_reason: str
    error_kind: str = ""
    backend: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    # keyword-only and without default: every producer says what the attempt cost and how it knows
    cost_ms: Duration = field(kw_only=True)
    cost_source: Literal["backend", "elapsed"] = field(kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.ttft_ms, float) and math.isnan(self.ttft_ms):  # backends say NaN for "not measured"
            object.__setattr__(self, "ttft_ms", None)


@dataclass(frozen=True)
class GuardCheck(_Part):
    """One guardian's check of one text: the request (``stage="input"``, ``attempt`` −1) or the answer of
    ``attempts[attempt]`` (``stage="output"``). ``latency_ms`` is the check's own wall time (for the judge,
    its model call included); ``score`` is the judge's risk score in [0, 1] (null for rule guardians);
    ``error`` says why a check could not decide (a judge call that failed counts as a violation: fail
    closed)."""

    guardian: str
    stage: Literal["input", "output"]
    attempt: Int64
    violated: bool
    category: str = ""
    latency_ms: Duration = 0.0
    score: float | None = None
    error: str = ""


@dataclass(frozen=True)
class Enforcement(_Part):
    """What runtime enforcement did for one request (present only on arms with guardians).

    ``checks`` are every guardian verdict in order; ``calls`` the model calls enforcement made besides the
    answer attempts: judge calls (``kind="judge"``) and speculative attempts of parallel mode that were
    cancelled because the answer passed (``kind="speculative"``, ``check_reason="cancelled"``); their cost
    is part of the event's ``latency.cost_ms``. ``steps`` are the remedies taken (``repair``, ``upgrade``),
    ``outcome`` what the user got: ``pass`` (the answer, no check flagged it), ``block`` / ``input_block``
    (the block message), ``redact`` (the answer with findings masked) or ``deliver`` (a flagged answer let
    through). ``delivered_violation`` is true when the delivered text is still flagged by a configured
    guardian. ``check_ms`` is the time the request waited on guardians; ``wasted_tokens`` the completion
    tokens of cancelled speculative attempts."""

    mode: Literal["blocking", "parallel"]
    checks: tuple[GuardCheck, ...] = ()
    calls: tuple[Attempt, ...] = ()
    steps: tuple[str, ...] = ()
    outcome: Literal["pass", "block", "input_block", "redact", "deliver"] = "pass"
    violated: bool = False
    delivered_violation: bool = False
    check_ms: Duration = 0.0
    wasted_tokens: Int64 = 0
    cancelled: Int64 = 0


@dataclass(frozen=True)
class Schedule(_Part):
    """Monotonic-clock stamps (ns): when the request was due, sent and completed."""

    intended_start_ns: Int64
    dispatched_ns: Int64
    completed_ns: Int64


@dataclass(frozen=True)
class Latency(_Part):
    """Durations in ms, each a finite number >= 0 (``ttft_ms``, ``overhead_ms`` null when not measured):
    ``raw_ms`` = completed − dispatched, ``co_ms`` = completed − intended start, ``dispatch_lag_ms``,
    the attempts' summed ``eval_ms`` / ``prompt_eval_ms``, the request's ``cost_ms`` and where it came
    from (``cost_source``), and the planner + router ``overhead_ms``."""

    raw_ms: Duration
    co_ms: Duration
    dispatch_lag_ms: Duration
    ttft_ms: Duration | None
    eval_ms: Duration
    prompt_eval_ms: Duration
    cost_ms: Duration
    cost_source: Literal["attempts", "elapsed"]
    overhead_ms: Duration | None

    @classmethod
    def from_stamps(cls, schedule: Schedule, attempts: Sequence[Attempt], overhead_ms: float | None = None,
                    side_calls: Sequence[Attempt] = ()) -> Latency:
        """The latency of a recorded request: durations from the schedule stamps, eval / prompt-eval summed
        over the attempts, cost by the module docstring's rule; ``side_calls`` (enforcement's judge calls and
        cancelled speculative attempts) add their cost."""
        raw_ms = (schedule.completed_ns - schedule.dispatched_ns) / 1e6
        cost_source: Literal["attempts", "elapsed"]
        if attempts:
            cost_ms, cost_source = sum(a.cost_ms for a in (*attempts, *side_calls)), "attempts"
        else:  # no attempt record survived: the request ran for raw_ms
            cost_ms, cost_source = raw_ms, "elapsed"
        return cls(raw_ms, (schedule.completed_ns - schedule.intended_start_ns) / 1e6,
                   (schedule.dispatched_ns - schedule.intended_start_ns) / 1e6,
                   attempts[0].ttft_ms if attempts else None, sum(a.eval_ms for a in attempts),
                   sum(a.prompt_eval_ms for a in attempts), cost_ms, cost_source, _nan_to_none(overhead_ms))


@dataclass(frozen=True)
class Censoring(_Part):
    """A timeout is a right-censored observation at its elapsed time; ``timeout_s`` is the request's limit."""

    timeout: bool
    right_censored: bool
    timeout_s: Seconds


@dataclass(frozen=True)
class Quality(_Part):
    """The answer's ``score`` in [0, 1], its JSON verdict (``json_ok``, null when the item has no JSON
    contract), ``refusal``, the scorer's ``detail`` and whether the executor's checks passed (``check_ok``,
    null when none ran)."""

    score: float
    json_ok: bool | None = None
    refusal: bool = False
    detail: str = ""
    check_ok: bool | None = None


@dataclass(frozen=True)
class ErrorInfo(_Part):
    """How a request ended without an answer: the error ``kind`` (timeout, connect_error, http_5xx,
    malformed_response, runner_exception, ...) and the ``message``."""

    kind: str
    message: str = ""


@dataclass(frozen=True)
class Energy(_Part):
    """The request's share of measured energy, or why there is none (``available`` false and a
    ``reason``: never zeros for "not measured"). Figures that are undefined are null."""

    available: bool
    reason: str = ""
    meter: str | None = None
    domain: str | None = None
    joules: float | None = None
    tokens: float | None = None
    mwh_per_1k_tokens: float | None = None
    tokens_per_s_per_w: float | None = None
    coverage: float | None = None
    idle_w: float | None = None
    window_s: float | None = None
    sample_hz_achieved: float | None = None

    @classmethod
    def unavailable(cls, reason: str) -> Energy:
        if not isinstance(reason, str) or not reason.strip():
            raise RunError(f"an unavailable Energy needs a `reason` saying why; got {reason!r}.")
        return cls(False, reason)


_NO_METER = Energy(False, NO_METER_REASON)



@dataclass(frozen=True)
class EnergyEntry(_Part):
    """One line of a run's energy sidecar (``energy.jsonl``): the measured :class:`Energy` of one request."""

    request_id: str
    energy: Energy

@dataclass(frozen=True)
class Fingerprint(_Part):
    """What produced the event: the tsglab version, the tier ``ladder`` (names, lowest rung first), the
    policy and spec hashes, the seed, each tier's model and backend, the retry policy, the energy meter
    asked for; ``source`` says whether tsglab's runner or the legacy importer wrote it. ``extra`` holds
    source-specific facts (the legacy file, its sha256 and row) and any version-1 key without a field here.
    """

    tsglab: str
    ladder: Ladder
    source: Literal["run", "legacy"] = "run"
    policy_hash: str = ""
    spec_hash: str = ""
    seed: int | None = None
    models: dict[str, str] = field(default_factory=dict)
    backends: dict[str, str] = field(default_factory=dict)
    retry: dict[str, Any] = field(default_factory=dict)
    energy_meter: str = ""
    estimators: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def top_tier(self) -> str:
        """The ladder's top rung (``r_costly`` counts requests that touched it)."""
        return self.ladder[-1]


@dataclass(frozen=True)
class Event(_Part):
    """One request of a run (schema version 2): see the module docstring for the derived fields."""

    schema_version: Literal[2]
    run_id: str
    arm: str
    request_id: str
    prompt_id: str
    prompt_sha: PromptSha
    seq: Int64
    segment: Int64
    bucket: dict[str, Stratum]
    plan: Plan
    route: Route
    attempts: tuple[Attempt, ...]
    schedule: Schedule
    latency: Latency
    in_warmup: bool
    cold_start: bool
    censoring: Censoring
    quality: Quality
    answer: str
    error: ErrorInfo | None
    energy: Energy
    fingerprint: Fingerprint
    tsglab_version: str
    enforcement: Enforcement | None = None  # null on arms without guardians

    @classmethod
    def answered(
        cls,
        *,
        run_id: str,
        arm: str,
        prompt_id: str,
        prompt: str,
        seq: int,
        schedule: Schedule,
        attempts: Sequence[Attempt],
        quality: Quality,
        route: Route,
        fingerprint: Fingerprint,
        timeout_s: float,
        plan: Plan | None = None,
        answer: str = "",
        error: ErrorInfo | None = None,
        timed_out: bool = False,
        overhead_ms: float | None = None,
        segment: int = 0,
        bucket: Mapping[str, Stratum] | None = None,
        in_warmup: bool = False,
        energy: Energy | None = None,
        request_id: str | None = None,
        latency: Latency | None = None,
        enforcement: Enforcement | None = None,
    ) -> Event:
        """A request the gateway handled: an answer, or a timeout / backend error the executor recorded
        with its attempts. Latency (:meth:`Latency.from_stamps`), ``tiers_touched`` and ``cold_start`` are
        derived (module docstring); ``latency`` replaces the derived one where the durations were measured
        elsewhere (a legacy import's e2e, a synthetic event's exact values). ``request_id`` defaults to
        ``<run_id>/<arm>/<prompt_id>``."""
        attempts = tuple(attempts)
        if latency is None:
            latency = Latency.from_stamps(schedule, attempts, overhead_ms,
                                          enforcement.calls if enforcement is not None else ())
        touched = tuple(sorted({a.tier for a in attempts}))
        if route.tiers_touched != touched:
            route = dataclasses.replace(route, tiers_touched=touched)
        return cls(
            schema_version=SCHEMA_VERSION,
            run_id=run_id,
            arm=arm,
            request_id=request_id or f"{run_id}/{arm}/{prompt_id}",
            prompt_id=prompt_id,
            prompt_sha=prompt_sha(prompt),
            seq=seq,
            segment=segment,
            bucket=dict(bucket or {}),
            plan=plan or Plan(chars=len(prompt)),
            route=route,
            attempts=attempts,
            schedule=schedule,
            latency=latency,
            in_warmup=in_warmup,
            cold_start=any(a.load_ms > 0 for a in attempts),
            censoring=Censoring(timed_out, timed_out, timeout_s),
            quality=quality,
            answer=answer,
            error=error,
            energy=energy or _NO_METER,
            fingerprint=fingerprint,
            tsglab_version=__version__,
            enforcement=enforcement,
        )

    @classmethod
    def failed(
        cls,
        *,
        run_id: str,
        arm: str,
        prompt_id: str,
        prompt: str,
        seq: int,
        schedule: Schedule,
        error: ErrorInfo,
        fingerprint: Fingerprint,
        timeout_s: float,
        expects_json: bool = False,
        timed_out: bool = False,
        segment: int = 0,
        bucket: Mapping[str, Stratum] | None = None,
        in_warmup: bool = False,
        energy: Energy | None = None,
        request_id: str | None = None,
        latency: Latency | None = None,
    ) -> Event:
        """A request that produced no gateway result (a runner exception, or abandoned by the load
        generator's watchdog). It records what is known — no plan or route is invented for it: the plan
        holds only the prompt length, the route is empty with ``reason`` = the error kind, there are no
        attempts, and the request costs its elapsed time since dispatch. Its quality is 0, and a JSON
        request (``expects_json``) did not deliver JSON."""
        return cls.answered(
            run_id=run_id, arm=arm, prompt_id=prompt_id, prompt=prompt, seq=seq, schedule=schedule, attempts=(),
            quality=Quality(0.0, False if expects_json else None, False, f"no answer: {error.kind}", False),
            route=Route(reason=error.kind), fingerprint=fingerprint, timeout_s=timeout_s, error=error,
            timed_out=timed_out, segment=segment, bucket=bucket, in_warmup=in_warmup, energy=energy,
            request_id=request_id, latency=latency,
        )

    @classmethod
    def from_json(cls, obj: Any, *, where: str = "", fix: str = "") -> Event:
        """Validate a decoded JSON object (schema version 1 or 2) and return the record.

        Raises :class:`~tsglab.errors.RunError` naming ``where`` (e.g. ``path:line``) and the dotted
        field: a latency that is NaN, infinite, negative, missing or not a number with the precise
        message of :mod:`tsglab.events.validate`, any other mismatch with msgspec's. ``fix`` replaces
        the default advice for a line that is not an event at all."""
        from tsglab.events.validate import check_latencies

        where = where or "event"
        fix = fix or "Correct or delete it, or re-run the arm."
        if not isinstance(obj, dict):
            raise RunError(f"{where}: an event must be a JSON object; got {type(obj).__name__} "
                           f"({_excerpt(obj)}). {fix}")
        version = obj.get("schema_version")
        if version == 1:
            obj = upgrade_v1(obj)
        elif version != SCHEMA_VERSION or isinstance(version, bool):
            raise RunError(f"{where}: field 'schema_version' is {version!r}; this tsglab reads versions 1 and "
                           f"{SCHEMA_VERSION}. Read it with the tsglab that wrote it, or re-run the arm.")
        check_latencies(obj, where=where)
        try:
            return msgspec.convert(obj, cls)
        except msgspec.ValidationError as exc:
            raise RunError(record_error(exc, where=where, request_id=obj.get("request_id"))) from exc


def _excerpt(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= limit else text[:limit] + "…"


def record_error(exc: msgspec.ValidationError, *, where: str, request_id: Any = None, record: str = "event") -> str:
    """msgspec's validation message rewritten as ``<where>: field '<dotted.path>' <problem>`` plus the fix;
    ``record`` names what was decoded ("event", or "energy sidecar entry")."""
    message = str(exc)
    text, _, path = message.rpartition(" - at `")
    if not text:
        text, path = message, "$"
    path = path.rstrip("`")
    missing = "Object missing required field `"
    if text.startswith(missing):
        name = text[len(missing):].rstrip("`")
        path, text = f"{path}.{name}", "is missing"
    dotted = path[2:] if path.startswith("$.") else path.lstrip("$") or "(the event)"
    return (f"{where}: field '{dotted}' {text[:1].lower()}{text[1:]}; the {record} (request_id {request_id!r}) does "
            f"not match the tsglab {record} record (schema version {SCHEMA_VERSION}, tsglab/events/record.py; "
            f"events: tsglab/events/event.schema.json). Correct or delete that line, or re-run the arm.")


# ---- version 1 ----------------------------------------------------------------------------------

# Version 1 predates configurable ladders: every run used these tiers, lowest first.
V1_LADDER = ("light", "std", "enh")
_FINGERPRINT_FIELDS = frozenset(f.name for f in dataclasses.fields(Fingerprint))


def upgrade_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """A version-1 event dict as a version-2 dict: no ``prompt_sha`` (empty: unknown), the version-1
    ladder in the fingerprint (legacy keys and unknown keys go to ``fingerprint.extra``), NaN scores of
    runner error events as null, and the attempt fields version 1 could omit (``cost_ms``: the
    executor's rule from the durations; ``cost_source``, ``load_ms``, ``backend``, ``details``) filled
    in. Its ``energy`` stays inline as written (a sidecar entry, if any, still wins on reading)."""
    event = {**obj, "schema_version": SCHEMA_VERSION, "prompt_sha": obj.get("prompt_sha", "")}
    for part, names in (("plan", ("score", "raw_score")), ("route", ("score",))):
        if isinstance(event.get(part), dict):
            event[part] = {**event[part], **{n: _nan_to_none(event[part].get(n)) for n in names}}
    if isinstance(event.get("attempts"), list):
        event["attempts"] = [_upgrade_v1_attempt(a) if isinstance(a, dict) else a for a in event["attempts"]]
    if isinstance(event.get("latency"), dict):
        event["latency"] = {"cost_source": "attempts", **event["latency"]}
    fingerprint = event.get("fingerprint")
    if isinstance(fingerprint, dict):
        known = {k: v for k, v in fingerprint.items() if k in _FINGERPRINT_FIELDS and k != "extra"}
        extra = {k: v for k, v in fingerprint.items() if k not in _FINGERPRINT_FIELDS}
        known.setdefault("tsglab", str(event.get("tsglab_version", "")))
        known.setdefault("ladder", list(V1_LADDER))
        event["fingerprint"] = {**known, "extra": extra}
    return event


def _upgrade_v1_attempt(attempt: dict[str, Any]) -> dict[str, Any]:
    failed = bool(attempt.get("error_kind"))
    out = {"error_kind": "", "backend": "", "details": {}, **attempt}
    if out.get("load_ms") is None:
        out["load_ms"] = 0.0
    if out.get("cost_source") is None:
        out["cost_source"] = "elapsed" if failed else "backend"
    if out.get("cost_ms") is None:  # the executor's rule, from the durations version 1 recorded
        durations = ("total_ms",) if failed else ("prompt_eval_ms", "eval_ms")
        values = [out.get(name) for name in durations]
        numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if len(numbers) == len(values):  # else left missing: the reader names the field
            out["cost_ms"] = sum(numbers)
    return out


# ---- synthetic events (tests, benchmarks) --------------------------------------------------------


def synthetic_event(
    prompt_id: str,
    *,
    raw_ms: float = 100.0,
    co_ms: float | None = None,
    quality: float = 1.0,
    arm: str = "tsg",
    seq: int = 0,
    task: str = "general",
    json_ok: bool | None = None,
    tiers: Sequence[str] = ("std",),
    cost_ms: float | None = None,
    completion_tokens: int = 20,
    in_warmup: bool = False,
    timeout: bool = False,
    error_kind: str = "",
    refusal: bool = False,
    timeout_s: float = 60.0,
    ladder: Sequence[str] = V1_LADDER,
    bucket: Mapping[str, Stratum] | None = None,
    energy: Energy | None = None,
    run_id: str = "synthetic",
    prompt: str | None = None,
) -> Event:
    """An event with known latencies and quality, for tests and benchmarks that need many of them.

    It goes through :meth:`Event.answered` (or :meth:`Event.failed` when ``tiers`` is empty), so it
    has every field a recorded event has. ``raw_ms`` and ``co_ms`` (default ``raw_ms``) are kept exactly
    (the schedule stamps are the nearest ns). ``tiers`` are the attempts' tiers in order: the first is
    the routed tier, a repeat is a repair, a change an upgrade; the attempts share ``cost_ms`` (default
    ``raw_ms``) equally and the last one carries the ``completion_tokens``. ``timeout`` or a non-empty
    ``error_kind`` ends the last attempt that way (timeout: right-censored). ``bucket`` defaults to
    ``{"task": task, "ctx_bucket": "short", "lang": "en"}``; the prompt text to the prompt id.
    """
    co_ms = raw_ms if co_ms is None else co_ms
    intended = seq * 1_000_000_000  # one second apart: requests never overlap
    dispatched = intended + round((co_ms - raw_ms) * 1e6)
    schedule = Schedule(intended, dispatched, dispatched + round(raw_ms * 1e6))
    kind = "timeout" if timeout else error_kind
    prompt = prompt_id if prompt is None else prompt
    common: dict[str, Any] = {"run_id": run_id, "arm": arm, "prompt_id": prompt_id, "prompt": prompt, "seq": seq,
              "schedule": schedule, "fingerprint": _synthetic_fingerprint(tuple(ladder)), "timeout_s": timeout_s,
              "timed_out": timeout, "in_warmup": in_warmup, "energy": energy,
              "bucket": {"task": task, "ctx_bucket": "short", "lang": "en"} if bucket is None else bucket}
    if not tiers:
        latency = Latency(raw_ms, co_ms, co_ms - raw_ms, None, 0.0, 0.0, raw_ms, "elapsed", None)
        return Event.failed(error=ErrorInfo(kind or "runner_exception", "synthetic"), expects_json=task == "json",
                            latency=latency, **common)
    share = (raw_ms if cost_ms is None else cost_ms) / len(tiers)
    attempts: list[Attempt] = []
    for i, tier in enumerate(tiers):
        failed = i == len(tiers) - 1 and bool(kind)
        tokens = completion_tokens if i == len(tiers) - 1 and not kind else 0
        attempt_kind = "initial" if i == 0 else ("repair" if tier == tiers[i - 1] else "upgrade")
        attempts.append(Attempt(tier, attempt_kind, "synthetic", 10, tokens, 0.0, 0.0 if failed else share, share,
                                None if failed else 1.0, 0.0, kind if failed else "stop", not failed, kind,
                                kind if failed else "", "synthetic", cost_ms=share,
                                cost_source="elapsed" if failed else "backend"))
    upgrades = sum(a.kind == "upgrade" for a in attempts)
    route = Route(tiers[0], tiers[0], tiers[0], tiers[-1], upgrades, any(a.kind == "repair" for a in attempts),
                  False, "synthetic", 0.5, tuple(sorted(set(tiers))))
    latency = Latency(raw_ms, co_ms, co_ms - raw_ms, attempts[0].ttft_ms, sum(a.eval_ms for a in attempts), 0.0,
                      share * len(tiers), "attempts", None)
    return Event.answered(attempts=attempts, route=route, quality=Quality(quality, json_ok, refusal, "synthetic",
                                                                           not kind),
                          plan=Plan(0.5, 0.5, task, len(prompt)), answer="" if kind else "synthetic",
                          error=ErrorInfo(kind, "synthetic") if kind else None, latency=latency, **common)


@functools.lru_cache(maxsize=16)
def _synthetic_fingerprint(ladder: tuple[str, ...]) -> Fingerprint:
    return Fingerprint(tsglab=__version__, ladder=ladder, policy_hash="synthetic")


# ---- JSON Schema --------------------------------------------------------------------------------


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of an event record (version :data:`SCHEMA_VERSION`), generated from the dataclasses."""
    schema = msgspec.json.schema(Event)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": f"tsglab event record, schema version {SCHEMA_VERSION}", **schema}


def event_json_schema_text() -> str:
    """:func:`event_json_schema` as the committed file's text (sorted keys, 2-space indent, final newline)."""
    return json.dumps(event_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_event_json_schema(path: str | Path = SCHEMA_FILE) -> Path:
    """Regenerate the committed ``event.schema.json`` (run after changing a record class:
    ``python -c "from tsglab.events import write_event_json_schema; write_event_json_schema()"``)."""
    path = Path(path)
    path.write_text(event_json_schema_text(), encoding="utf-8")
    return path

