"""Framework comparison: the same suite and policy on several serving backends, side by side.

A comparison file (e.g. ``experiments/backends.yaml``) holds one base spec, the local servers to
start for the comparison (always on 127.0.0.1, stopped afterwards, also on errors and Ctrl-C), and
the variants: each one points every tier at a backend (``embedded``, or ``openai``/``ollama`` on a
named server or an explicit endpoint). Each variant is an ordinary run with its own event log; the
comparison table reads those runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from tsglab.config import DEFAULT_TIERS, load_yaml
from tsglab.config.names import check_name
from tsglab.errors import RunError, SpecError

_TOP_KEYS = {"name", "description", "spec", "servers", "variants"}
_SERVER_KINDS = ("llama_cpp_server", "ollama_proxy")
_VARIANT_KEYS = {"backend", "server", "endpoint", "model", "options", "tiers", "description"}


@dataclass(frozen=True)
class Comparison:
    name: str
    spec: dict[str, Any]
    servers: dict[str, dict[str, Any]]
    variants: dict[str, dict[str, Any]]
    source: str
    description: str = ""


def load_comparison(path: str | os.PathLike) -> Comparison:
    """Read and validate a comparison file; every error names the file and the key."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"comparison file {path} does not exist (see experiments/backends.yaml).")
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{where}: cannot read the comparison file ({exc}).") from None
    # the strict reader of specs: duplicate keys, YAML 1.1 booleans and dates are errors with their line
    raw = load_yaml(text, where) or {}
    if not isinstance(raw, dict):
        raise SpecError(f"{where}: a comparison file is a mapping of keys (name, base, servers, variants); "
                        f"got {type(raw).__name__}.")
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        raise SpecError(f"{where}: unknown top-level key(s) {unknown}; known: {sorted(_TOP_KEYS)}.")
    for key in ("spec", "variants"):
        if not isinstance(raw.get(key), dict) or not raw[key]:
            raise SpecError(f"{where}: '{key}' must be a non-empty mapping.")
    servers = raw.get("servers") or {}
    for name, server in servers.items():
        kind = (server or {}).get("kind")
        if kind not in _SERVER_KINDS:
            raise SpecError(f"{where}: servers.{name}.kind must be one of {list(_SERVER_KINDS)}; got {kind!r}.")
        if kind == "ollama_proxy" and server.get("upstream") not in servers:
            raise SpecError(f"{where}: servers.{name}.upstream must name a llama_cpp_server in 'servers'; "
                            f"got {server.get('upstream')!r}.")
    for name, variant in raw["variants"].items():
        check_name(str(name), key="variants key", where=where)  # each variant is a run directory
        variant = variant or {}
        unknown = sorted(set(variant) - _VARIANT_KEYS)
        if unknown:
            raise SpecError(f"{where}: variants.{name}: unknown key(s) {unknown}; known: {sorted(_VARIANT_KEYS)}.")
        if variant.get("server") is not None and variant["server"] not in servers:
            raise SpecError(f"{where}: variants.{name}.server {variant['server']!r} is not in 'servers' "
                            f"({sorted(servers)}).")
    name = check_name(raw.get("name", path.stem), key="name", where=where)  # it names the comparison's folder
    return Comparison(name=name, spec=raw["spec"], servers=servers,
                      variants={str(k): dict(v or {}) for k, v in raw["variants"].items()}, source=where,
                      description=str(raw.get("description", "")))


def variant_spec(comparison: Comparison, variant: str, endpoints: dict[str, tuple[str, str]],
                 overrides: dict[str, Any] | None = None):
    """The ExperimentSpec of one variant. ``endpoints`` maps server name → (endpoint, model name)."""
    from tsglab.config import apply_overrides, spec_from_dict

    values = comparison.variants[variant]
    raw = apply_overrides(comparison.spec, overrides or {}, where=comparison.source)
    raw["name"] = f"{comparison.name}-{variant}"
    tiers = raw.setdefault("tiers", {})
    for tier in list(tiers) or DEFAULT_TIERS:  # the base spec's ladder, whatever its rungs are named
        tier_values = dict(tiers.get(tier) or {})
        if "backend" in values:
            tier_values["backend"] = values["backend"]
        if values.get("server"):
            endpoint, model = endpoints[values["server"]]
            tier_values.update(endpoint=endpoint, model=model)
        for key in ("endpoint", "model"):
            if key in values:
                tier_values[key] = values[key]
        if "options" in values:
            tier_values["options"] = {**tier_values.get("options", {}), **values["options"]}
        tier_values.update((values.get("tiers") or {}).get(tier) or {})
        tiers[tier] = tier_values
    return spec_from_dict(raw, where=f"{comparison.source}: variants.{variant}",
                          base_dir=Path(comparison.source).parent)


