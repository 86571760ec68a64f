"""Publication tables: one presentation of every report table, written as LaTeX, HTML and Markdown.

This module owns how a table looks: which columns are shown, their human headers with units, the
precision of each kind of number, which ``(estimate, ci_low, ci_high)`` columns merge into one cell,
and why an empty cell is empty. The statistics come in as DataFrames (``RunReport.tables()``,
``build_ablation``); nothing here computes a figure.

Public API
----------
``to_latex(name, frame, *, title="", note="", label_prefix="tab", layout="table", footnotes=None) -> str``
    A booktabs + siunitx + threeparttable float. ``layout``: ``"table"`` (a column's width),
    ``"table*"`` (spans both columns of a two-column paper; in a one-column paper the same as a
    table) or ``"narrow"`` (fewer columns, ``\\footnotesize``: fits one column of a two-column
    ``article``). The label is ``<label_prefix>:<name>`` (``:narrow`` added for the narrow layout).
``to_html(name, frame, *, title="", note="", footnotes=None, standalone=False) -> str``
    A styled fragment (``<style>`` scoped to ``.tsglab-table``; usable as ``_repr_html_``), or with
    ``standalone`` a full HTML document. :func:`html_page` joins fragments into one document.
``to_markdown(name, frame, *, title="", note="", footnotes=None) -> str``
    A pipe table, numbers right-aligned (``---:``), footnotes and the note as plain paragraphs.
``latex_preamble() -> str``
    The lines a paper needs before ``\\input``-ing the tables (written as ``tables/preamble.tex``).
``label_prefix_for(run_id) -> str``
    ``tab:<run-id-slug>``: the default label prefix of a report, so two reports in a paper never clash.
``footnotes_from_verdict(verdict) -> dict[str, dict[str, str]]``
    The reasons the verdict gives for Family A/B rows that are not computable, per table and row.
``write_tables(out, tables, *, notes, label_prefix, footnotes, page_title) -> list[Path]``
    Every file of a report's ``tables/`` folder: ``<name>.tex``, ``<name>.narrow.tex``,
    ``<name>.html``, ``<name>.md``, ``preamble.tex`` and (with ``page_title``) ``report.html``.

``name`` is a table name of ``RunReport.tables()`` (``outcomes``, ``headline``, ``p95_views``,
``tiers``, ``tasks``, ``family_A``, ``family_B``, ``family_C``, ``routing``, ``load``, ``energy``) or
``ablation``; :data:`PRESENTATIONS` describes each. Any other name, and any column a description does
not list, still renders: a humanised header and a precision chosen from the column's name and dtype.

Empty cells
-----------
A value that was not computed prints as an em-dash with a footnote saying why. The reason comes, in
this order, from ``footnotes`` (``{row key or column name: reason}``; the row key is the row's key
columns joined by ``/``, e.g. ``Warm-only/overall`` in Family B), the frame's ``note`` column, a
``Not computed — <arm>: <reason>; ...`` sentence in ``note``, the description's reason for that
column, and last a generic reason.

Precision (one rule per column, never per cell)
-----------------------------------------------
``ms`` and other measured values: 0 decimals when the column's largest value is ≥ 100, else enough
for 3 significant digits of that value (at most 3 decimals); ``rate``: a percentage with 1 decimal;
``score``: 3 decimals; ``prob``: 3 decimals, ``<0.001`` below; ``ratio``: 2 decimals; ``change``:
signed, 1 decimal; ``count``: an integer. In LaTeX plain numbers sit in siunitx ``S`` columns; an
estimate with its interval is an ``S`` column (the estimate, aligned on the decimal point) joined to
an ``l`` column holding ``[\\num{low}, \\num{high}]`` under one header — an ``S`` column cannot hold a
bracketed pair, and one ``l`` cell would lose the alignment of the estimates.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd

__all__ = [
    "PRESENTATIONS",
    "Column",
    "Presentation",
    "footnotes_from_verdict",
    "html_page",
    "label_prefix_for",
    "latex_preamble",
    "to_html",
    "to_latex",
    "to_markdown",
    "write_tables",
]

Kind = Literal["ms", "number", "rate", "score", "prob", "ratio", "change", "count", "text", "verdict", "flag"]
Layout = Literal["table", "table*", "narrow"]
_NUMERIC: frozenset[str] = frozenset({"ms", "number", "rate", "score", "prob", "ratio", "change", "count"})
_GENERIC_MISSING = "not computed: too few observations for this statistic"
_BOUND_NOTE = ("more than 5 % of the requests censored: the P95 is not identifiable; "
               "the cell gives a lower bound")


@dataclass(frozen=True)
class Column:
    """How one column prints: ``header`` (with its unit), ``short`` (the narrow layout's header),
    ``kind`` (the precision rule), ``ci`` (the ``(low, high)`` columns merged into this cell),
    ``bound`` (a lower-bound column shown as ``≥ x`` when the estimate is missing) and ``wrap`` (a
    text column wrapped at that fraction of the line width)."""

    key: str
    header: str
    kind: Kind = "number"
    short: str = ""
    ci: tuple[str, str] | None = None
    bound: str = ""
    wrap: float = 0.0


@dataclass(frozen=True)
class Presentation:
    """One table's description: its ``columns`` in order, the keys kept by the narrow layout
    (``narrow``; empty keeps all), the columns never shown (``hidden``), the columns naming a row
    (``row_key``, for footnotes), why a column may be empty by design (``missing``), the described
    columns that go after the frame's undescribed ones (``last``: the headline's change after its
    arms), and the columns only HTML and Markdown show (``latex_omit``: a page has no horizontal scroll)."""

    columns: tuple[Column, ...]
    narrow: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ("note",)
    row_key: tuple[str, ...] = ("arm",)
    missing: Mapping[str, str] = field(default_factory=dict)
    last: tuple[str, ...] = ()
    latex_omit: tuple[str, ...] = ()


ARM = Column("arm", "Arm", "text")
N = Column("n", "Requests", "count", short="N")
_NO_REQUESTS = "no request in this row"
_NO_GUARD_REASON = "no guardians on this arm"

PRESENTATIONS: dict[str, Presentation] = {
    "outcomes": Presentation(
        (ARM, N, Column("answered", "Answered", "count", short="Ans."),
         Column("timeouts", "Timeouts", "count", short="T/o"), Column("failed", "Failed", "count"),
         Column("kinds", "How they ended", "text", wrap=0.17), Column("example", "First error", "text", wrap=0.2)),
        narrow=("arm", "n", "answered", "timeouts", "failed")),
    "headline": Presentation(
        (Column("metric", "Metric", "text"), Column("change_%", "Change (%)", "change", short="Δ (%)")),
        narrow=("metric",), row_key=("metric",), last=("change_%",),
        missing={"change_%": "no change: the baseline value is 0 or not computed"}),
    "p95_views": Presentation(
        (ARM, Column("view", "View", "text"), N,
         Column("timeouts_rate", "Timeouts (%)", "rate", short="T/o (%)"),
         Column("p50_ms", "P50 (ms)", "ms", ci=("p50_ci_low", "p50_ci_high")),
         Column("p95_ms", "P95 (ms)", "ms", ci=("p95_ci_low", "p95_ci_high"), bound="p95_lower_bound_ms"),
         Column("interval", "Interval", "text"), Column("errors", "Errors", "count")),
        narrow=("arm", "view", "p95_ms"), latex_omit=("timeouts_rate", "interval", "errors"),
        hidden=("note", "identifiable", "p95_lower_bound_ms"), row_key=("arm", "view")),
    "tiers": Presentation(
        (ARM, Column("final_tier", "Final tier", "text", short="Tier"), N,
         Column("share", "Share (%)", "rate"), Column("mean_quality", "Mean quality", "score", short="Quality"),
         Column("avg_eval_ms", "Mean cost (ms)", "ms", short="Cost (ms)"),
         Column("upgraded", "Upgraded", "count"), Column("repaired", "Repaired", "count")),
        narrow=("arm", "final_tier", "n", "share", "mean_quality", "avg_eval_ms"),
        missing={"mean_quality": "no request ended on this tier", "avg_eval_ms": "no request ended on this tier"}),
    "tasks": Presentation(
        (ARM, Column("task", "Task", "text"), N, Column("mean_quality", "Mean quality", "score", short="Quality"),
         Column("json_fail_rate", "JSON failure rate (%)", "rate", short="JSON fail (%)"),
         Column("avg_eval_ms", "Mean cost (ms)", "ms", short="Cost (ms)"),
         Column("p50_raw_ms", "P50 raw (ms)", "ms")),
        narrow=("arm", "task", "n", "mean_quality", "json_fail_rate", "avg_eval_ms"),
        missing={"json_fail_rate": "not a json task: no JSON to fail"}),
    "family_A": Presentation(
        (Column("stratum", "Stratum", "text"), Column("n_pairs", "Pairs", "count"),
         Column("method", "Method", "text"),
         Column("quality_baseline", "Quality baseline", "score", short="Q base"),
         Column("quality_gateway", "Quality gateway", "score", short="Q gate"),
         Column("mean_diff", "Mean difference", "score", short="Diff.", ci=("ci_low", "ci_high")),
         Column("p_value", "p", "prob"), Column("q_fail", "q (fail)", "prob"),
         Column("decision", "Decision", "verdict"), Column("n_needed", "Pairs needed", "count", short="Need")),
        narrow=("stratum", "n_pairs", "mean_diff", "p_value", "decision"), latex_omit=("method", "n_needed"),
        row_key=("stratum",),
        missing={"ci_high": "one-sided (non-inferiority) test: no upper bound",
                 "q_fail": "overall row: a single test, not FDR-adjusted"}),
    "family_B": Presentation(
        (Column("view", "View", "text"), Column("stratum", "Stratum", "text"), Column("n_pairs", "Pairs", "count"),
         Column("p95_baseline", "P95 baseline (ms)", "ms", short="P95 b (ms)"),
         Column("p95_gateway", "P95 gateway (ms)", "ms", short="P95 g (ms)"),
         Column("ratio", "Ratio", "ratio"), Column("ratio_ci_high", "Upper bound", "ratio", short="Upper"),
         Column("p_value", "p", "prob"), Column("q_fail", "q (fail)", "prob"),
         Column("power_at_equal", "Power at ratio 1 (%)", "rate", short="Power (%)"),
         Column("decision", "Decision", "verdict")),
        narrow=("view", "stratum", "n_pairs", "ratio", "ratio_ci_high", "decision"),
        latex_omit=("q_fail", "power_at_equal"),
        row_key=("view", "stratum"),
        missing={"q_fail": "overall row: a single test, not FDR-adjusted"}),
    "family_C": Presentation(
        (ARM, Column("stratum", "Stratum", "text"), N, Column("failures", "Failures", "count", short="Fail."),
         Column("rate", "Failure rate (%)", "rate", short="Rate (%)"),
         Column("upper_bound", "Upper bound (%)", "rate", short="Upper (%)"), Column("p_value", "p", "prob"),
         Column("passed_point", "Point passes", "flag", short="Point"),
         Column("passed_test", "Test passes", "flag", short="Test"),
         Column("underpowered", "Underpowered", "flag", short="Low power")),
        narrow=("arm", "stratum", "n", "rate", "upper_bound", "passed_test"), row_key=("arm", "stratum"),
        latex_omit=("passed_point", "underpowered"),
        missing={"rate": "no json-task request", "upper_bound": "no json-task request",
                 "p_value": "no json-task request"}),
    "routing": Presentation(
        (ARM, N, Column("r_costly", "Reached top tier (%)", "rate", short="Top (%)"),
         Column("retry_rate", "Retries (%)", "rate"), Column("upgrade_rate", "Upgrades (%)", "rate"),
         Column("refusal_rate", "Refusals (%)", "rate"),
         Column("attempts_per_req", "Attempts per request", "number", short="Att./req"),
         Column("avg_eval_ms", "Mean cost (ms)", "ms", short="Cost (ms)"),
         Column("tokens_per_req", "Tokens per request", "number", short="Tok./req")),
        narrow=("arm", "r_costly", "upgrade_rate", "avg_eval_ms"),
        latex_omit=("n", "retry_rate", "refusal_rate", "attempts_per_req", "tokens_per_req")),
    "load": Presentation(
        (ARM, N, Column("lag_p50_ms", "Lag P50 (ms)", "ms"), Column("lag_p99_ms", "Lag P99 (ms)", "ms"),
         Column("lag_max_ms", "Lag max (ms)", "ms"), Column("late_gt_1ms", "Late > 1 ms", "count", short="Late"),
         Column("timeouts", "Timeouts", "count", short="T/o"), Column("errors", "Errors", "count"),
         Column("error_kinds", "Error kinds", "text", wrap=0.16)),
        narrow=("arm", "n", "lag_p50_ms", "lag_p99_ms", "timeouts", "errors"), latex_omit=("lag_max_ms",)),
    "energy": Presentation(
        (ARM, Column("n_measured", "Measured requests", "count", short="N"),
         Column("j_per_request", "Energy per request (J)", "number", short="J/req"),
         Column("mwh_per_1k_tokens", "Energy per 1k tokens (mWh)", "number", short="mWh/1k tok"),
         Column("tokens_per_s_per_w", "Tokens per second per W", "number", short="Tok/s/W"))),
    "ablation": Presentation(
        (ARM, N, Column("cost_ms_per_req", "Cost (ms/request)", "ms", short="Cost (ms)"),
         Column("r_costly", "Reached top tier (%)", "rate", short="Top (%)"),
         Column("retry_rate", "Retries (%)", "rate"), Column("p50_ms", "P50 warm (ms)", "ms", short="P50 (ms)"),
         Column("p95_co_ms", "P95 CO (ms)", "ms"), Column("mean_quality", "Mean quality", "score", short="Quality")),
        narrow=("arm", "cost_ms_per_req", "r_costly", "p50_ms", "p95_co_ms", "mean_quality")),
    # tsglab.sweep.results: one row per sweep point × arm; the point's parameters in one wrapped cell
    "sweep": Presentation(
        (Column("point_id", "Point", "text"), Column("setting", "Setting", "text", wrap=0.16), ARM,
         Column("status", "Status", "text"), N,
         Column("p50_e2e_warm_ms", "P50 warm (ms)", "ms", ci=("p50_e2e_warm_ms_ci_low", "p50_e2e_warm_ms_ci_high")),
         Column("p95_co_overall_ms", "P95 CO (ms)", "ms",
                ci=("p95_co_overall_ms_ci_low", "p95_co_overall_ms_ci_high")),
         Column("avg_eval_ms", "Cost (ms/request)", "ms", short="Cost (ms)"),
         Column("r_costly", "Reached top tier (%)", "rate", short="Top (%)"),
         Column("mean_quality", "Mean quality", "score", short="Quality"),
         Column("json_fail_rate", "JSON failure rate (%)", "rate", short="JSON fail (%)"),
         Column("verdict", "Verdict vs baseline", "text", short="Verdict")),
        # the setting column wraps only in the wide layout: the narrow one names the point (its setting is in
        # the wide table)
        narrow=("point_id", "arm", "p95_co_overall_ms", "mean_quality", "verdict"),
        latex_omit=("status", "p50_e2e_warm_ms", "avg_eval_ms", "r_costly", "json_fail_rate"),
        row_key=("point_id", "arm"),
        missing={"p50_e2e_warm_ms": "point not complete: no report", "p95_co_overall_ms": "point not complete: "
                 "no report", "n": "point not complete: no report"}),
    "sweep_comparison": Presentation(
        (Column("point_id", "Point", "text"), Column("setting", "Setting", "text", wrap=0.1),
         Column("test", "Test", "text"), Column("n_pairs", "Pairs", "count"),
         Column("estimate", "Estimate", "number", ci=("ci_low", "ci_high")), Column("p_value", "p", "prob"),
         Column("q_value", "q", "prob"), Column("p_fail", "p (worse)", "prob"),
         Column("q_fail", "q (worse)", "prob"), Column("decision", "Decision", "text"),
         Column("flag", "Flag", "text", wrap=0.1)),
        narrow=("point_id", "test", "q_fail", "decision"),
        latex_omit=("n_pairs", "p_value", "q_value", "p_fail"), row_key=("point_id", "test"),
        missing={"ci_low": "one-sided test: no lower bound", "ci_high": "one-sided test: no upper bound",
                 "estimate": "not compared: see the flag or the point's status"}),
    # tsglab.report.enforcement: one row per guardian × slice; rates with exact intervals
    "enforcement": Presentation(
        (Column("guardian", "Guardian", "text"), Column("slice", "Cases", "text"),
         Column("n_violating", "Violating", "count", short="Viol."),
         Column("detection_rate", "Detection (%)", "rate", short="Det. (%)",
                ci=("detection_rate_ci_low", "detection_rate_ci_high")),
         Column("n_benign", "Benign", "count"),
         Column("false_positives", "False positives", "count", short="FP"),
         Column("fpr", "False-positive rate (%)", "rate", short="FPR (%)", ci=("fpr_ci_low", "fpr_ci_high")),
         Column("p50_ms", "P50 per check (ms)", "ms", ci=("p50_ci_low", "p50_ci_high")),
         Column("p95_ms", "P95 per check (ms)", "ms", short="P95 (ms)", ci=("p95_ci_low", "p95_ci_high"))),
        narrow=("guardian", "slice", "detection_rate", "fpr", "p95_ms"), latex_omit=("false_positives", "p50_ms"),
        hidden=("note", "detected", "n_checks", "p95_bound_low_ms", "p95_bound_high_ms", "alpha"),
        row_key=("guardian", "slice"),
        missing={"detection_rate": "no violating case in this row",
                 "fpr": "no benign case in this row",
                 "p50_ms": "fewer than 2 timed checks", "p95_ms": "fewer than 2 timed checks"}),
    # tsglab.report.enforcement_run: one row per arm (guard cells empty on an arm without guardians, its note
    # says so) and one per guarded arm × guardian × stage
    "enforcement_arms": Presentation(
        (ARM, Column("guardians", "Guardians", "text", wrap=0.12), N,
         Column("n_delivered", "Delivered", "count", short="Deliv."),
         Column("flagged_rate", "Flagged (%)", "rate", ci=("flagged_rate_ci_low", "flagged_rate_ci_high")),
         Column("violations", "Violations", "count", short="Viol."),
         Column("violation_rate", "Violations reaching user (%)", "rate", short="Viol. (%)",
                ci=("violation_rate_ci_low", "violation_rate_ci_high")),
         Column("blocked_rate", "Blocked (%)", "rate", ci=("blocked_rate_ci_low", "blocked_rate_ci_high")),
         Column("redacted_rate", "Redacted (%)", "rate", ci=("redacted_rate_ci_low", "redacted_rate_ci_high")),
         Column("delivered_flagged_rate", "Delivered flagged (%)", "rate",
                ci=("delivered_flagged_rate_ci_low", "delivered_flagged_rate_ci_high")),
         Column("remedy_steps_per_req", "Remedy steps per request", "number", short="Steps/req"),
         Column("check_p50_ms", "Guard wait P50 (ms)", "ms", ci=("check_p50_ms_ci_low", "check_p50_ms_ci_high")),
         Column("check_p95_ms", "Guard wait P95 (ms)", "ms", short="Wait P95 (ms)",
                ci=("check_p95_ms_ci_low", "check_p95_ms_ci_high")),
         Column("added_tokens_per_req", "Added tokens per request", "number", short="Tok./req"),
         Column("wasted_tokens", "Wasted tokens", "count"), Column("cancelled", "Cancelled", "count"),
         Column("p95_co_ms", "P95 CO (ms)", "ms", ci=("p95_co_ms_ci_low", "p95_co_ms_ci_high")),
         Column("n_energy", "Measured requests", "count", short="N meas."),
         Column("j_per_request", "Energy per request (J)", "number", short="J/req",
                ci=("j_per_request_ci_low", "j_per_request_ci_high")),
         Column("mwh_per_1k_tokens", "Energy per 1k tokens (mWh)", "number", short="mWh/1k tok",
                ci=("mwh_per_1k_tokens_ci_low", "mwh_per_1k_tokens_ci_high"))),
        narrow=("arm", "violation_rate", "remedy_steps_per_req", "mwh_per_1k_tokens"),
        latex_omit=("guardians", "n_delivered", "flagged_rate", "violations", "redacted_rate",
                    "delivered_flagged_rate", "remedy_steps_per_req", "check_p50_ms", "added_tokens_per_req",
                    "wasted_tokens", "cancelled", "p95_co_ms", "n_energy", "j_per_request"),
        hidden=("note", "guarded", "mwh_bound_low", "mwh_bound_high", "alpha"),
        missing={"flagged_rate": _NO_GUARD_REASON, "blocked_rate": _NO_GUARD_REASON,
                 "redacted_rate": _NO_GUARD_REASON, "delivered_flagged_rate": _NO_GUARD_REASON,
                 "remedy_steps_per_req": _NO_GUARD_REASON, "check_p50_ms": _NO_GUARD_REASON,
                 "check_p95_ms": _NO_GUARD_REASON, "added_tokens_per_req": _NO_GUARD_REASON,
                 "wasted_tokens": _NO_GUARD_REASON, "cancelled": _NO_GUARD_REASON,
                 "violation_rate": "no delivered text", "j_per_request": "energy not measured",
                 "mwh_per_1k_tokens": "energy not measured"}),
    "enforcement_checks": Presentation(
        (ARM, Column("guardian", "Guardian", "text"), Column("stage", "Stage", "text"),
         Column("checks", "Checks", "count"),
         Column("checks_per_req", "Checks per request", "number", short="Per req."),
         Column("flag_rate", "Flagged (%)", "rate", ci=("flag_rate_ci_low", "flag_rate_ci_high")),
         Column("errors", "Errors", "count"),
         Column("p50_ms", "P50 per check (ms)", "ms", ci=("p50_ci_low", "p50_ci_high")),
         Column("p95_ms", "P95 per check (ms)", "ms", short="P95 (ms)", ci=("p95_ci_low", "p95_ci_high"))),
        narrow=("arm", "guardian", "stage", "checks", "p95_ms"), latex_omit=("errors", "checks_per_req", "p50_ms"),
        row_key=("arm", "guardian", "stage"),
        missing={"p50_ms": "fewer than 2 checks", "p95_ms": "fewer than 2 checks"}),
    "claims": Presentation(
        (Column("guardian", "Guardian", "text"), Column("claim", "Claim", "text"),
         Column("measured", "Measured", "text"), Column("bound", "One-sided bound", "text", short="Bound"),
         Column("decision", "Decision", "verdict"), Column("n_needed", "Cases needed", "count", short="Need"),
         Column("sentence", "Why", "text", wrap=0.3)),
        narrow=("guardian", "claim", "bound", "decision"), latex_omit=("sentence",),
        hidden=("claim_key", "claimed", "estimate", "bound_value", "n", "alpha"), row_key=("guardian", "claim"),
        missing={"n_needed": "decided, or no n suffices (see the sentence)"}),
    # tsglab.replay: the frontier (Pareto set and references), its metrics and the calibrated configuration
    "frontier": Presentation(
        (Column("role", "Role", "text"), Column("config", "Config", "count"),
         Column("quality", "Mean quality", "score", short="Quality", ci=("quality_ci_low", "quality_ci_high")),
         Column("cost_ms", "Cost (ms/request)", "ms", short="Cost (ms)", ci=("cost_ci_low", "cost_ci_high")),
         Column("r_costly", "Reached top tier (%)", "rate", short="Top (%)"),
         Column("missing", "Unrecorded cells (%)", "rate", short="Unrec. (%)")),
        narrow=("role", "quality", "cost_ms", "r_costly"), latex_omit=("missing",), row_key=("role", "config")),
    "frontier_metrics": Presentation(
        (Column("metric", "Metric", "text"), Column("estimate", "Estimate", "number", ci=("ci_low", "ci_high")),
         Column("cost_axis", "Cost axis", "text")),
        row_key=("metric",), missing={"estimate": "undefined: the top tier alone is not better than the lowest"}),
    "calibration": Presentation(
        (Column("config", "Chosen configuration", "text", wrap=0.25), Column("n_heldout", "Held out", "count"),
         Column("quality", "Quality (held out)", "score", short="Quality", ci=("quality_ci_low", "quality_ci_high")),
         Column("baseline_quality", "Quality top tier", "score", short="Q top"),
         Column("cost_ms", "Cost (ms/request)", "ms", short="Cost (ms)", ci=("cost_ci_low", "cost_ci_high")),
         Column("cost_saving", "Cost saved (%)", "rate", short="Saved (%)"),
         Column("mean_diff", "Mean difference", "score", short="Diff."), Column("diff_ci_low", "Lower bound", "score"),
         Column("p_value", "p", "prob"), Column("decision", "Decision", "verdict"),
         Column("under_escalation_upper", "Under-escalation bound (%)", "rate", short="Under-esc. (%)")),
        narrow=("config", "quality", "cost_ms", "decision"), row_key=("config",),
        latex_omit=("baseline_quality", "diff_ci_low", "under_escalation_upper")),
}

#: headline rows: the label's start as ``tsglab.report.tables.HEADLINE_ROWS`` writes it → (shown label, kind)
#: and whether the row has a confidence interval (the latency quantiles only)
_HEADLINE_ROWS: tuple[tuple[str, str, str, Kind, bool], ...] = (
    ("P50 E2E warm", "P50 E2E warm (ms)", "P50 warm (ms)", "ms", True),
    ("Avg eval ms", "Mean cost (ms/request)", "Cost (ms/req)", "ms", False),
    ("r_costly", "Reached {top} (%)", "Top tier (%)", "rate", False),
    ("P95 CO overall", "P95 CO overall (ms)", "P95 CO (ms)", "ms", True),
    ("JSON failure rate", "JSON failure rate (%)", "JSON fail (%)", "rate", False),
    ("Mean quality", "Mean quality", "Quality", "score", False),
)


# --------------------------------------------------------------------------------------------------
# The table model: every output format prints the same grid


@dataclass(frozen=True)
class _Col:
    key: str
    header: str
    kind: Kind
    ci: tuple[str, str] | None = None
    bound: str = ""
    wrap: float = 0.0

    @property
    def numeric(self) -> bool:
        return self.kind in _NUMERIC


@dataclass
class _Cell:
    """A printed cell: ``number`` (plain, ``-1234.5``; None when missing), ``ci`` (the interval's
    two plain numbers or None each), ``text`` (text cells, and numbers that are not plain: ``<0.001``,
    ``≥ 1,234``), ``mark`` (the footnote letter) and ``css`` (a verdict class)."""

    number: str | None = None
    ci: tuple[str | None, str | None] | None = None
    text: str = ""
    mark: str = ""
    css: str = ""
    missing: bool = False


@dataclass
class _Grid:
    cols: list[_Col]
    rows: list[list[_Cell]]
    notes: list[tuple[str, str]]  # (mark, reason) in order of first use
    groups: list[bool]  # True where a row starts a new group (its first cell differs from the row above)


def _humanise(key: str) -> str:
    words = key.replace("%", " % ").split("_")
    unit = ""
    if words and words[-1] == "ms":
        words, unit = words[:-1], " (ms)"
    elif words and words[-1].strip() == "%":
        words, unit = words[:-1], " (%)"
    fixed = {"json": "JSON", "co": "CO", "ci": "CI", "slo": "SLO", "req": "request", "id": "ID"}
    shown = [fixed.get(w, w.upper() if re.fullmatch(r"p\d+", w) else w) for w in words if w]
    text = " ".join(shown) or key
    return text[:1].upper() + text[1:] + unit


def _generic_kind(key: str, series: pd.Series) -> Kind:
    if pd.api.types.is_bool_dtype(series):
        return "flag"
    if pd.api.types.is_integer_dtype(series):
        return "count"
    if not pd.api.types.is_numeric_dtype(series):
        return "text"
    if key.endswith("_ms"):
        return "ms"
    if key.endswith("_rate") or key.startswith("r_") or key in {"rate", "share"}:
        return "rate"
    return "number"


def _columns(name: str, frame: pd.DataFrame, narrow: bool, latex: bool) -> list[_Col]:
    """The shown columns: the description's (in its order), then the frame's other columns."""
    spec = PRESENTATIONS.get(name, Presentation(()))
    described = {c.key: c for c in spec.columns}
    keys = [str(k) for k in frame.columns]
    # "<x> CI low"/"<x> CI high" and "<x>_ci_low"/"<x>_ci_high" merge into <x> (the headline's arms)
    merged: dict[str, tuple[str, str]] = {}
    for key in keys:
        for low, high in ((f"{key} CI low", f"{key} CI high"), (f"{key}_ci_low", f"{key}_ci_high")):
            if low in keys and high in keys:
                merged[key] = (low, high)
    consumed = set(spec.hidden) | {k for c in spec.columns if c.key in keys for k in (c.ci or ())}
    consumed |= {k for pair in merged.values() for k in pair} | {c.bound for c in spec.columns if c.bound}
    order = ([c.key for c in spec.columns if c.key in keys and c.key not in spec.last]
             + [k for k in keys if k not in described] + [k for k in spec.last if k in keys])
    cols = []
    for key in order:
        if key in consumed:
            continue
        if latex and key in spec.latex_omit:
            continue
        if narrow and spec.narrow and key not in spec.narrow and not (name == "headline" and key in merged):
            continue
        if key in described:
            c = described[key]
            ci = c.ci if c.ci and all(k in keys for k in c.ci) else merged.get(key)
            cols.append(_Col(key, (c.short or c.header) if narrow else c.header, c.kind, ci,
                             c.bound if c.bound in keys else "", 0.0 if narrow else c.wrap))
        elif name == "headline" and key in merged:  # an arm: its kind is the row's (the metric's)
            cols.append(_Col(key, key, "number", merged[key]))
        elif re.fullmatch(r"r_\w+", key) and name == "routing":
            tier = key[2:]
            cols.append(_Col(key, f"{'Start' if narrow else 'Started at'} {tier} (%)", "rate"))
        else:
            cols.append(_Col(key, _humanise(key), _generic_kind(key, frame[key]), merged.get(key)))
    return cols


def _headline_row(label: str, narrow: bool) -> tuple[str, Kind, bool]:
    for start, full, short, kind, has_ci in _HEADLINE_ROWS:
        if label.startswith(start):
            top = re.search(r"touching (\S+?)\)", label)
            return (short if narrow else full).format(top=top.group(1) if top else "top tier"), kind, has_ci
    return label, "number", True


def _finite(value) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _decimals(kind: Kind, values: Iterable) -> int:
    """One precision per column (or per headline row): the rule of the module docstring."""
    if kind == "count":
        return 0
    if kind in ("rate", "change"):
        return 1
    if kind in ("score", "prob"):
        return 3
    if kind == "ratio":
        return 2
    largest = max((abs(float(v)) for v in values if _finite(v)), default=0.0)
    if largest >= 100 or largest == 0:
        return 0
    return min(3, max(0, 2 - math.floor(math.log10(largest))))


def _plain(value, kind: Kind, decimals: int) -> str:
    number = float(value) * (100.0 if kind == "rate" else 1.0)
    text = f"{number:.{decimals}f}"
    if text.lstrip("-").strip("0.") == "":  # no "-0.0"
        text = text.lstrip("-")
    return ("+" + text) if kind == "change" and number > 0 else text


def _display(plain: str) -> str:
    """A plain number as people read it: thousands grouped, a true minus sign."""
    sign = "−" if plain.startswith("-") else "+" if plain.startswith("+") else ""
    whole, _, frac = plain.lstrip("+-").partition(".")
    grouped = f"{int(whole):,}" if whole else "0"
    return sign + grouped + ("." + frac if frac else "")


_VERDICT_CSS = {"passed": "pass", "failed": "fail", "underpowered": "warn", "inconclusive": "warn",
                "not identifiable": "na"}

_SUPERSCRIPT = dict(zip("abcdefghijklmnoprstuvwxyz", "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻ", strict=True))


def _marks():
    yield from "abcdefghijklmnoprstuvwxyz"
    n = 0
    while True:
        n += 1
        yield f"z{n}"


def _not_computed_from_note(note: str) -> tuple[dict[str, str], str]:
    """``{arm: reason}`` from a note's ``Not computed — arm: reason; ...`` sentence, and the note without it."""
    found = re.search(r"Not computed — (.*?)\.(?: |$)", note)
    if not found:
        return {}, note
    reasons = {}
    for part in found.group(1).split("; "):
        arm, _, reason = part.partition(": ")
        if reason:
            reasons[arm.strip()] = reason.strip()
    rest = (note[:found.start()] + note[found.end():]).strip()
    return reasons, rest


