"""Report v0 of one run (or two runs): tables printed and written under ``runs/<id>/tables/``."""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from tsglab._version import __version__
from tsglab.errors import RunError
from tsglab.events.log import read_events, read_manifest
from tsglab.report.frame import events_frame
from tsglab.report.pairing import shared_pairs
from tsglab.report.protocol import ProtocolSettings, family_a, family_b, family_c, routing_cost, verdict
from tsglab.report.render import to_html, to_latex, to_markdown
from tsglab.report.tables import (
    ablation_table,
    arm_metrics,
    energy_table,
    four_view_table,
    headline_table,
    load_table,
    task_table,
    tier_table,
)


@dataclass(frozen=True)
class RunReport:
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
    verdict: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict, repr=False)
    notes: dict[str, str] = field(default_factory=dict)
    frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    def tables(self) -> dict[str, tuple[str, pd.DataFrame]]:
        return {
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
        }

    def to_markdown(self) -> str:
        return "\n".join(to_markdown(df, title=title, note=self.notes.get(name, ""))
                         for name, (title, df) in self.tables().items())

    def verdict_line(self) -> str:
        if not self.verdict:
            return ""
        marks = ", ".join(f"{k} {'pass' if v else 'FAIL'}" for k, v in self.verdict.items()
                          if k.startswith("family"))
        extra = []
        if self.verdict.get("underpowered"):
            extra.append("a row the verdict needs is underpowered at its n (see n_needed / power_at_equal)")
        if not self.verdict.get("identifiable", True):
            extra.append("a P95 is not identifiable (failures or censoring above 5 %)")
        if self.verdict.get("failed_strata"):
            extra.append(f"strata flagged failed: {', '.join(self.verdict['failed_strata'])}")
        alpha = self.meta.get("settings", {}).get("alpha", 0.05)
        tail = f" ({'; '.join(extra)})" if extra else ""
        return f"Verdict at α = {alpha:g}: {'PASS' if self.verdict['overall'] else 'FAIL'} — {marks}{tail}"

    def __str__(self) -> str:
        status = "" if self.status == "complete" else f"  [run {self.status}: partial data]"
        title = f"tsglab report — {self.run_dir.name}: {self.gateway} vs {self.baseline}{status}"
        return f"{title}\n{self.verdict_line()}\n\n{self.to_markdown()}"

    def _repr_markdown_(self) -> str:
        return str(self)


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


def _arm_frames(run_dir: Path) -> tuple[pd.DataFrame, dict]:
    return events_frame(read_events(run_dir)), read_manifest(run_dir)