@contextlib.contextmanager
def _started_servers(comparison: Comparison, needed: set[str], log_dir: Path):
    """Start the named servers (and their upstreams) on 127.0.0.1; yield name → (endpoint, model)."""
    from tsglab.backends.models import resolve_model
    from tsglab.servers.launch import LlamaCppServer, OllamaProxy

    upstreams = {str(comparison.servers[n]["upstream"]) for n in needed if comparison.servers[n].get("upstream")}
    order = sorted(needed | upstreams, key=lambda n: comparison.servers[n]["kind"] != "llama_cpp_server")
    endpoints: dict[str, tuple[str, str]] = {}
    handles: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        for name in order:
            server = comparison.servers[name]
            if server["kind"] == "llama_cpp_server":
                options = {k: v for k, v in server.items() if k in ("n_ctx", "n_threads")}
                handle = stack.enter_context(LlamaCppServer(resolve_model(server.get("model", "smollm2-135m")),
                                                            log_dir=log_dir, **options))
                endpoints[name] = (handle.base_url, handle.model_alias)
            else:
                upstream = handles[server["upstream"]]
                handle = stack.enter_context(OllamaProxy(upstream.base_url, log_dir=log_dir))
                endpoints[name] = (handle.host, handle.model_name(upstream.model_alias))
            handles[name] = handle
        yield endpoints


def run_comparison(
    path: str | os.PathLike,
    *,
    runs_dir: str | os.PathLike = "runs",
    comparison_id: str | None = None,
    overrides: dict[str, Any] | None = None,
    variants: list[str] | None = None,
    progress: bool = True,
) -> ComparisonResult:
    """Run every variant (servers started as needed) and write ``<runs_dir>/<id>/comparison.*``."""
    from tsglab.load.runner import run_experiment

    comparison = load_comparison(path)
    chosen = variants or list(comparison.variants)
    unknown = [v for v in chosen if v not in comparison.variants]
    if unknown:
        raise SpecError(f"{comparison.source}: no variant(s) {unknown}; variants: {list(comparison.variants)}.")
    comparison_id = comparison_id or f"{comparison.name}-{dt.datetime.now().astimezone():%Y%m%d-%H%M%S}"
    check_name(comparison_id, key="comparison_id", where=str(runs_dir))
    out = Path(runs_dir) / comparison_id
    resolved = out.resolve()
    if not resolved.is_relative_to(Path(runs_dir).resolve()):
        raise RunError(f"{out} resolves to {resolved}, outside the runs dir {Path(runs_dir).resolve()}; tsglab "
                       "writes only inside it. Remove the link or choose another --id.")
    out.mkdir(parents=True, exist_ok=True)
    run_dirs: dict[str, str | os.PathLike] = {}
    for variant in chosen:
        server = comparison.variants[variant].get("server")
        with _started_servers(comparison, {server} if server else set(), out / "server-logs") as endpoints:
            spec = variant_spec(comparison, variant, endpoints, overrides)
            result = run_experiment(spec, runs_dir=out, run_id=variant, progress=progress)
            run_dirs[variant] = result.run_dir
    table = comparison_table(run_dirs)
    write_comparison(table, out, title=f"Framework comparison: {comparison.name}")
    return ComparisonResult(name=comparison.name, directory=out, table=table,
                            run_dirs={variant: Path(path) for variant, path in run_dirs.items()})


@dataclass(frozen=True)
class ComparisonResult:
    """A finished comparison: ``table`` (one row per variant and arm, :func:`comparison_table`), the
    ``directory`` it was written to and each variant's run directory; renders itself in a notebook and
    draws the report's figures over every (variant, arm)."""

    name: str
    directory: Path
    table: pd.DataFrame
    run_dirs: dict[str, Path]

    @property
    def title(self) -> str:
        return f"Framework comparison: {self.name}"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def frames(self) -> dict[str, pd.DataFrame]:
        """The events of every ``variant/arm`` as the report's frames (:func:`tsglab.report.frame.events_frame`)."""
        from tsglab.events.log import read_events
        from tsglab.report.frame import events_frame

        frames: dict[str, pd.DataFrame] = {}
        for variant, run_dir in self.run_dirs.items():
            for arm, part in events_frame(read_events(run_dir)).groupby("arm", sort=False):
                frames[f"{variant}/{arm}"] = part
        return frames

    def plot(self, kind: str = "p95_views", *, size: Literal["column", "page"] = "page"):
        """A report figure (a name of :data:`tsglab.report.figures.FIGURES`) over every ``variant/arm``."""
        from tsglab.errors import InvalidArgument
        from tsglab.report.figures import FIGURES
        from tsglab.report.tables import four_view_table

        if kind not in FIGURES:
            raise InvalidArgument(f"no figure {kind!r}; the figures: {', '.join(FIGURES)}.")
        frames = self.frames()
        return FIGURES[kind](four_view_table(frames) if kind == "p95_views" else frames, size=size)

    def to_markdown(self) -> str:
        from tsglab.report.publish import to_markdown

        return to_markdown("comparison", self.table, title=self.title, note=COMPARISON_NOTE)

    def to_latex(self, path: str | os.PathLike | None = None, *,
                 layout: Literal["table", "table*", "narrow"] = "table*") -> str:
        """The table as LaTeX, labelled ``tab:<name>:comparison``; written to ``path`` when given."""
        from tsglab.report.publish import label_prefix_for, to_latex

        text = to_latex("comparison", self.table, title=self.title, note=COMPARISON_NOTE,
                        label_prefix=label_prefix_for(self.name), layout=layout)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return (f"ComparisonResult({self.name}: {len(self.run_dirs)} variant(s), {len(self.table)} row(s) → "
                f"{self.directory})")

    def _repr_html_(self) -> str:
        import html

        from tsglab.report.publish import to_html

        return (f"<div class='tsglab-comparison'><h3>{html.escape(self.title)}</h3><p><code>"
                f"{html.escape(str(self.directory))}</code></p>"
                f"{to_html('comparison', self.table, title=self.title, note=COMPARISON_NOTE)}</div>")


