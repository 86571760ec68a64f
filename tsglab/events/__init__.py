"""Event log of a run: append-only JSONL plus a manifest."""

from tsglab.events.log import (
    EVENTS_FILE,
    MANIFEST_FILE,
    SCHEMA_VERSION,
    EventWriter,
    read_events,
    read_manifest,
    write_manifest,
)
from tsglab.events.validate import LatencyProblem, check_latencies, latency_problem

__all__ = [
    "EVENTS_FILE",
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "EventWriter",
    "LatencyProblem",
    "check_latencies",
    "latency_problem",
    "read_events",
    "read_manifest",
    "write_manifest",
]