def build_report(
    run_dir: str | os.PathLike,
    *,
    vs: str | os.PathLike | None = None,
    baseline_arm: str = "baseline",
    gateway_arm: str | None = None,
    settings: ProtocolSettings | None = None,
    write: bool = True,
) -> RunReport:
    """Compare the gateway arm with the baseline arm of ``run_dir`` (or the baseline of run ``vs``)."""
    run_dir = Path(run_dir)
    frame, manifest = _arm_frames(run_dir)
    arms = list(dict.fromkeys(frame["arm"]))
    if vs is not None:
        other, _ = _arm_frames(Path(vs))
        other_arms = list(dict.fromkeys(other["arm"]))
        base_name = baseline_arm if baseline_arm in other_arms else other_arms[0]
        base = other[other["arm"] == base_name]
        base_label = f"{Path(vs).name}:{base_name}"
        candidates = [a for a in arms if a != baseline_arm] or arms
    else:
        if baseline_arm not in arms:
            raise RunError(f"{run_dir}: no arm named {baseline_arm!r} (arms: {arms}); pass baseline_arm= "
                           "(CLI: --baseline ARM) or compare with another run via vs= (CLI: --vs RUN).")
        base = frame[frame["arm"] == baseline_arm]
        base_label = baseline_arm
        candidates = [a for a in arms if a != baseline_arm]
        if not candidates:
            raise RunError(f"{run_dir}: only the baseline arm has events; nothing to compare.")
    gateway_arm = gateway_arm or candidates[0]
    if gateway_arm not in arms:
        raise RunError(f"{run_dir}: no arm named {gateway_arm!r} (arms: {arms}).")
    gate = frame[frame["arm"] == gateway_arm]
    base, gate = shared_pairs(base, gate)
    if not len(base):
        raise RunError(f"{run_dir}: the arms share no prompt ids; a paired comparison needs the same prompts.")
    frames = {base_label: base, gateway_arm: gate}
    load = manifest.get("spec", {}).get("load", {})
    fingerprint = (f"tsglab {__version__}; run {manifest.get('run_id')}; spec {manifest.get('spec_hash')}; "
                   f"seed {manifest.get('seed')}; n={len(base)} paired requests; warm-up "
                   f"{load.get('warmup_count', 0)} req per arm / {load.get('warmup_seconds', 0)} s; timeout "
                   f"{load.get('timeout_s')} s; mode {load.get('mode')}, period {load.get('period_ms')} ms")
    from tsglab.stats import TDigest

    settings = settings or ProtocolSettings(seed=int(manifest.get("seed") or 0))
    choice = {arm: _serial_choice(f) for arm, f in frames.items()}
    table_a = family_a(base, gate, settings)
    table_b = family_b(base, gate, settings)
    table_c = family_c(frames, settings)
    b_overall = table_b[table_b["stratum"] == "overall"]
    meta = {
        "n_resamples": settings.n_resamples,
        "seed": settings.seed,
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
    report = RunReport(
        run_dir=run_dir,
        baseline=base_label,
        gateway=gateway_arm,
        status=manifest.get("status", "unknown"),
        headline=headline_table(base, gate, names=(base_label, gateway_arm), n_resamples=settings.n_resamples,
                                seed=settings.seed),
        p95_views=four_view_table(frames, n_resamples=settings.n_resamples, seed=settings.seed),
        tiers=tier_table(frames),
        tasks=task_table(frames),
        family_a=table_a,
        family_b=table_b,
        family_c=table_c,
        routing=routing_cost(frames),
        load=load_table(frames),
        energy=energy_table(frames),
        verdict=verdict(table_a, table_b, table_c, gateway_arm),
        meta=meta,
        frames=frames,
        notes={
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
                         "column 'interval'). P95 NaN when censoring > 5 % (not identifiable); "
                         "p95_lower_bound_ms is then a lower bound. Failed requests "
                         "(errors other than timeouts) have no answer latency: left out here, counted in 'errors', "
                         "and counted at the SLO cap by the Family B guardrail. " + fingerprint,
            "load": "Dispatch lag = dispatched − intended start: how long a request waited to be sent — behind "
                    "earlier requests (a paced schedule's backlog, or every open-loop worker busy) or for the "
                    "generator itself. CO latency includes it; raw latency does not. " + _generator_note(manifest),
            "energy": _energy_note(manifest),
        },
    )
    if write:
        write_report(report)
    return report


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
    """Long format, one row per (arm, metric): the headline metrics and the four P95 views."""
    rows = []
    for arm, frame in report.frames.items():
        metrics = arm_metrics(frame, n_resamples=report.meta.get("n_resamples", 2000), seed=report.meta.get("seed", 0))
        rows += [{"arm": arm, "metric": key, "value": value} for key, value in metrics.items()]
    for view in report.p95_views.itertuples(index=False):
        for key in ("p50_ms", "p50_ci_low", "p50_ci_high", "p95_ms", "p95_ci_low", "p95_ci_high",
                    "p95_lower_bound_ms", "timeouts_rate"):
            rows.append({"arm": view.arm, "metric": f"{key} [{view.view}]", "value": float(getattr(view, key))})
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


def seed_manifest(report: RunReport) -> str:
    """Every seed and version that makes the run and its report reproducible."""
    import platform

    import numba
    import numpy
    import scipy

    manifest = read_manifest(report.run_dir)
    spec = manifest.get("spec", {})
    lines = [
        f"run_id: {manifest.get('run_id')}",
        f"spec_hash: {manifest.get('spec_hash')}",
        f"spec_seed: {manifest.get('seed')}",
        f"prompt_selection_seed: {spec.get('prompts', {}).get('seed')}",
        f"protocol_seed: {report.meta.get('seed')}",
        f"n_resamples: {report.meta.get('n_resamples')}",
        f"suite: {manifest.get('suite')} sha256[:16]={manifest.get('suite_sha256')}",
        f"tsglab: {__version__}",
        f"python: {platform.python_version()}",
        f"numpy: {numpy.__version__}",
        f"scipy: {scipy.__version__}",
        f"numba: {numba.__version__}",
        f"pandas: {pd.__version__}",
    ]
    try:
        import llama_cpp

        lines.append(f"llama_cpp_python: {llama_cpp.__version__}")
    except ImportError:
        lines.append("llama_cpp_python: not installed")
    for tier, tier_spec in spec.get("tiers", {}).items():
        lines.append(f"tier {tier}: model={tier_spec.get('model')} max_tokens={tier_spec.get('max_tokens')} "
                     f"constrained_json={tier_spec.get('constrained_json')} temperature=0")
    return "\n".join(lines) + "\n"


def build_ablation(run_dirs: list[str | os.PathLike], *, write_to: str | os.PathLike | None = None) -> pd.DataFrame:
    """The ablation table over every arm of the given runs (rows named ``run:arm`` when several runs)."""
    frames: dict[str, pd.DataFrame] = {}
    for run_dir in map(Path, run_dirs):
        frame, _ = _arm_frames(run_dir)
        for arm, part in frame.groupby("arm", sort=False):
            frames[f"{run_dir.name}:{arm}" if len(run_dirs) > 1 else str(arm)] = part
    table = ablation_table(frames)
    if write_to is not None:
        out = Path(write_to) / "tables"
        out.mkdir(parents=True, exist_ok=True)
        title = "Ablations: cost, routing and latency per arm"
        note = ("cost: prompt + generation ms summed over all attempts; P50: Harrell–Davis, warm raw E2E; "
                f"P95 CO: HD (KM/SLO-cap under censoring); tsglab {__version__}")
        (out / "ablation.md").write_text(to_markdown(table, title=title, note=note), encoding="utf-8")
        (out / "ablation.tex").write_text(to_latex(table, title=title, note=note, label="tab:ablation"),
                                          encoding="utf-8")
    return table


def write_report(report: RunReport) -> Path:
    """Write Markdown, LaTeX and HTML tables under ``tables/``; return that folder."""
    out = report.run_dir / "tables"
    out.mkdir(parents=True, exist_ok=True)
    for name, (title, df) in report.tables().items():
        note = report.notes.get(name, "")
        (out / f"{name}.md").write_text(to_markdown(df, title=title, note=note), encoding="utf-8")
        (out / f"{name}.tex").write_text(to_latex(df, title=title, note=note, label=f"tab:{name}"), encoding="utf-8")
        (out / f"{name}.html").write_text(to_html(df, title=title, note=note), encoding="utf-8")
    import matplotlib.pyplot as plt

    from tsglab.report.figures import latency_ecdf, load_timeline

    plt.close(latency_ecdf(report.frames, report.run_dir / "figures" / "latency_ecdf.png"))
    plt.close(load_timeline(report.frames, report.run_dir / "figures" / "load_timeline.png"))
    metrics_summary(report).to_parquet(report.run_dir / "metrics_summary.parquet", index=False)
    for name, table in (("A", report.family_a), ("B", report.family_b), ("C", report.family_c)):
        table.to_csv(report.run_dir / f"tests_family_{name}.csv", index=False)
    meta = {**report.meta, "verdict": report.verdict}
    (report.run_dir / "bootstrap_meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    (report.run_dir / "seed_manifest.txt").write_text(seed_manifest(report))
    return out