def _grid(name: str, frame: pd.DataFrame, *, narrow: bool, note: str, footnotes: Mapping[str, str] | None,
          latex: bool = False) -> tuple[_Grid, str]:
    spec = PRESENTATIONS.get(name, Presentation(()))
    cols = _columns(name, frame, narrow, latex)
    arm_reasons, note = _not_computed_from_note(note)
    reasons: dict[str, str] = {**arm_reasons, **(footnotes or {})}
    records = frame.to_dict("records")
    row_kinds: list[Kind | None] = [None] * len(records)
    row_has_ci = [True] * len(records)
    if name == "headline" and "metric" in frame:
        for i, record in enumerate(records):
            record["metric"], row_kinds[i], row_has_ci[i] = _headline_row(str(record["metric"]), narrow)
    # one precision per column (per row for the headline, whose rows are different metrics)
    decimals: dict[str, int] = {}
    for col in cols:
        if col.numeric:
            values = [r[k] for r in records for k in (col.key, *(col.ci or ()), *([col.bound] if col.bound else []))]
            decimals[col.key] = _decimals(col.kind, values)
    arm_keys = [k for c in cols if c.kind == "number" for k in (c.key, *(c.ci or ()))]
    row_decimals = [_decimals(kind, [r[k] for k in arm_keys]) if kind is not None else 0
                    for r, kind in zip(records, row_kinds, strict=True)]
    key_cols = [k for k in spec.row_key if k in frame] or [c.key for c in cols[:1] if c.kind == "text"]
    letters, marks, notes = _marks(), {}, []

    def mark_for(reason: str) -> str:
        if reason not in marks:
            marks[reason] = next(letters)
            notes.append((marks[reason], reason))
        return marks[reason]

    def reason_for(record: dict, source: str, col: _Col) -> str:
        row_key = "/".join(str(record[k]) for k in key_cols)
        for candidate in (row_key, col.key, *(str(record[k]) for k in key_cols)):
            if candidate in reasons:
                return reasons[candidate]
        if str(record.get("note") or "").strip():
            return str(record["note"]).strip()
        return spec.missing.get(source) or _GENERIC_MISSING

    rows: list[list[_Cell]] = []
    for i, record in enumerate(records):
        cells = []
        for col in cols:
            value = record[col.key]
            row_kind = row_kinds[i]
            kind: Kind = row_kind if row_kind is not None and col.kind == "number" else col.kind
            places = row_decimals[i] if row_kind is not None and col.kind == "number" else decimals.get(col.key, 0)
            if not col.numeric:
                cells.append(_text_cell(value, kind))
                continue
            cell = _Cell()
            if _finite(value):
                if kind == "prob" and 0 <= float(value) < 0.001:
                    cell.text = "<0.001"
                else:
                    cell.number = _plain(value, kind, places)
                if col.ci and row_has_ci[i]:
                    low, high = (record[k] for k in col.ci)
                    pieces = (_plain(low, kind, places) if _finite(low) else None,
                              _plain(high, kind, places) if _finite(high) else None)
                    if pieces != (None, None):
                        cell.ci = pieces
                    missing = [k for k, p in zip(col.ci, pieces, strict=True) if p is None]
                    if missing:
                        cell.mark = mark_for(reason_for(record, missing[0], col))
            elif col.bound and _finite(record[col.bound]):
                cell.text = "≥ " + _display(_plain(record[col.bound], kind, places))
                cell.mark = mark_for(_BOUND_NOTE)
            else:
                cell.missing = True
                cell.mark = mark_for(reason_for(record, col.key, col))
            cells.append(cell)
        rows.append(cells)
    first = [str(r[cols[0].key]) if cols else "" for r in records]
    groups = [i > 0 and first[i] != first[i - 1] for i in range(len(first))]
    return _Grid(cols, rows, notes, groups), note


