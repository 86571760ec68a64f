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

__all__ = [
    "EVENTS_FILE",
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "EventWriter",
    "read_events",
    "read_manifest",
    "write_manifest",
]
