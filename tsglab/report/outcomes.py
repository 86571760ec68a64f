"""How the requests of each arm ended: answered, timed out, or failed by error kind.

A run in which every request of an arm failed (a server down, a wrong model name, every request
timing out) still has a report: its latency views are empty (NaN), its figures are skipped, and
:func:`outcome_line` says so in one line with the counts and kinds, so the reader learns what went wrong
instead of meeting a plotting traceback.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["answered_mask", "outcome_line", "outcome_table"]

_EXAMPLE_CHARS = 160


def answered_mask(frame: pd.DataFrame) -> pd.Series:
    """Requests that produced an answer latency: neither failed nor timed out."""
    return ~frame["failed"] & ~frame["timeout"]


def _kinds(frame: pd.DataFrame) -> pd.Series:
    """Each unanswered request's kind: ``timeout`` for a timeout, else its error kind."""
    unanswered = frame[~answered_mask(frame)]
    return unanswered["error_kind"].where(~unanswered["timeout"], "timeout").replace("", "unknown")


def outcome_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per arm: requests, answered, timed out, failed, the kinds with their counts (most
    frequent first) and the first message of the most frequent error kind (of a timeout when none failed)."""
    rows = []
    for arm, frame in frames.items():
        kinds = _kinds(frame)
        counts = kinds.value_counts()
        example = ""
        if len(counts):  # the most frequent error kind says most; a timeout's message only when nothing failed
            failures = counts.drop("timeout", errors="ignore")
            top = failures.index[0] if len(failures) else counts.index[0]
            messages = frame.loc[kinds.index[kinds == top], "error_message"]
            example = next((str(m) for m in messages if m), "")
            if len(example) > _EXAMPLE_CHARS:
                example = example[:_EXAMPLE_CHARS] + "…"
        rows.append({"arm": arm, "n": len(frame), "answered": int(answered_mask(frame).sum()),
                     "timeouts": int(frame["timeout"].sum()), "failed": int(frame["failed"].sum()),
                     "kinds": ", ".join(f"{kind}: {n}" for kind, n in counts.items()) or "-",
                     "example": example})
    return pd.DataFrame(rows, columns=["arm", "n", "answered", "timeouts", "failed", "kinds", "example"])


def outcome_line(table: pd.DataFrame) -> str:
    """One line for the report's head when an arm has no answered request ("" otherwise): which arms,
    how many requests and of which kinds, and what that means for the tables and figures."""
    empty = table[(table["answered"] == 0) & (table["n"] > 0)]
    if not len(empty):
        return ""
    arms = "; ".join(f"{row.arm}: {row.n} of {row.n} ({row.kinds})" for row in empty.itertuples(index=False))
    which = "either arm" if len(empty) == len(table) == 2 else ("any arm" if len(empty) == len(table) else
                                                                 f"{len(empty)} of {len(table)} arms")
    rows = sorted(empty.itertuples(index=False), key=lambda row: row.failed == 0)  # an error before a timeout
    example = next((row.example for row in rows if row.example), "")
    timeouts_only = bool((empty["timeouts"] == empty["n"]).all())
    meaning = ("every latency is censored, so quantiles are lower bounds at best" if timeouts_only else
               "no answer latency exists, so latency quantiles are not computed (—) and the latency figures are "
               "skipped")
    tail = f" First error: {example}" if example else ""
    return f"No request was answered in {which} — {arms}; {meaning}.{tail}"