def _median(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.median()) if len(values) else math.nan


def comparison_table(run_dirs: dict[str, str | os.PathLike]) -> pd.DataFrame:
    """One row per (variant, arm): P50/P95 raw and CO, TTFT, tokens/s, JSON failures, errors, cost, energy.

    Quality, JSON failure rate, error rate, cost and tokens/s are :mod:`tsglab.report.metrics`'s (the
    report's definitions: a timed-out json request is a JSON failure, a failed attempt costs its
    elapsed time)."""
    from tsglab.events.log import read_events
    from tsglab.report import metrics
    from tsglab.report.frame import events_frame
    from tsglab.report.tables import energy_table, p95_view

    rows = []
    for variant, run_dir in run_dirs.items():
        events = read_events(Path(run_dir))
        frame = events_frame(events)
        for arm, part in frame.groupby("arm", sort=False):
            attempts = [a for e in events if e.arm == arm for a in e.attempts]
            backends = sorted({a.backend for a in attempts} - {""})
            answered = part[~part["failed"]]
            energy = energy_table({arm: part}).iloc[0]
            raw, co = p95_view(answered, "raw_ms"), p95_view(answered, "co_ms")  # the report's estimator and CIs
            rows.append({
                "variant": variant,
                "arm": arm,
                "backends": ", ".join(backends),
                "n": len(part),
                "p50_raw_ms": raw["p50_ms"],
                "p95_raw_ms": raw["p95_ms"],
                "p50_co_ms": co["p50_ms"],
                "p95_co_ms": co["p95_ms"],
                "p95_co_ci_low": co["p95_ci_low"],
                "p95_co_ci_high": co["p95_ci_high"],
                "ttft_p50_ms": _median(answered["ttft_ms"]),
                "itl_p50_ms": _median(pd.Series([a.details.get("itl_ms_p50") for a in attempts],
                                                dtype=float)),
                "tokens_per_s": metrics.decode_tokens_per_s(part),
                "mean_quality": metrics.mean_quality(part),
                "json_fail_rate": metrics.json_fail_rate(part),
                "error_rate": metrics.error_rate(part),
                "avg_eval_ms": metrics.avg_cost_ms(part),
                "timeouts": int(part["timeout"].sum()),
                "j_per_request": energy["j_per_request"],
                "energy": energy["note"] or "measured",
            })
    return pd.DataFrame(rows)


COMPARISON_NOTE = (
    "P50: Harrell–Davis; P95: HD (KM/SLO-cap under censoring); raw = completed − dispatched, CO = completed − "
    "intended start; failed requests (errors, not timeouts) left out of latency and counted in the error rate; "
    "TTFT: first content token as the client saw it; tokens/s: decode tokens after the first over the time after "
    "the first token; JSON failure rate: every json-task request that did not deliver valid JSON, timed-out and "
    "failed ones included; eval ms: cost summed over all attempts, a timed-out or failed attempt at its elapsed "
    "time; energy: not computed (—) where no meter measured it.")


def write_comparison(table: pd.DataFrame, out: Path, *, title: str) -> None:
    """``comparison.{md,tex,narrow.tex,html,csv}`` in ``out`` (the publication tables' formats)."""
    from tsglab._version import __version__
    from tsglab.report.publish import label_prefix_for, to_html, to_latex, to_markdown

    note = f"{COMPARISON_NOTE} tsglab {__version__}"
    prefix = label_prefix_for(out.name)
    (out / "comparison.md").write_text(to_markdown("comparison", table, title=title, note=note), encoding="utf-8")
    layouts: tuple[tuple[Literal["table*", "narrow"], str], ...] = (("table*", ".tex"), ("narrow", ".narrow.tex"))
    for layout, suffix in layouts:
        (out / f"comparison{suffix}").write_text(
            to_latex("comparison", table, title=title, note=note, label_prefix=prefix, layout=layout),
            encoding="utf-8")
    (out / "comparison.html").write_text(to_html("comparison", table, title=title, note=note, standalone=True),
                                         encoding="utf-8")
    table.to_csv(out / "comparison.csv", index=False)
