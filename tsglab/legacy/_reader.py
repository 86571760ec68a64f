"""Reading a legacy bench directory: ``<mode>_<YYYYmmdd_HHMMSS>_{events.jsonl,summary.json}`` pairs."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The classes live in tsglab.errors (one exception tree); imported here so existing imports keep working.
from tsglab.errors import LegacyFormatError
from tsglab.errors import LegacyMismatchError as LegacyMismatchError

_NAME = re.compile(r"^(?P<mode>.+?)_(?P<stamp>\d{8}_\d{6})_(?P<kind>events\.jsonl|summary\.json)$")

#: Keys every legacy event must carry (the others are optional: see the package docstring).
REQUIRED_EVENT_KEYS = ("idx", "prompt_id", "e2e_ms", "in_warmup", "right_censored", "final_path")
#: Keys every legacy summary must carry: the metrics the import recomputes, and the period.
SUMMARY_METRICS = ("warm_p50_ms", "warm_p95_ms_co", "overall_p95_ms_co", "warm_p95_ms_km", "avg_eval_ms",
                   "r_costly_pct")
REQUIRED_SUMMARY_KEYS = (*SUMMARY_METRICS, "period_ms")


@dataclass(frozen=True)
class LegacyArm:
    """One legacy bench run of one mode: its events, its summary and where they came from."""

    mode: str
    stamp: str
    events_path: Path
    summary_path: Path
    events: list[dict[str, Any]] = field(repr=False)
    summary: dict[str, Any] = field(repr=False)
    events_sha256: str = ""
    summary_sha256: str = ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_event(event: Any, path: Path, lineno: int) -> None:
    where = f"{path}:{lineno}"
    if not isinstance(event, dict):
        raise LegacyFormatError(f"{where}: expected a JSON object per line; got {type(event).__name__}.")
    for key in REQUIRED_EVENT_KEYS:
        if key not in event:
            raise LegacyFormatError(
                f"{where}: missing key '{key}'; every legacy event needs {', '.join(REQUIRED_EVENT_KEYS)}. "
                "Add the key (or drop the line if the request was never sent)."
            )
    if not _is_number(event["e2e_ms"]) or event["e2e_ms"] < 0:
        raise LegacyFormatError(f"{where}: field 'e2e_ms' must be a finite number >= 0 (ms); "
                                f"got {event['e2e_ms']!r}. Fix the value or drop the line.")
    for key in ("in_warmup", "right_censored"):
        if not isinstance(event[key], bool):
            raise LegacyFormatError(f"{where}: field '{key}' must be true or false; got {event[key]!r}.")
    if "eval_ms" in event and not _is_number(event["eval_ms"]):
        raise LegacyFormatError(f"{where}: field 'eval_ms' must be a finite number (ms); got {event['eval_ms']!r}.")


def read_legacy_events(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Legacy events of one file, checked line by line; errors name the file, the line and the field."""
    path = Path(path)
    events = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LegacyFormatError(f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or delete the line.") from exc
        _check_event(event, path, lineno)
        events.append(event)
    if not events:
        raise LegacyFormatError(f"{path}: no events; a legacy events file holds one JSON object per line.")
    return events


def read_legacy_summary(path: str | os.PathLike) -> dict[str, Any]:
    """A legacy summary, with every metric the import checks present and numeric."""
    path = Path(path)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LegacyFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}).") from exc
    if not isinstance(summary, dict):
        raise LegacyFormatError(f"{path}: expected a JSON object; got {type(summary).__name__}.")
    for key in REQUIRED_SUMMARY_KEYS:
        if key not in summary:
            raise LegacyFormatError(f"{path}: missing key '{key}'; a legacy summary needs "
                                    f"{', '.join(REQUIRED_SUMMARY_KEYS)}. Restore it from the bench output.")
        value = summary[key]
        missing_value = value is None or (isinstance(value, float) and math.isnan(value))  # an empty sample
        if not (_is_number(value) or (missing_value and key != "period_ms")):
            raise LegacyFormatError(f"{path}: field '{key}' must be a number; got {value!r}.")
    if summary["period_ms"] <= 0:
        raise LegacyFormatError(f"{path}: field 'period_ms' must be > 0 (the pacing period in ms); "
                                f"got {summary['period_ms']!r}.")
    return summary


def read_legacy_dir(legacy_dir: str | os.PathLike) -> list[list[LegacyArm]]:
    """Pair events and summary files by mode and timestamp, and group the pairs into sessions.

    Sessions: the pairs sorted by timestamp, a new session starting whenever a mode repeats (the
    legacy bench ran each mode once per session). Returns one list of arms per session.
    """
    legacy_dir = Path(legacy_dir)
    if not legacy_dir.is_dir():
        raise LegacyFormatError(f"{legacy_dir}: not a directory; pass the folder that holds the legacy "
                                "<mode>_<YYYYmmdd_HHMMSS>_events.jsonl / _summary.json files.")
    found: dict[tuple[str, str], dict[str, Path]] = {}
    for path in sorted(legacy_dir.iterdir()):
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.setdefault((match["stamp"], match["mode"]), {})[match["kind"]] = path
    if not found:
        raise LegacyFormatError(f"{legacy_dir}: no legacy run files (expected names like "
                                "baseline_20250314_101500_events.jsonl and baseline_20250314_101500_summary.json).")
    sessions: list[list[LegacyArm]] = []
    for (stamp, mode), files in sorted(found.items()):
        base = legacy_dir / f"{mode}_{stamp}"
        if "summary.json" not in files:
            raise LegacyFormatError(f"{files['events.jsonl']}: no matching summary {base.name}_summary.json; "
                                    "copy the summary the bench wrote next to it, or move the events file out.")
        if "events.jsonl" not in files:
            raise LegacyFormatError(f"{files['summary.json']}: no matching events {base.name}_events.jsonl; "
                                    "the summary cannot be checked without its events. Copy them in or move "
                                    "the summary out.")
        arm = LegacyArm(
            mode=mode,
            stamp=stamp,
            events_path=files["events.jsonl"],
            summary_path=files["summary.json"],
            events=read_legacy_events(files["events.jsonl"]),
            summary=read_legacy_summary(files["summary.json"]),
            events_sha256=_sha256(files["events.jsonl"]),
            summary_sha256=_sha256(files["summary.json"]),
        )
        if not sessions or any(a.mode == mode for a in sessions[-1]):
            sessions.append([])
        sessions[-1].append(arm)
    return sessions