def _text_cell(value, kind: Kind) -> _Cell:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _Cell(text="", missing=False)
    if kind == "flag":
        return _Cell(text="yes" if bool(value) else "no", css="pass" if bool(value) else "fail")
    text = str(value)
    return _Cell(text=text, css=_VERDICT_CSS.get(text, "") if kind == "verdict" else "")


# --------------------------------------------------------------------------------------------------
# LaTeX

_LATEX_ASCII = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}"}
_LATEX_UNICODE = {"−": r"\ensuremath{-}", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''",
                  "…": r"\ldots{}", "·": r"\ensuremath{\cdot}", "×": r"\ensuremath{\times}",
                  "≤": r"\ensuremath{\leq}", "≥": r"\ensuremath{\geq}", "≈": r"\ensuremath{\approx}",
                  "±": r"\ensuremath{\pm}", "→": r"\ensuremath{\rightarrow}", "∞": r"\ensuremath{\infty}",
                  "Δ": r"\ensuremath{\Delta}", "Σ": r"\ensuremath{\Sigma}", "µ": r"\ensuremath{\mu}",
                  "°": r"\ensuremath{^\circ}", "\u00a0": "~", "\u202f": r"\,"}
_GREEK = {"α": "alpha", "β": "beta", "γ": "gamma", "δ": "delta", "ε": "epsilon", "η": "eta", "θ": "theta",
          "κ": "kappa", "λ": "lambda", "μ": "mu", "ν": "nu", "π": "pi", "ρ": "rho", "σ": "sigma", "τ": "tau",
          "φ": "phi", "χ": "chi", "ψ": "psi", "ω": "omega"}
