"""The request recorder: one work item through the gateway, scored, recorded as exactly one event.

Both load modes dispatch through :meth:`Recorder.record`, so one failure rule holds in both: an
exception raised while handling a request (a bug in a backend, a check or the scorer) either becomes
that request's error event and the run goes on (``on_error: record``, the default), or stops the run
with the exception (``on_error: stop``), leaving it incomplete and resumable. Backend failures the
executor expects (timeouts, HTTP errors, refused connections) are never exceptions here: they are
recorded in the event by the executor itself.

Every event is written at most once per ``seq``: the open-loop watchdog may abandon a request that
overran its timeout and write its censored event itself (:meth:`Recorder.abandon`), and the late
answer is then dropped. Once the run stops accepting events (:meth:`Recorder.close`), nothing more is
written.

No event carries a secret: the backends scrub what their servers send, and the recorder checks every
event once more against the secrets of every tier (API keys, the keys in their environment variables,
user info of endpoints) before it is written, scrubbing any it finds (a backend from a user's package
may not scrub).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from tsglab.config import ExperimentSpec
from tsglab.config.secrets import Scrubber, url_secrets
from tsglab.events.log import EventWriter
from tsglab.events.record import Energy, ErrorInfo, Event, Fingerprint, Plan, Quality, Route, Schedule
from tsglab.load.schedule import WorkItem
from tsglab.policy import TierLadder, handle
from tsglab.suite import QualityScore, score_answer

__all__ = ["InFlight", "Recorder", "run_scrubber"]

#: seq -> (work item, intended start, dispatch stamp, in warm-up, the thread sending it)
InFlight = tuple[WorkItem, int, int, bool, threading.Thread]


class Recorder:
    """Runs work items through the gateway and writes their events (thread-safe)."""

    def __init__(self, spec: ExperimentSpec, ladder: TierLadder, writer: EventWriter, *, run_id: str, segment: int,
                 fingerprints: dict[str, Fingerprint], energy: Energy | None = None, progress: Any = None) -> None:
        self.spec, self.ladder, self.writer = spec, ladder, writer
        self.run_id, self.segment, self.fingerprints = run_id, segment, fingerprints
        self.energy = energy  # what events say about energy until the segment ends
        self.progress = progress
        self.lock = threading.Lock()
        self.written = 0
        self.closed = False
        self.in_flight: dict[int, InFlight] = {}
        self.scrubber = run_scrubber(spec)

    def record(self, work: WorkItem, intended_ns: int, in_warmup: bool) -> tuple[int, bool]:
        """Send one request now and record it. Returns the dispatch stamp and whether its event was written
        (False: the run stopped, or the watchdog abandoned the request). With ``on_error: stop`` an exception
        while handling the request propagates (nothing is written for it); with ``record`` it becomes the
        request's error event."""
        dispatched_ns = time.monotonic_ns()
        with self.lock:
            self.in_flight[work.seq] = (work, intended_ns, dispatched_ns, in_warmup, threading.current_thread())
        try:
            event = self._answered(work, intended_ns, dispatched_ns, in_warmup)
        except Exception as exc:
            if self.spec.on_error == "stop":
                with self.lock:
                    self.in_flight.pop(work.seq, None)
                raise
            event = self._failed(work, intended_ns, dispatched_ns, time.monotonic_ns(), in_warmup,
                                 kind="runner_exception", message=f"{type(exc).__name__}: {exc}")
        return dispatched_ns, self._write(work, event)

    def abandon(self, seq: int, *, message: str) -> bool:
        """Record the request ``seq`` still in flight as a right-censored timeout (the open-loop watchdog's
        call for a backend that does not enforce its timeout); its late answer, if any, is dropped.
        Returns whether the event was written."""
        with self.lock:
            entry = self.in_flight.get(seq)
        if entry is None:
            return False
        work, intended, dispatched, in_warmup, _thread = entry
        event = self._failed(work, intended, dispatched, time.monotonic_ns(), in_warmup, kind="timeout",
                             message=message, timed_out=True)
        return self._write(work, event)

    def overdue(self, older_than_ns: int) -> list[tuple[int, threading.Thread]]:
        """(seq, sending thread) of requests dispatched more than ``older_than_ns`` ago and still in flight."""
        now = time.monotonic_ns()
        with self.lock:
            return [(seq, entry[4]) for seq, entry in self.in_flight.items() if now - entry[2] > older_than_ns]

    def close(self) -> None:
        """Stop accepting events (Ctrl-C, end of the run): late answers are dropped."""
        with self.lock:
            self.closed = True

    def _answered(self, work: WorkItem, intended_ns: int, dispatched_ns: int, in_warmup: bool) -> Event:
        item = work.item
        handled = handle(self.ladder, self.spec.arms[work.arm], item.prompt, json_schema=item.json_schema,
                         timeout_s=self.spec.load.timeout_s, seed=self.spec.seed, retry=self.spec.retry)
        completed_ns = time.monotonic_ns()
        ex = handled.execution
        if ex.error_kind:
            quality = QualityScore(0.0, False if item.json_schema is not None else None,
                                   f"no answer: {ex.error_kind}")
        else:
            quality = score_answer(item, ex.text)
        return Event.answered(
            run_id=self.run_id, arm=work.arm, prompt_id=item.id, prompt=item.prompt, seq=work.seq,
            segment=self.segment, bucket=item.strata, plan=Plan.from_report(handled.plan),
            route=Route.from_decision(handled.decision, ex), attempts=ex.attempts,
            schedule=Schedule(intended_ns, dispatched_ns, completed_ns),
            quality=Quality(quality.score, quality.json_ok, ex.refusal, quality.detail, ex.ok), answer=ex.text,
            error=ErrorInfo(ex.error_kind, ex.error) if ex.error_kind else None, timed_out=ex.timed_out,
            timeout_s=self.spec.load.timeout_s, overhead_ms=handled.overhead_ms, in_warmup=in_warmup,
            fingerprint=self.fingerprints[work.arm], energy=self.energy, enforcement=ex.enforcement)

    def _failed(self, work: WorkItem, intended_ns: int, dispatched_ns: int, completed_ns: int, in_warmup: bool, *,
                kind: str, message: str, timed_out: bool = False) -> Event:
        """A request that produced no gateway result (an exception, or abandoned by the watchdog): what is
        known about it, without running the planner again."""
        item = work.item
        return Event.failed(
            run_id=self.run_id, arm=work.arm, prompt_id=item.id, prompt=item.prompt, seq=work.seq,
            segment=self.segment, bucket=item.strata, schedule=Schedule(intended_ns, dispatched_ns, completed_ns),
            error=ErrorInfo(kind, message), timed_out=timed_out, expects_json=item.json_schema is not None,
            timeout_s=self.spec.load.timeout_s, in_warmup=in_warmup, fingerprint=self.fingerprints[work.arm],
            energy=self.energy)

    def _scrubbed(self, event: Event) -> Event:
        if not self.scrubber:
            return event
        text = json.dumps(event.to_json(), ensure_ascii=False)
        if not self.scrubber.contains_secret(text):
            return event
        return Event.from_json(json.loads(self.scrubber(text)), where=f"event seq {event.seq} (scrubbed)")

    def _write(self, work: WorkItem, event: Event) -> bool:
        with self.lock:
            if self.in_flight.pop(work.seq, None) is None or self.closed:
                return False
            self.writer.write(self._scrubbed(event))
            self.written += 1
            if self.progress is not None:
                self.progress.update(1)
                self.progress.set_postfix_str(f"{work.arm} {work.item.id} → {event.route.final}", refresh=False)
        return True


def run_scrubber(spec: ExperimentSpec) -> Scrubber:
    """A scrubber of every secret the spec's tiers hold or point to: written keys, the values of their
    key environment variables, and the user info of their endpoints."""
    found: list[str] = []
    for tier in spec.tiers.values():
        found.append(tier.api_key)
        env_names = {tier.api_key_env} if tier.api_key_env else set()
        if tier.backend == "openai":
            env_names.add("OPENAI_API_KEY")
        found += [os.environ.get(name, "") for name in env_names]
        found += url_secrets(tier.endpoint)
    return Scrubber(found)

