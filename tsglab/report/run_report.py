"""The report of two paired arms: :func:`build_report` = pairing → :func:`compute_report` → writing.

:func:`compute_report` is pure (frames and settings in, a frozen :class:`RunReport` out); reading the
runs and pairing their arms is :mod:`tsglab.report.pairing`'s, writing files :mod:`tsglab.report.writing`'s.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from tsglab._version import __version__
from tsglab.errors import TsglabWarning
from tsglab.report.outcomes import outcome_line, outcome_table
from tsglab.report.pairing import ArmPair, load_arm_pair
from tsglab.report.protocol import ProtocolSettings, family_a, family_b, family_c, routing_cost, verdict
from tsglab.report.tables import (
    MIN_CI_N,
    arm_metrics,
    energy_table,
    four_view_table,
    headline_table,
    load_table,
    task_table,
    tier_table,
)

if TYPE_CHECKING:
    from tsglab.report.enforcement_run import EnforcementSection


@dataclass(frozen=True)
class RunReport:
    """Every table, test and note of one report. ``run_dir`` is the run whose gateway arm is compared;
    ``out_dir`` where the report is written (``run_dir``, or a comparison directory for ``--vs``);
    ``ladder`` the tier names lowest first; ``manifests`` the ``run.json`` of each run involved."""

    run_dir: Path
    baseline: str
    gateway: str
    status: str
    headline: pd.DataFrame
    p95_views: pd.DataFrame
    tiers: pd.DataFrame
    tasks: pd.DataFrame
    family_a: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    family_b: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    family_c: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    routing: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    load: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    energy: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    outcomes: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    verdict: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict, repr=False)
    notes: dict[str, str] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    figures: dict[str, dict] = field(default_factory=dict, repr=False)  # arm_metrics per arm, computed once
    out_dir: Path | None = None
    ladder: tuple[str, ...] = ()
    manifests: tuple[dict, ...] = field(default=(), repr=False)
    #: identical-routing warnings recorded in the runs' run.json (tsglab.load.dry_route), shown under the verdict
    routing_warnings: tuple[str, ...] = ()
    #: runtime enforcement per arm, the guardians' suite table and the claims check (build_report adds it when
    #: the spec has guardians or claims, or the events carry enforcement; tsglab.report.enforcement_run)
    enforcement: EnforcementSection | None = field(default=None, repr=False)
    # set by build_report: where the files went, or why they could not be written (the report is complete)
    written_to: Path | None = None
    write_error: str = ""

    def to_frame(self) -> pd.DataFrame:
        """Long format, one row per (arm, metric): the headline figures with their CIs and the four P95
        views (what ``metrics_summary.parquet`` holds)."""
        return metrics_summary(self)

    def tables(self) -> dict[str, tuple[str, pd.DataFrame]]:
        return {
            "outcomes": ("How requests ended: answered, timed out, failed by kind", self.outcomes),
            "headline": ("Headline: baseline vs TSG", self.headline),
            "p95_views": ("P95 latency, four views (Raw/CO × Overall/Warm-only)", self.p95_views),
            "tiers": ("Routing and cost by final tier", self.tiers),
            "tasks": ("Quality and cost by task", self.tasks),
            "family_A": ("Family A: quality non-inferiority per stratum (paired; exact or betting test; BH screen)",
                         _a_view(self.family_a)),
            "family_B": ("Family B: P95 guardrail per stratum and view (paired bootstrap; BH screen)",
                         _b_view(self.family_b)),
            "family_C": ("Family C: JSON compliance gate", _c_view(self.family_c)),
            "routing": ("Routing and cost breakdown", self.routing),
            "load": ("Load generator: dispatch lag and how requests ended", self.load),
            "energy": ("Energy per request", self.energy),
            # enforcement_arms, enforcement_checks, enforcement (the suite) and claims, when the run enforces
            **(self.enforcement.tables() if self.enforcement is not None else {}),
        }

    def footnotes(self) -> dict[str, dict[str, str]]:
        """Why a cell is not computed, per table and row (the verdict's not-computable reasons)."""
        from tsglab.report.publish import footnotes_from_verdict

        return footnotes_from_verdict(self.verdict)

    def to_markdown(self) -> str:
        """Every table as Markdown (numbers right-aligned; "—" with a footnote where not computed)."""
        from tsglab.report.publish import to_markdown

        footnotes = self.footnotes()
        return "\n".join(to_markdown(name, df, title=title, note=self.notes.get(name, ""),
                                     footnotes=footnotes.get(name)) for name, (title, df) in self.tables().items())

    def to_latex(self, path: str | os.PathLike | None = None, *,
                 layout: Literal["table", "table*", "narrow"] = "table*", label_prefix: str | None = None,
                 tables: tuple[str, ...] | None = None) -> str:
        """The tables (all, or those named in ``tables``) as one LaTeX text, each a float labelled
        ``<label_prefix>:<name>`` (default ``tab:<run-id-slug>``); written to ``path`` when given. The
        preamble a paper needs: :func:`tsglab.report.publish.latex_preamble` (also ``tables/preamble.tex``).
        ``layout``: ``"table*"`` (page wide), ``"table"`` or ``"narrow"`` (one column of a two-column paper)."""
        from tsglab.errors import InvalidArgument
        from tsglab.report.publish import label_prefix_for, to_latex

        known = self.tables()
        unknown = sorted(set(tables or ()) - set(known))
        if unknown:
            raise InvalidArgument(f"no table(s) {unknown}; the report's tables: {', '.join(known)}.")
        if layout not in ("table", "table*", "narrow"):
            raise InvalidArgument(f"layout must be 'table', 'table*' or 'narrow'; got {layout!r}.")
        prefix = label_prefix or label_prefix_for((self.out_dir or self.run_dir).name)
        footnotes = self.footnotes()
        text = "\n".join(to_latex(name, df, title=title, note=self.notes.get(name, ""), label_prefix=prefix,
                                  layout=layout, footnotes=footnotes.get(name))
                         for name, (title, df) in known.items() if tables is None or name in tables)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def plot(self, kind: str = "p95_views", *, size: Literal["column", "page"] = "page"):
        """One of the report's figures as a matplotlib ``Figure`` (None when there is nothing to draw):
        ``kind`` is a name of :data:`tsglab.report.figures.FIGURES`; ``size`` ``"column"`` or ``"page"``."""
        from tsglab.errors import InvalidArgument
        from tsglab.report.figures import FIGURES

        if kind not in FIGURES:
            raise InvalidArgument(f"no figure {kind!r}; the report's figures: {', '.join(FIGURES)}.")
        if size not in ("column", "page"):
            raise InvalidArgument(f"size must be 'column' or 'page'; got {size!r}.")
        return FIGURES[kind](self, size=size)

    def verdict_banner_html(self) -> str:
        """The verdict as a coloured banner — green pass, red fail, amber when a caveat applies — with each
        caveat on a line of its own and long lists folded (``<details>``)."""
        import html

        caveats = self.verdict_caveats() if self.verdict else []
        warnings = [line for text in (self.routing_line(), self.outcome_line()) for line in text.splitlines() if line]
        if self.verdict.get("under_delivered"):
            warnings += [f"WARNING: the load generator under-delivered — {line}"
                         for line in self.verdict["load_delivery"]]
        if not self.verdict:
            state = "warn"
        elif not self.verdict.get("overall"):
            state = "fail"
        else:
            state = "warn" if caveats or warnings or self.status != "complete" else "pass"
        colours = {"pass": ("#e6f4ea", "#009E73"), "fail": ("#fde8e4", "#D55E00"), "warn": ("#fff6e0", "#E69F00")}
        background, edge = colours[state]
        head = html.escape(self._verdict_head()) if self.verdict else "No verdict: no paired requests yet."
        items = []
        for what, rows in caveats:
            if len(rows) > 3:
                listed = "".join(f"<li>{html.escape(row)}</li>" for row in rows)
                items.append(f"<li><details><summary>{html.escape(what)}: {len(rows)} rows</summary><ul>{listed}</ul>"
                             "</details></li>")
            else:
                items.append(f"<li>{html.escape(what + (': ' + ', '.join(rows) if rows else ''))}</li>")
        items += [f"<li>{html.escape(line)}</li>" for line in warnings]
        body = f"<b>{head}</b>" + (f"<ul style='margin:4px 0 0 0'>{''.join(items)}</ul>" if items else "")
        return (f"<div class='tsglab-verdict tsglab-verdict-{state}' style='background:{background};border-left:"
                f"6px solid {edge};padding:6px 10px;margin:6px 0;white-space:normal;overflow-wrap:anywhere;"
                f"line-height:1.35'>{body}</div>")

    def _repr_html_(self) -> str:
        """Jupyter's view: title, verdict banner, every table (styled, scrolling when wide) and the
        P95-views and cost–quality figures inline (SVG)."""
        import html
        import io

        from tsglab.report.publish import to_html

        status = "" if self.status == "complete" else f" [run {self.status}: partial data]"
        title = (f"tsglab report — {self.run_dir.name}: {self.gateway} vs {self.baseline}{status}")
        parts = [f"<div class='tsglab-report'><h3>{html.escape(title)}</h3>", self.verdict_banner_html()]
        if self.write_error:
            parts.append(f"<p>{html.escape(self.write_error)}</p>")
        for kind in ("p95_views", "cost_quality"):
            try:
                figure = self.plot(kind, size="page")
            except Exception as exc:  # noqa: BLE001 (a notebook view must not raise: say why instead)
                parts.append(f"<p>Figure {kind} not drawn: {html.escape(str(exc))}</p>")
                continue
            if figure is not None:
                buffer = io.StringIO()
                figure.savefig(buffer, format="svg", bbox_inches="tight")
                figure.clear()
                svg = buffer.getvalue()
                parts.append(f"<div class='tsglab-figure'>{svg[svg.find('<svg'):]}</div>")
        footnotes = self.footnotes()
        parts += [to_html(name, df, title=title, note=self.notes.get(name, ""), footnotes=footnotes.get(name))
                  for name, (title, df) in self.tables().items()]
        parts.append("</div>")
        return "\n".join(parts)

    def _verdict_head(self) -> str:
        marks = ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in self.verdict.items() if k.startswith("family"))
        alpha = self.meta.get("settings", {}).get("alpha", 0.05)
        return f"Verdict at α = {alpha:g}: {'PASS' if self.verdict['overall'] else 'FAIL'} — {marks}"

    def verdict_caveats(self) -> list[tuple[str, list[str]]]:
        """What qualifies the verdict, each as (what, the rows or arms it concerns)."""
        caveats: list[tuple[str, list[str]]] = []
        if self.verdict.get("underpowered"):
            caveats.append(("a row the verdict needs is underpowered at its n (see n_needed / power_at_equal)", []))
        if not self.verdict.get("identifiable", True):
            caveats.append(("a P95 is not identifiable (failures or censoring above 5 %)", []))
        if self.verdict.get("failed_strata"):
            caveats.append(("strata flagged failed", list(self.verdict["failed_strata"])))
        if self.verdict.get("unpaired"):
            caveats.append(("requests left out, their prompt has no request in the other arm",
                            [f"{arm} {count}" for arm, count in self.verdict["unpaired"].items()]))
        if self.verdict.get("not_computable"):
            caveats.append(("not computable", list(self.verdict["not_computable"])))
        return caveats

    def verdict_line(self) -> str:
        if not self.verdict:
            return ""
        separators = {"not computable": "; "}
        extra = [f"{what}: {separators.get(what, ', ').join(items)}" if items else what
                 for what, items in self.verdict_caveats()]
        tail = f" ({'; '.join(extra)})" if extra else ""
        line = self._verdict_head() + tail
        if self.verdict.get("under_delivered"):
            line += ("\nWARNING: the load generator under-delivered, so latencies were measured under less load "
                     f"than planned — {'; '.join(self.verdict['load_delivery'])}")
        return line

    def __str__(self) -> str:
        status = "" if self.status == "complete" else f"  [run {self.status}: partial data]"
        title = f"tsglab report — {self.run_dir.name}: {self.gateway} vs {self.baseline}{status}"
        if self.written_to is not None and self.written_to != self.run_dir:
            title += f"\n(written to {self.written_to})"
        head = "\n".join(line for line in (title, self.verdict_line(), self.routing_line(), self.outcome_line(),
                                            self.claims_line()) if line)
        tail = f"\n{self.write_error}" if self.write_error else ""
        return f"{head}\n\n{self.to_markdown()}{tail}"

    def routing_line(self) -> str:
        """One line per pair of arms that the routing replay found identical (else "")."""
        return "\n".join(f"WARNING: {message}" for message in self.routing_warnings)

    def claims_line(self) -> str:
        """One line per claim of the spec: supported / refuted / cannot decide at this n (else "")."""
        return "\n".join(self.enforcement.claims_lines()) if self.enforcement is not None else ""

    def outcome_line(self) -> str:
        """One line when an arm has no answered request: its counts and error kinds (else "")."""
        return outcome_line(self.outcomes) if len(self.outcomes) else ""

    def __repr__(self) -> str:
        """One line (papermill logs and plain consoles stay short); ``str(report)`` is the whole report."""
        outcome = ("PASS" if self.verdict.get("overall") else "FAIL") if self.verdict else "no verdict"
        sizes = ", ".join(f"{arm} n={len(frame)}" for arm, frame in self.frames.items())
        status = "" if self.status == "complete" else f", run {self.status}"
        return f"RunReport({self.run_dir.name}: {self.gateway} vs {self.baseline}, {outcome}; {sizes}{status})"