_ACCENTS = {"\u0301": "'", "\u0300": "`", "\u0302": "^", "\u0308": '"', "\u0303": "~", "\u0327": "c"}
_LONG_TOKEN = 10  # characters: a longer unbroken token (a hash, a path) gets break points where it may wrap


def _latex_char(char: str) -> str:
    if char in _LATEX_ASCII:
        return _LATEX_ASCII[char]
    if char.isascii():
        return char
    if char in _LATEX_UNICODE:
        return _LATEX_UNICODE[char]
    if char in _GREEK:
        return rf"\ensuremath{{\{_GREEK[char]}}}"
    base, marks = unicodedata.normalize("NFD", char)[0], unicodedata.normalize("NFD", char)[1:]
    if base.isascii() and len(marks) == 1 and marks[0] in _ACCENTS:
        return rf"\{_ACCENTS[marks[0]]}{{{base}}}"
    # a character the three engines cannot all print with the tables' fonts (CJK, emoji): its code point
    return rf"\texttt{{[U+{ord(char):04X}]}}"


def latex_text(text: str, *, breakable: bool = False) -> str:
    """``text`` as LaTeX that pdflatex, xelatex and lualatex all print without extra packages: special
    characters escaped, typographic Unicode as commands; with ``breakable`` (notes, wrapped columns),
    break points in long tokens (hashes, paths, ``error_kind:``) so a narrow column never overflows."""
    out = []
    for token in re.split(r"(\s+)", str(text)):
        escaped = [_latex_char(c) for c in token]
        if breakable and len(token) > _LONG_TOKEN:
            escaped = [piece + (r"\allowbreak{}" if (c in "/_-.,:=;" or i % 8 == 7) else "")
                       for i, (c, piece) in enumerate(zip(token, escaped, strict=True))]
        out.append("".join(escaped))
    return "".join(out)


