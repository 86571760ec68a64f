"""Import the TSG paper's legacy bench output into tsglab runs, and audit its summary statistics.

The legacy bench wrote, per mode (``baseline``, ``tsg``, ...) and run, ``<mode>_<YYYYmmdd_HHMMSS>_events.jsonl``
and ``<mode>_<YYYYmmdd_HHMMSS>_summary.json``. :func:`import_legacy` pairs them by mode and timestamp,
checks every summary metric against its events with the legacy estimators (to 1e-6), writes one
tsglab run per session (``runs/<legacy-run-id>/events.jsonl``, :class:`tsglab.events.Event` records of
schema version 2, + ``run.json`` with ``"source": "legacy"`` and each original file's name and sha256)
and a table ``tables/legacy_vs_tsglab.{md,tex}`` that puts tsglab's corrected estimators beside the
legacy ones. The events' ``fingerprint.ladder`` is the legacy bench's fixed ladder (light, std, enh),
and ``prompt_sha`` the hash of the legacy row's ``prompt`` when it has one (else empty: unknown).

Assumptions (the legacy format is undocumented; each choice is ours and is recorded here):

- **Sessions**: pairs sorted by timestamp; a new session starts when a mode repeats. Each session is
  one run ``legacy-<YYYYmmdd-HHMMSS>`` (first timestamp) whose arms are named by mode, so the
  ``baseline`` mode is the report's baseline arm.
- **Required keys**: events need ``idx, prompt_id, e2e_ms, in_warmup, right_censored, final_path``;
  summaries need ``warm_p50_ms, warm_p95_ms_co, overall_p95_ms_co, warm_p95_ms_km, avg_eval_ms,
  r_costly_pct, period_ms``. Other keys are optional.
- **Legacy summary semantics** (what the import reproduces): warm = ``not in_warmup``; every latency
  is ``e2e_ms`` taken at face value, censored ones included; ``warm_p50_ms`` = binomial-weight "HD"
  at 0.5 of warm e2e; ``warm_p95_ms_co`` / ``overall_p95_ms_co`` = binomial "HD" at 0.95 of the legacy
  CO fill of warm / all e2e with ``period_ms``; ``warm_p95_ms_km`` = legacy KM at 0.95 of warm
  (e2e, right_censored), the largest time when the curve never reaches 0.95; ``avg_eval_ms`` and
  ``r_costly_pct`` are warm-only too, like every legacy warm metric (only ``overall_p95_ms_co`` uses
  all rows): with W = the events with ``not in_warmup``, ``avg_eval_ms`` = (1/|W|) Σ_W eval, where
  eval is ``eval_ms`` when an event has it, else its ``e2e_ms`` (the proxy the bench fell back to;
  the legacy ``eval_ms`` is the *last* attempt's), and ``r_costly_pct`` = 100 · |{e ∈ W :
  ``final_path == "enh"``}| / |W| (NaN when W is empty). The table's tsglab column uses the same
  warm rows, so the two columns differ by estimator only.
- **Repeated prompt ids**: the legacy bench re-sent prompts (its warm-up reuses the suite's first
  prompts), so a prompt id can occur several times per arm. The k-th occurrence (in ``idx`` order)
  gets ``request_id`` ``<run>/<mode>/<prompt_id>#k``, and ``tsglab report`` pairs the k-th baseline
  request of a prompt with its k-th gateway request (:func:`tsglab.report.pairing.pair_arms`).
- **Schedule stamps**: legacy has only ``e2e_ms`` and a period. Events are put on a fixed-period
  schedule per arm (ordered by ``idx``), anchored at the file's timestamp: intended = dispatched =
  anchor + seq·P, completed = dispatched + e2e (ns, rounded); ``latency.raw_ms = latency.co_ms =
  e2e_ms`` exactly. So tsglab's CO view of an imported run equals its raw view: the legacy data hold
  no dispatch lag to correct (the back-fill column of the table is the only CO correction possible).
- **Route and attempts**: ``final_path`` is the final tier name; ``upgrades`` a count (a list counts
  its items). ``attempts`` as a list (tier names or dicts with ``tier`` and optional ``eval_ms``,
  ``eval_tokens``) is taken as is; as a count ``n`` (or absent: 1 + upgrades + repaired) the tiers are
  reconstructed: the upgrade ladder ending at ``final_path`` (one tier per upgrade), preceded by
  repairs at the initial tier. Without per-attempt data, ``eval_tokens`` and the event's eval ms go
  to the last attempt. Each attempt costs its ``eval_ms`` (``cost_source: "backend"``: the bench measured
  it), and tsglab's cost (``latency.cost_ms``) sums them over all attempts.
- **Censoring**: ``right_censored`` → ``censoring.timeout``; the timeout is the summary's
  ``timeout_s`` if present, else the largest censored ``e2e_ms`` (else the largest ``e2e_ms``).
- **Quality**: the bench had no grader. ``quality.score`` is an event's ``quality`` /
  ``quality_score`` if present; else for JSON tasks (``need_json``) 1 if ``json_ok`` else 0; else 0 on
  an error, refusal or timeout and 1 otherwise. Task: ``task`` if set, else json/general by ``need_json``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from tsglab._version import __version__
from tsglab.errors import RunError
from tsglab.events.log import GROUP_COMMIT_INTERVAL_S, EventWriter, write_manifest
from tsglab.legacy._convert import (
    SUMMARY_TOLERANCE,
    arm_timeout_s,
    comparison_table,
    convert_arm,
    legacy_run_id,
    stamp_datetime,
)
from tsglab.legacy._reader import LegacyArm, LegacyFormatError, LegacyMismatchError, read_legacy_dir

__all__ = [
    "LegacyArm",
    "LegacyFormatError",
    "LegacyImport",
    "LegacyMismatchError",
    "SUMMARY_TOLERANCE",
    "comparison_table",
    "import_legacy",
    "read_legacy_dir",
]

TABLE_NAME = "legacy_vs_tsglab"
TABLE_TITLE = "Legacy estimators (recomputed) vs tsglab's corrected estimators"
TABLE_NOTE = ("legacy: the paper's bench estimators recomputed from its events (checked against its summary "
              f"to {SUMMARY_TOLERANCE:g}): binomial-weight 'HD', CO fill L-jP down to 0 (≤ 120 per value), KM "
              "with exact compare and no censoring limit, eval ms of the last attempt. tsglab: Harrell–Davis "
              "(Beta weights), back-fill >= P, Kaplan–Meier (NaN beyond 5 % censoring), cost over all attempts. "
              "Latencies are e2e_ms; warm = not in_warmup; avg_eval_ms and r_costly_pct are over warm rows "
              "in both columns, as in the legacy summary.")


@dataclass(frozen=True)
class LegacyImport:
    """One converted legacy session: the run written and its legacy-vs-tsglab table."""

    run_id: str
    run_dir: Path
    arms: tuple[str, ...]
    n_events: dict[str, int]
    table: pd.DataFrame = field(repr=False)

    def to_markdown(self) -> str:
        from tsglab.report.render import to_markdown

        return to_markdown(self.table, title=f"{TABLE_TITLE}: {self.run_id}", note=TABLE_NOTE)

    def __str__(self) -> str:
        return self.to_markdown()


def _manifest(run_id: str, session: list[LegacyArm], legacy_dir: Path) -> dict:
    first = session[0]
    return {
        "run_id": run_id,
        "status": "complete",
        "source": "legacy",
        "legacy_dir": str(legacy_dir),
        "legacy_files": [{"mode": a.mode, "timestamp": a.stamp, "events": a.events_path.name,
                          "events_sha256": a.events_sha256, "summary": a.summary_path.name,
                          "summary_sha256": a.summary_sha256, "n_events": len(a.events)} for a in session],
        "arms": [a.mode for a in session],
        "seed": None,
        "spec_hash": None,
        "spec": {"load": {"mode": "paced (legacy, reconstructed)", "period_ms": float(first.summary["period_ms"]),
                          "timeout_s": arm_timeout_s(first),
                          "warmup_count": sum(bool(e["in_warmup"]) for e in first.events)}},
        "imported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tsglab_version": __version__,
        "assumptions": "see the docstring of tsglab.legacy",
    }


def _write_table(run_dir: Path, table: pd.DataFrame, run_id: str) -> None:
    from tsglab.report.render import to_latex, to_markdown

    out = run_dir / "tables"
    out.mkdir(parents=True, exist_ok=True)
    title = f"{TABLE_TITLE}: {run_id}"
    (out / f"{TABLE_NAME}.md").write_text(to_markdown(table, title=title, note=TABLE_NOTE), encoding="utf-8")
    (out / f"{TABLE_NAME}.tex").write_text(to_latex(table, title=title, note=TABLE_NOTE, label=f"tab:{TABLE_NAME}"),
                                           encoding="utf-8")


def import_legacy(
    legacy_dir: str | os.PathLike,
    *,
    runs_dir: str | os.PathLike = "runs",
    strict: bool = True,
    overwrite: bool = False,
) -> list[LegacyImport]:
    """Convert every session of a legacy bench directory into a tsglab run.

    Parameters
    ----------
    legacy_dir : path
        Folder with ``<mode>_<YYYYmmdd_HHMMSS>_events.jsonl`` / ``_summary.json`` pairs.
    runs_dir : path, default "runs"
        Where the runs ``<runs_dir>/legacy-<YYYYmmdd-HHMMSS>/`` are written.
    strict : bool, default True
        Raise :class:`LegacyMismatchError` when a summary value is not reproduced to
        :data:`SUMMARY_TOLERANCE`; False warns and flags the row in the table instead.
    overwrite : bool, default False
        Replace an existing run directory of the same id.

    Returns
    -------
    list of LegacyImport
        One per session, in timestamp order.

    Raises
    ------
    LegacyFormatError
        A file is missing its pair, or a line, key or value is malformed (file, line and field named).
    LegacyMismatchError
        A summary metric is not reproduced (``strict=True``).
    RunError
        The run directory exists already and ``overwrite`` is False.
    """
    legacy_dir = Path(legacy_dir)
    sessions = read_legacy_dir(legacy_dir)
    tables = [comparison_table(session, strict=strict) for session in sessions]  # check all before writing
    results = []
    for session, table in zip(sessions, tables, strict=True):
        run_id = legacy_run_id(session)
        run_dir = Path(runs_dir) / run_id
        if run_dir.exists():
            if not overwrite:
                raise RunError(f"{run_dir}: already exists; delete it, pass --force (overwrite=True) or choose "
                               "another --runs-dir.")
            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        origin = stamp_datetime(session[0].stamp)
        n_events = {}
        # the run's one event writer (schema version 2); group commit, since close() fsyncs the whole file
        with EventWriter(run_dir, fsync_interval_s=GROUP_COMMIT_INTERVAL_S) as writer:
            for arm in session:
                events = convert_arm(arm, run_id=run_id, origin=origin)
                n_events[arm.mode] = len(events)
                for event in events:
                    writer.write(event)
        write_manifest(run_dir, _manifest(run_id, session, legacy_dir))
        _write_table(run_dir, table, run_id)
        results.append(LegacyImport(run_id=run_id, run_dir=run_dir, arms=tuple(a.mode for a in session),
                                    n_events=n_events, table=table))
    return results