def _a_view(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["stratum", "n_pairs", "method", "quality_baseline", "quality_gateway", "mean_diff", "ci_low", "ci_high",
            "p_value", "q_fail", "decision", "n_needed"]
    return table[cols] if len(table) else table


def _b_view(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["view", "stratum", "n_pairs", "p95_baseline", "p95_gateway", "ratio", "ratio_ci_high", "p_value",
            "q_fail", "power_at_equal", "decision"]
    return table[cols] if len(table) else table


def _c_view(table: pd.DataFrame) -> pd.DataFrame:
    cols = ["arm", "stratum", "n", "failures", "rate", "upper_bound", "p_value", "passed_point", "passed_test",
            "underpowered"]
    return table[cols] if len(table) else table


def build_report(
    run_dir: str | os.PathLike,
    *,
    vs: str | os.PathLike | None = None,
    baseline_arm: str = "baseline",
    gateway_arm: str | None = None,
    settings: ProtocolSettings | None = None,
    write: bool = True,
    allow_suite_change: bool = False,
) -> RunReport:
    """Compare the gateway arm with the baseline arm of ``run_dir`` (or the baseline arm of run ``vs``).

    Three steps: :func:`~tsglab.report.pairing.load_arm_pair` (which arms, checked to be pairable),
    :func:`compute_report` (the tables and tests; no I/O) and, with ``write``,
    :func:`~tsglab.report.writing.write_report` into the run directory — or, with ``vs``, into a comparison
    directory of its own (``<run>--vs--<other>``), so another run's files are never overwritten."""
    pair = load_arm_pair(run_dir, vs=vs, baseline_arm=baseline_arm, gateway_arm=gateway_arm,
                         allow_suite_change=allow_suite_change)
    manifest = pair.manifest
    settings = settings or ProtocolSettings(seed=int(manifest.get("seed") or 0))
    report = compute_report(pair, settings)
    from tsglab.report.enforcement_run import attach_enforcement

    report = attach_enforcement(report, pair)  # unchanged (nothing read) for a run without guardians or claims
    if not write:
        return report
    from tsglab.report.writing import write_report

    target = report.out_dir or report.run_dir
    try:
        write_report(report)
    except OSError as exc:  # a read-only place, a full disk: the report is computed, only the files are missing
        where = exc.filename or target
        reason = exc.strerror or type(exc).__name__
        message = (f"Not written: could not write the report's files to {target} ({where}: {reason}); the report "
                   "above is complete. Pass write=False (CLI: --no-write) to print without writing.")
        warnings.warn(message, TsglabWarning, stacklevel=2)
        return dataclasses.replace(report, write_error=message)
    return dataclasses.replace(report, written_to=target)


def compute_report(pair: ArmPair, settings: ProtocolSettings) -> RunReport:
    """Every table and test of the report for two paired arms (no reading, no writing)."""
    base, gate = pair.baseline, pair.gateway
    frames = pair.frames
    manifest = pair.manifest
    load = manifest.get("spec", {}).get("load", {})
    runs = f"run {manifest.get('run_id')}" + (f" vs {pair.vs_manifest.get('run_id')}" if pair.vs_manifest else "")
    fingerprint = (f"tsglab {__version__}; {runs}; spec {manifest.get('spec_hash')}; "
                   f"seed {manifest.get('seed')}; n={len(base)} paired requests; warm-up "
                   f"{load.get('warmup_count', 0)} req per arm / {load.get('warmup_seconds', 0)} s; timeout "
                   f"{load.get('timeout_s')} s; mode {load.get('mode')}, period {load.get('period_ms')} ms")
    from tsglab.stats import TDigest

    choice = {arm: _serial_choice(f) for arm, f in frames.items()}
    table_a = family_a(base, gate, settings)
    table_b = family_b(base, gate, settings)
    table_c = family_c(frames, settings)
    b_overall = table_b[table_b["stratum"] == "overall"]
    meta = {
        "n_resamples": settings.n_resamples,
        "seed": settings.seed,
        "runs": {"run": str(pair.run_dir), "vs": str(pair.vs_dir) if pair.vs_dir else None,
                 "suite_sha256": manifest.get("suite_sha256"),
                 "vs_suite_sha256": (pair.vs_manifest or {}).get("suite_sha256")},
        "ladder": list(pair.ladder),
        "family_A": {"function": "tsglab.stats.quality_noninferiority",
                     "methods": sorted(set(table_a["method"])), "margin": settings.quality_margin,
                     "alpha": settings.alpha, "test": "equivalence (TOST)" if settings.equivalence else
                     "non-inferiority"},
        "family_B": {"function": "tsglab.stats.quantile_ratio_test",
                     "statistic": "log ratio of censored Harrell–Davis P95s, paired percentile bootstrap",
                     "resampling": dict(zip(b_overall["view"], b_overall["resampling"], strict=True)),
                     "latency": "co_ms" if settings.co_correction else "raw_ms", "delta": settings.p95_delta},
        "serial_correlation": {arm: (asdict(c) if c is not None else None) for arm, c in choice.items()},
        "multiplicity": {"verdict": f"intersection-union of the overall rows at alpha = {settings.alpha}",
                         "strata": f"{settings.fdr_method.upper()} at q = {settings.fdr_q} on p_fail flags failing "
                                   "strata, which block the verdict"},
        "estimators": {"p50_p95": "harrell-davis on the kaplan-meier distribution (censored HD)",
                       "intervals": "percentile bootstrap, iid or stationary by a Ljung-Box test",
                       "online": TDigest.implementation},
        "settings": settings.to_dict(),
    }
    figures = {arm: arm_metrics(frame, n_resamples=settings.n_resamples, seed=settings.seed,
                             resampling=settings.resampling)
               for arm, frame in frames.items()}
    manifests = (manifest,) + ((pair.vs_manifest,) if pair.vs_manifest else ())
    routing_warnings = _routing_warnings(manifests)
    notes = _notes(settings, fingerprint, manifest)
    notes["headline"] = _not_computed_note(frames) + notes["headline"]
    if routing_warnings:
        notes["headline"] = "Routing replay: " + " ".join(routing_warnings) + " " + notes["headline"]
    return RunReport(
        run_dir=pair.run_dir,
        out_dir=pair.out_dir,
        baseline=pair.baseline_label,
        gateway=pair.gateway_label,
        status=pair.status,
        ladder=pair.ladder,
        headline=headline_table(figures, top_tier=pair.ladder[-1]),
        p95_views=four_view_table(frames, n_resamples=settings.n_resamples, seed=settings.seed,
                                  resampling=settings.resampling),
        tiers=tier_table(frames, pair.ladder),
        tasks=task_table(frames),
        family_a=table_a,
        family_b=table_b,
        family_c=table_c,
        routing=routing_cost(frames, pair.ladder),
        load=load_table(frames),
        energy=energy_table(frames),
        outcomes=outcome_table(frames),
        verdict={**verdict(table_a, table_b, table_c, pair.gateway_label), **_delivery_verdict(pair),
                 "unpaired": dict(pair.unpaired)},
        meta=meta,
        manifests=manifests,
        frames=frames,
        figures=figures,
        notes=notes,
        routing_warnings=routing_warnings,
    )


def _not_computed_note(frames: dict[str, pd.DataFrame]) -> str:
    """Why a headline cell is not computed when the run is too small for it (empty warm view, one request: no CI)."""
    parts = []
    for arm, frame in frames.items():
        warm = int((frame["warm"] & ~frame["failed"]).sum())
        answered = int((~frame["failed"]).sum())
        if warm == 0:
            parts.append(f"{arm}: P50 E2E warm not computed, n = 0 warm answered requests (all in warm-up or failed)")
        elif warm < MIN_CI_N or answered < MIN_CI_N:
            parts.append(f"{arm}: no CI for the latencies, n = {min(warm, answered)} < {MIN_CI_N} needed for a CI")
    return ("Not computed — " + "; ".join(parts) + ". ") if parts else ""


def _routing_warnings(manifests: tuple[dict, ...]) -> tuple[str, ...]:
    from tsglab.load.dry_route import routing_warnings

    return tuple(routing_warnings(manifests))


def _notes(settings: ProtocolSettings, fingerprint: str, manifest: dict) -> dict[str, str]:
    return {
            "headline": "P50: raw E2E latency of warm requests; P95 CO: completed − intended start. Both "
                        "Harrell–Davis on the Kaplan–Meier distribution (timeouts right-censored), with 95 % "
                        f"percentile-bootstrap CIs (B={settings.n_resamples}; stationary bootstrap when a Ljung–Box "
                        "test finds serial correlation). Eval ms: prompt + generation time summed over every "
                        f"attempt (repairs, upgrades; a failed attempt costs its elapsed time). {fingerprint}",
            "family_A": f"Each row a test at α={settings.alpha}: H0 mean d <= -{settings.quality_margin} "
                        f"({'TOST' if settings.equivalence else 'non-inferiority'}), d = gateway − baseline per "
                        "prompt; method exact-binary (exact unconditional score test, pass/fail scores) or "
                        "betting (finite-sample e-value for bounded scores); ci_low/ci_high: the test inverted "
                        f"(one-sided {1 - settings.alpha:.0%}). q_fail: {settings.fdr_method.upper()} at "
                        f"{settings.fdr_q} on the p-values for failing, across strata "
                        f"({'/'.join(settings.strata)}); decision 'failed' = flagged. n_needed: pairs at which "
                        f"identical scores would pass. {fingerprint}",
            "family_B": f"Each row a test at α={settings.alpha}: H0 P95_g >= {1 + settings.p95_delta:g}·P95_b on "
                        f"{'CO' if settings.co_correction else 'raw (co_correction off)'} latency; censored "
                        "Harrell–Davis P95s (failed requests censored at the SLO cap), prompts resampled jointly "
                        f"(B={settings.n_resamples}, seed {settings.seed}; stationary bootstrap at level α/2 when "
                        "serially correlated). 'not identifiable': > 5 % failed or censored in an arm; "
                        "'underpowered': power at ratio 1 below 50 % or too few observations above the P95. "
                        f"q_fail: {settings.fdr_method.upper()} per view on the p-values for failing. {fingerprint}",
            "family_C": f"Exact one-sided binomial test of rate >= {settings.json_max_rate:g} at α={settings.alpha}; "
                        f"upper bound: Clopper–Pearson. {fingerprint}",
            "p95_views": "Harrell–Davis on the Kaplan–Meier distribution, timeouts right-censored at their elapsed "
                         "time; 95 % percentile-bootstrap CIs (stationary bootstrap when serially correlated: "
                         "column 'interval'). P95 not computed (—) when censoring > 5 % (not identifiable); "
                         "p95_lower_bound_ms is then a lower bound. Failed requests "
                         "(errors other than timeouts) have no answer latency: left out here, counted in 'errors', "
                         "and counted at the SLO cap by the Family B guardrail. " + fingerprint,
            "load": "Dispatch lag = dispatched − intended start: how long a request waited to be sent — behind "
                    "earlier requests (a paced schedule's backlog, or every open-loop worker busy) or for the "
                    "generator itself. CO latency includes it; raw latency does not. " + _generator_note(manifest),
            "energy": _energy_note(manifest),
    }


def _delivery_verdict(pair: ArmPair) -> dict:
    """``under_delivered`` and the reasons (``load_delivery``, one per run and segment that fell short) for
    every run the report reads (tsglab.load.delivery's rule)."""
    from tsglab.load.delivery import delivery_warnings

    manifests = [pair.manifest] + ([pair.vs_manifest] if pair.vs_manifest else [])
    reasons = [f"run {m.get('run_id')}: {line}" for m in manifests for line in delivery_warnings(m)]
    return {"under_delivered": bool(reasons), "load_delivery": reasons}


def _generator_note(manifest: dict) -> str:
    summary = manifest.get("load_generator") or {}
    return "; ".join(f"{k} {v}" for k, v in summary.items() if not isinstance(v, dict | list))


def _energy_note(manifest: dict) -> str:
    energy = manifest.get("energy") or {}
    if not energy.get("available"):
        return f"Not measured: {energy.get('reason', 'no energy meter in this run')}. Never reported as zero."
    return (f"Meter {energy.get('meter')} ({energy.get('domain')}), {energy.get('sample_hz_achieved', '?')} Hz; "
            f"windows of {energy.get('window_s')} s; idle baseline {energy.get('idle_w')} W subtracted; each "
            "window's net energy shared among in-flight requests in proportion to their tokens in it.")


def metrics_summary(report: RunReport) -> pd.DataFrame:
    """Long format, one row per (arm, metric): the headline figures and the four P95 views."""
    rows = [{"arm": arm, "metric": key, "value": value}
            for arm, figures in report.figures.items() for key, value in figures.items()]
    rows += [{"arm": view.arm, "metric": f"{key} [{view.view}]", "value": float(getattr(view, key))}
             for view in report.p95_views.itertuples(index=False)
             for key in ("p50_ms", "p50_ci_low", "p50_ci_high", "p95_ms", "p95_ci_low", "p95_ci_high",
                         "p95_lower_bound_ms", "timeouts_rate")]
    summary = pd.DataFrame(rows)
    summary.insert(0, "run_id", report.run_dir.name)
    return summary


def _serial_choice(frame: pd.DataFrame):
    """Ljung–Box on the arm's CO latencies in time order; None when too short to test."""
    from tsglab.stats import choose_bootstrap

    series = frame.sort_values("seq")["co_ms"].to_numpy(float)
    if len(series) < 30:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return choose_bootstrap(series)