def _latex_mark(cell: _Cell) -> str:
    return rf"\tnote{{{cell.mark}}}" if cell.mark else ""


def _table_format(plains: list[str]) -> str:
    whole = max((len(p.lstrip("+-").partition(".")[0]) for p in plains), default=1)
    decimals = max((len(p.partition(".")[2]) for p in plains), default=0)
    sign = "-" if any(p[:1] in "+-" for p in plains) else ""
    return f"{sign}{max(whole, 1)}.{decimals}"


_HEADER_LINE = 11  # characters: a longer header is stacked on two or three lines (numbers are narrower)


def _latex_header(header: str) -> str:
    """A header stacked on short lines (a nested tabular, which every engine sets without a package),
    so a column is as wide as its numbers, not as its words."""
    words, lines = header.split(" "), [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > _HEADER_LINE:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    if len(lines) == 1:
        return latex_text(header)
    return r"\begin{tabular}[b]{@{}c@{}}" + r" \\ ".join(latex_text(line) for line in lines) + r"\end{tabular}"


def _latex_num(plain: str | None) -> str:
    return "---" if plain is None else rf"\num{{{plain}}}"


def to_latex(name: str, frame: pd.DataFrame, *, title: str = "", note: str = "", label_prefix: str = "tab",
             layout: Layout = "table", footnotes: Mapping[str, str] | None = None) -> str:
    """The table as a LaTeX float (booktabs, siunitx, threeparttable; see :func:`latex_preamble`)."""
    if layout not in ("table", "table*", "narrow"):
        raise ValueError(f"layout must be 'table', 'table*' or 'narrow'; got {layout!r}.")
    narrow = layout == "narrow"
    grid, note = _grid(name, frame, narrow=narrow, note=note, footnotes=footnotes, latex=True)
    specs, headers = [], []
    for j, col in enumerate(grid.cols):
        plains = [number for row in grid.rows if (number := row[j].number) is not None]
        if col.numeric:
            fmt = _table_format(plains)
            specs.append(f"S[table-format={fmt}]" + (r"@{\hspace{0.25em}}l" if col.ci else ""))
            header = _latex_header(col.header)
            headers.append(rf"\multicolumn{{2}}{{c}}{{{header}}}" if col.ci else f"{{{header}}}")
        elif col.wrap:
            specs.append(rf">{{\raggedright\arraybackslash}}p{{{col.wrap:g}\linewidth}}")
            headers.append(latex_text(col.header))
        else:
            specs.append("l")
            headers.append(_latex_header(col.header))
    body = []
    for i, row in enumerate(grid.rows):
        if grid.groups[i]:
            body.append(r"\addlinespace")
        cells = []
        for j, (col, cell) in enumerate(zip(grid.cols, row, strict=True)):
            if not col.numeric:
                repeat = j == 0 and i > 0 and not grid.groups[i] and col.kind == "text"
                text = "" if repeat else latex_text(cell.text, breakable=bool(col.wrap))
                if col.kind == "verdict" and " " in cell.text:  # "not identifiable" on two lines
                    text = _latex_header(cell.text).replace("[b]", "[t]")
                cells.append(text)
            elif cell.number is not None:
                interval = ("[" + ", ".join(_latex_num(p) for p in cell.ci) + "]") if cell.ci else ""
                if col.ci:
                    cells.append(f"{cell.number} & {interval}{_latex_mark(cell)}")
                else:
                    cells.append(cell.number + (f"{{{_latex_mark(cell)}}}" if cell.mark else ""))
            else:
                shown = latex_text(cell.text) if cell.text else "---"
                cells.append(f"{{{shown}{_latex_mark(cell)}}}" + (" &" if col.ci else ""))
        body.append(" & ".join(cells) + r" \\")
    if not grid.cols:
        specs, headers, body = ["l"], ["(no columns)"], []
    elif not grid.rows:
        body = [rf"\multicolumn{{{sum(2 if c.ci else 1 for c in grid.cols)}}}{{l}}{{(no rows)}} \\"]
    env = "table*" if layout == "table*" else "table"
    label = f"{label_prefix}:{name or 'table'}" + (":narrow" if narrow else "")
    # \footnotesize and a tighter \tabcolsep: what lets a report's widest tables fit an article's page
    lines = [rf"\begin{{{env}}}[tbp]", r"\centering", r"\footnotesize",
             r"\sisetup{group-separator={,}, group-minimum-digits=4, retain-explicit-plus}",
             r"\setlength{\tabcolsep}{3pt}"]
    lines += [r"\begin{threeparttable}"]
    if title:
        lines.append(rf"\caption{{{latex_text(title)}}}")
    lines += [rf"\label{{{label}}}", r"\begin{tabular}{" + "".join(specs) + "}", r"\toprule",
              " & ".join(headers) + r" \\", r"\midrule", *body, r"\bottomrule", r"\end{tabular}"]
    if grid.notes or note:
        lines += [r"\begin{tablenotes}[flushleft]", r"\footnotesize\raggedright"]
        lines += [rf"\item[{mark}] {latex_text(reason, breakable=True)}" for mark, reason in grid.notes]
        if note:
            lines.append(rf"\item[] {latex_text(note, breakable=True)}")
        lines.append(r"\end{tablenotes}")
    lines += [r"\end{threeparttable}", rf"\end{{{env}}}"]
    return "\n".join(lines) + "\n"


def latex_preamble() -> str:
    """The preamble lines the tables need, for all three engines (``tables/preamble.tex``)."""
    return "\n".join([
        "% Preamble for tsglab tables: \\input{tables/preamble.tex} before \\begin{document},",
        "% or copy the \\usepackage lines. The tables are plain ASCII LaTeX (Unicode is written as",
        "% commands), so they need no particular font or encoding; the block below only picks the",
        "% usual fonts per engine (T1 + Latin Modern for pdflatex, fontspec for xelatex/lualatex).",
        r"\usepackage{iftex}",
        r"\ifPDFTeX",
        r"  \usepackage[T1]{fontenc}",
        r"  \usepackage[utf8]{inputenc}",
        r"  \usepackage{lmodern}",
        r"\else",
        r"  \usepackage{fontspec}",
        r"\fi",
        r"\usepackage{array}           % p{} columns with \raggedright",
        r"\usepackage{booktabs}        % \toprule, \midrule, \bottomrule, \addlinespace",
        r"\usepackage{siunitx}         % S columns and \num (version 3 or later)",
        r"\usepackage{threeparttable}  % \tnote footnotes and the notes under each table",
        "",
    ])


def label_prefix_for(run_id: str) -> str:
    """``tab:<slug>``: the run id in lower case, every run of other characters a single ``-``."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(run_id).lower()).strip("-")
    return f"tab:{slug}" if slug else "tab"


# --------------------------------------------------------------------------------------------------
# HTML

_CSS = """<style>
.tsglab-table{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;font-size:0.9rem;margin:1.2em 0}
.tsglab-table caption{caption-side:top;text-align:left;font-weight:600;padding:0 0 0.4em}
.tsglab-table .scroll{overflow-x:auto;max-height:36em;overflow-y:auto}
.tsglab-table table{border-collapse:collapse;border-top:2px solid #333;border-bottom:2px solid #333}
.tsglab-table th{position:sticky;top:0;background:#fff;border-bottom:1px solid #333;padding:0.3em 0.7em;
 text-align:left;white-space:nowrap}
.tsglab-table td{padding:0.25em 0.7em;vertical-align:top}
.tsglab-table tr.group td{border-top:1px solid #ccc}
.tsglab-table .num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.tsglab-table .ci{color:#555}
.tsglab-table .pass{background:#e3f4e1;color:#1d5e1a}
.tsglab-table .fail{background:#fbe3e1;color:#8a1c12}
.tsglab-table .warn{background:#fdf3d7;color:#6b4e00}
.tsglab-table .na{background:#eee;color:#555}
.tsglab-table .notes{font-size:0.85em;color:#333;margin:0.4em 0 0;max-width:60em}
</style>"""


def _html_number(cell: _Cell) -> str:
    mark = f"<sup>{cell.mark}</sup>" if cell.mark else ""
    if cell.number is None:
        return (html.escape(cell.text) if cell.text else "—") + mark
    ci = ""
    if cell.ci:
        ci = " <span class='ci'>[" + ", ".join("—" if p is None else _display(p) for p in cell.ci) + "]</span>"
    return _display(cell.number) + ci + mark


def to_html(name: str, frame: pd.DataFrame, *, title: str = "", note: str = "",
            footnotes: Mapping[str, str] | None = None, standalone: bool = False) -> str:
    """The table as styled HTML: a fragment (with its scoped ``<style>``) or a full document."""
    grid, note = _grid(name, frame, narrow=False, note=note, footnotes=footnotes)
    parts = [_CSS, "<div class='tsglab-table'>", "<div class='scroll'><table>"]
    if title:
        parts.append(f"<caption>{html.escape(title)}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th class='{'num' if c.numeric else 'text'}'>{html.escape(c.header)}</th>"
                                         for c in grid.cols) + "</tr></thead><tbody>")
    for i, row in enumerate(grid.rows):
        cells = []
        for col, cell in zip(grid.cols, row, strict=True):
            classes = " ".join(filter(None, ["num" if col.numeric else "", cell.css]))
            content = _html_number(cell) if col.numeric else html.escape(cell.text)
            cells.append(f"<td class='{classes}'>{content}</td>" if classes else f"<td>{content}</td>")
        parts.append(("<tr class='group'>" if grid.groups[i] else "<tr>") + "".join(cells) + "</tr>")
    parts.append("</tbody></table></div>")
    notes = [f"<sup>{mark}</sup> {html.escape(reason)}" for mark, reason in grid.notes]
    if notes:
        parts.append("<p class='notes'>" + "<br>".join(notes) + "</p>")
    if note:
        parts.append(f"<p class='notes'>{html.escape(note)}</p>")
    parts.append("</div>")
    fragment = "\n".join(parts) + "\n"
    return html_page([fragment], title=title or name) if standalone else fragment


def html_page(fragments: Iterable[str], *, title: str) -> str:
    """One standalone HTML document holding the fragments of :func:`to_html` (their style once)."""
    body = "".join(fragment.replace(_CSS + "\n", "") for fragment in fragments)
    return (f"<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n<title>{html.escape(title)}</title>\n"
            f"{_CSS}\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n{body}</body>\n</html>\n")


# --------------------------------------------------------------------------------------------------
# Markdown


def _md_cell(col: _Col, cell: _Cell) -> str:
    mark = _SUPERSCRIPT.get(cell.mark, f"^{cell.mark}") if cell.mark else ""
    if not col.numeric:
        text = cell.text
    elif cell.number is None:
        text = (cell.text or "—") + mark
    else:
        interval = (" [" + ", ".join("—" if p is None else _display(p) for p in cell.ci) + "]") if cell.ci else ""
        text = _display(cell.number) + interval + mark
    return text.replace("|", r"\|").replace("\n", " ")


def to_markdown(name: str, frame: pd.DataFrame, *, title: str = "", note: str = "",
                footnotes: Mapping[str, str] | None = None) -> str:
    """The table as a Markdown pipe table; footnotes and the note as plain paragraphs below it."""
    grid, note = _grid(name, frame, narrow=False, note=note, footnotes=footnotes)
    lines = [f"### {title}", ""] if title else []
    if grid.cols:
        header = [c.header.replace("|", r"\|") for c in grid.cols]
        rows = [[_md_cell(c, cell) for c, cell in zip(grid.cols, row, strict=True)] for row in grid.rows]
        widths = [max([len(h), 3, *(len(r[j]) for r in rows)]) for j, h in enumerate(header)]

        def line(cells: list[str]) -> str:
            return "| " + " | ".join(cell.rjust(w) if c.numeric else cell.ljust(w)
                                     for cell, w, c in zip(cells, widths, grid.cols, strict=True)) + " |"

        lines.append(line(header))
        lines.append("|" + "|".join(("-" * (w + 1) + ":") if c.numeric else (":" + "-" * (w + 1))
                                    for w, c in zip(widths, grid.cols, strict=True)) + "|")
        lines += [line(r) for r in rows]
    else:
        lines.append("(no columns)")
    if grid.notes:
        lines += ["", *(f"{_SUPERSCRIPT.get(m, m)} {reason}  " for m, reason in grid.notes)]
        lines[-1] = lines[-1].rstrip()
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------


def footnotes_from_verdict(verdict: Mapping) -> dict[str, dict[str, str]]:
    """``{"family_A": {stratum: why}, "family_B": {"view/stratum": why}}`` from the verdict's
    ``not_computable`` lines (``Family B Warm-only/overall: n = 0 pairs (...); <note>``)."""
    out: dict[str, dict[str, str]] = {"family_A": {}, "family_B": {}}
    for line in verdict.get("not_computable") or ():
        found = re.match(r"Family ([AB]) (.+?): (.*)$", str(line))
        if found:
            out[f"family_{found.group(1)}"][found.group(2)] = "not computed: " + found.group(3)
    return out


def write_tables(out: Path, tables: Mapping[str, tuple[str, pd.DataFrame]], *, notes: Mapping[str, str] | None = None,
                 label_prefix: str = "tab", footnotes: Mapping[str, Mapping[str, str]] | None = None,
                 page_title: str | None = None) -> list[Path]:
    """Write each table of ``tables`` (``{name: (title, frame)}``) into ``out`` as ``<name>.tex`` (the
    ``table*`` layout: a one-column page wide, spanning both columns of a two-column paper),
    ``<name>.narrow.tex`` (one column of a two-column paper), ``<name>.html`` (a fragment) and
    ``<name>.md``, plus ``preamble.tex``; with ``page_title``, also ``report.html``, one standalone
    document with every table. Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    notes, footnotes = notes or {}, footnotes or {}
    written: dict[Path, str] = {out / "preamble.tex": latex_preamble()}
    fragments = []
    for name, (title, frame) in tables.items():
        note, reasons = notes.get(name, ""), footnotes.get(name)
        layouts: tuple[tuple[Layout, str], ...] = (("table*", ".tex"), ("narrow", ".narrow.tex"))
        for layout, suffix in layouts:
            written[out / f"{name}{suffix}"] = to_latex(name, frame, title=title, note=note, footnotes=reasons,
                                                        label_prefix=label_prefix, layout=layout)
        fragments.append(to_html(name, frame, title=title, note=note, footnotes=reasons))
        written[out / f"{name}.html"] = fragments[-1]
        written[out / f"{name}.md"] = to_markdown(name, frame, title=title, note=note, footnotes=reasons)
    if page_title is not None:
        written[out / "report.html"] = html_page(fragments, title=page_title)
    for path, text in written.items():
        path.write_text(text, encoding="utf-8")
    return list(written)
