"""Runtime enforcement in a run's report: what the guardians did per arm, read from the events.

For a run whose spec gives an arm guardians (``arms.<arm>.guard``), states ``claims:``, or whose events
carry an ``enforcement`` record, :func:`attach_enforcement` adds four tables to the report:

``enforcement_arms`` (:func:`enforcement_arm_table`)
    One row per arm — every arm, those without guardians too, so the baseline's figures are there:
    requests; the share a guardian flagged; the **violation rate reaching the user**, the delivered
    text (``event.answer``) checked by the reference guardians :data:`REFERENCE_GUARDIANS` for every arm
    alike, with an exact (Clopper–Pearson) interval; blocked / redacted / delivered-flagged rates;
    remedy steps per request; the guard wait per request (``check_ms``) P50/P95; added tokens per
    request (judge calls + remedy attempts a guardian caused), wasted tokens and cancellations
    (parallel mode); CO P95 latency; energy J/request and mWh per 1k tokens with bootstrap intervals.
    Guard columns of an arm without guardians are empty (its note says why).
``enforcement_checks`` (:func:`guard_check_table`)
    One row per guarded arm × guardian × stage: checks, share flagged, latency per check P50/P95 with
    Harrell–Davis bootstrap intervals (the helpers of :mod:`tsglab.report.enforcement`).
``enforcement``
    The labelled suite's guardian table (:func:`tsglab.report.enforcement.enforcement_table`) for the
    guardians the spec's arms use plus the reference guardians; computed once per process.
``claims``
    :func:`tsglab.report.enforcement.claims_check` of the spec's ``claims:``, the energy claim included.

The reference check is itself imperfect: its detection and false-positive rates on the labelled suite
are printed in the table's note, and the measured violation rate is the rate of texts the reference
flags, not the true rate.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.report import enforcement as _table
from tsglab.stats import ResamplePlan, clopper_pearson_limits, resample_indices

__all__ = [
    "ARM_COLUMNS",
    "REFERENCE_GUARDIANS",
    "EnforcementSection",
    "attach_enforcement",
    "claims_lines",
    "energy_interval",
    "enforcement_arm_table",
    "enforcement_requests",
    "enforcement_section",
    "guard_check_table",
    "guard_checks",
    "has_enforcement",
    "spec_guardians",
    "suite_guardian_table",
]

#: the guardians that check every arm's delivered text (the violation rate reaching the user)
REFERENCE_GUARDIANS: tuple[str, ...] = ("pii", "secrets", "code", "sql")
_J_PER_MWH = 3.6
_NO_GUARD = "no guardians on this arm: no guard figures"

ARM_COLUMNS: dict[str, str] = {
    "arm": "the arm",
    "guardians": "the arm's guardians (input ones marked 'in:'); empty when none",
    "n": "requests",
    "n_delivered": "requests that delivered a text (no error, no timeout): the violation rate's denominator",
    "flagged_rate": "requests where a guardian flagged an answer (or the request), exact interval",
    "violations": "delivered texts a reference guardian flags",
    "violation_rate": "violations / n_delivered: the violation rate reaching the user, exact interval",
    "blocked_rate": "requests answered with the block message (output or input block), exact interval",
    "redacted_rate": "requests delivered redacted, exact interval",
    "delivered_flagged_rate": "requests whose delivered text a configured guardian still flags, exact interval",
    "remedy_steps_per_req": "remedy steps (repair, upgrade) taken per request",
    "check_p50_ms": "guard wait per request (check_ms), Harrell–Davis P50 with bootstrap interval",
    "check_p95_ms": "guard wait per request (check_ms), Harrell–Davis P95 with bootstrap interval",
    "added_tokens_per_req": "tokens of judge calls and of remedy attempts a guardian caused, per request",
    "wasted_tokens": "completion tokens of cancelled speculative attempts (parallel mode), in all",
    "cancelled": "speculative attempts cancelled (parallel mode), in all",
    "p95_co_ms": "CO P95 latency (tsglab.report.tables.p95_view) over the arm's answered requests",
    "n_energy": "requests with measured energy",
    "j_per_request": "mean measured J per request, percentile bootstrap interval (requests resampled)",
    "mwh_per_1k_tokens": "total J / total tokens as mWh per 1k tokens, percentile bootstrap interval",
}


# -------------------------------------------------------------------------------------------------- spec


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 0.5:
        raise InvalidArgument(f"`alpha` must be a number in (0, 0.5); got {alpha!r}. Use e.g. alpha=0.05.")
    return float(alpha)


def _arm_specs(spec: Mapping[str, Any] | None) -> Mapping[str, Any]:
    arms = (spec or {}).get("arms") or {}
    return arms if isinstance(arms, Mapping) else {}


def spec_guardians(spec: Mapping[str, Any] | None) -> dict[str, tuple[str, ...]]:
    """``{arm: guardians}`` from a run.json spec (``arms.<arm>.guard``; input guardians as ``in:<name>``)."""
    out: dict[str, tuple[str, ...]] = {}
    for arm, config in _arm_specs(spec).items():
        guard = (config or {}).get("guard") or {} if isinstance(config, Mapping) else {}
        names = tuple(guard.get("output") or ()) + tuple(f"in:{n}" for n in guard.get("input") or ())
        out[str(arm)] = names
    return out


def _events_carry_enforcement(run_dir: Path) -> bool:
    """A byte scan of the events file (no parsing): a record written with an ``enforcement`` object."""
    from tsglab.events.log import EVENTS_FILE

    try:
        data = (run_dir / EVENTS_FILE).read_bytes()
    except OSError:
        return False
    return b'"enforcement":{' in data or b'"enforcement": {' in data


def has_enforcement(manifest: Mapping[str, Any], run_dirs: Iterable[Path] = ()) -> bool:
    """True when the run's spec gives an arm guardians or states claims, or its events carry enforcement."""
    spec = manifest.get("spec") or {}
    if spec.get("claims") or any(spec_guardians(spec).values()):
        return True
    return any(_events_carry_enforcement(Path(d)) for d in run_dirs)


# -------------------------------------------------------------------------------------------------- events


def _tokens(attempt: Any) -> int:
    return int(attempt.prompt_tokens or 0) + int(attempt.completion_tokens or 0)


def _reference_hits(text: str, guardians: Mapping[str, Any]) -> list[str]:
    return [name for name, guardian in guardians.items() if text and guardian.check(text).violated]


def enforcement_requests(events: Iterable[Any], *, reference: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per event: what enforcement did and whether the delivered text violates.

    ``reference`` (default: :data:`REFERENCE_GUARDIANS` of :data:`tsglab.policy.guardians.GUARDIANS`)
    checks ``event.answer`` of every delivered request, guarded or not. Columns: ``arm``, ``seq``,
    ``guarded``, ``mode``, ``outcome``, ``flagged``, ``delivered_flagged``, ``steps``, ``check_ms``, ``judge_tokens``,
    ``remedy_tokens``, ``wasted_tokens``, ``cancelled``, ``delivered``, ``violation``, ``violated_by``,
    ``energy_j``, ``energy_tokens``, ``energy_reason``.
    """
    if reference is None:
        from tsglab.policy.guardians import GUARDIANS

        reference = {name: GUARDIANS[name] for name in REFERENCE_GUARDIANS}
    rows = []
    for event in events:
        enf = event.enforcement
        delivered = event.error is None and not event.censoring.timeout
        hits = _reference_hits(event.answer, reference) if delivered else []
        row: dict[str, Any] = {"arm": event.arm, "seq": event.seq, "guarded": enf is not None,
                               "delivered": delivered, "violation": bool(hits), "violated_by": ",".join(hits)}
        if enf is None:
            row |= {"mode": "", "outcome": "", "flagged": False, "delivered_flagged": False, "steps": 0,
                    "check_ms": math.nan,
                    "judge_tokens": 0, "remedy_tokens": 0, "wasted_tokens": 0, "cancelled": 0}
        else:
            # an attempt made because an output guardian flagged the one before it is a guardian's remedy
            caused = {c.attempt + 1 for c in enf.checks if c.stage == "output" and c.violated and c.attempt >= 0}
            remedy = sum(_tokens(a) for i, a in enumerate(event.attempts) if i in caused)
            judge = sum(_tokens(a) for a in enf.calls if a.kind == "judge")
            row |= {"mode": enf.mode, "outcome": enf.outcome, "flagged": bool(enf.violated),
                    "delivered_flagged": bool(enf.delivered_violation), "steps": len(enf.steps),
                    "check_ms": float(enf.check_ms), "judge_tokens": judge, "remedy_tokens": remedy,
                    "wasted_tokens": int(enf.wasted_tokens), "cancelled": int(enf.cancelled)}
        energy = event.energy
        measured = energy is not None and energy.available and energy.joules is not None and \
            math.isfinite(float(energy.joules))
        if measured:
            # the token count of tsglab.energy.summarize_energy: the meter's, else the attempts' tokens
            tokens = float(energy.tokens) if energy.tokens is not None else float(sum(_tokens(a)
                                                                                     for a in event.attempts))
            row |= {"energy_j": float(energy.joules), "energy_tokens": tokens, "energy_reason": ""}
        else:
            reason = (energy.reason if energy is not None else "") or "no energy field in the event"
            row |= {"energy_j": math.nan, "energy_tokens": math.nan, "energy_reason": reason}
        rows.append(row)
    return pd.DataFrame(rows)


def guard_checks(events: Iterable[Any]) -> pd.DataFrame:
    """One row per guardian check of every event: ``arm``, ``guardian``, ``stage``, ``attempt``,
    ``violated``, ``latency_ms``, ``error``."""
    rows = [{"arm": e.arm, "guardian": c.guardian, "stage": c.stage, "attempt": c.attempt, "violated": c.violated,
             "latency_ms": float(c.latency_ms), "error": c.error}
            for e in events if e.enforcement is not None for c in e.enforcement.checks]
    return pd.DataFrame(rows, columns=["arm", "guardian", "stage", "attempt", "violated", "latency_ms", "error"])


# -------------------------------------------------------------------------------------------------- statistics


def energy_interval(joules: np.ndarray, tokens: np.ndarray, *, alpha: float = 0.05, n_resamples: int = 2000,
                    seed: int = 0) -> dict[str, float]:
    r"""J per request and mWh per 1k tokens with percentile bootstrap intervals (requests resampled iid).

    Returns ``j_per_request``, ``mwh_per_1k_tokens`` (total J / total tokens, as
    :func:`tsglab.energy.summarize_energy` computes it), their two-sided :math:`1-\alpha` limits
    (``_ci_low`` / ``_ci_high``) and the one-sided :math:`1-\alpha` bounds of the mWh figure
    (``mwh_bound_low`` / ``mwh_bound_high``: the ends of the two-sided :math:`1-2\alpha` interval) that
    the energy claim is decided with. Fewer than two requests: NaN limits.
    """
    joules, tokens = np.asarray(joules, float), np.asarray(tokens, float)
    n = joules.size
    out = {"n_energy": int(n), "j_per_request": math.nan, "mwh_per_1k_tokens": math.nan}
    limits = ("j_per_request_ci_low", "j_per_request_ci_high", "mwh_per_1k_tokens_ci_low",
              "mwh_per_1k_tokens_ci_high", "mwh_bound_low", "mwh_bound_high")
    out |= dict.fromkeys(limits, math.nan)
    if n == 0:
        return out
    scale = 1e3 / _J_PER_MWH
    out["j_per_request"] = float(joules.mean())
    out["mwh_per_1k_tokens"] = float(joules.sum() / tokens.sum() * scale) if tokens.sum() > 0 else math.nan
    if n < 2:
        return out
    means, ratios = [], []
    for index in resample_indices(ResamplePlan(n=n, n_resamples=n_resamples, seed=seed)):
        drawn_j, drawn_t = joules[index].sum(axis=1), tokens[index].sum(axis=1)
        means.append(drawn_j / n)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratios.append(np.where(drawn_t > 0, drawn_j / drawn_t * scale, np.nan))
    mean_draws, ratio_draws = np.concatenate(means), np.concatenate(ratios)
    ratio_draws = ratio_draws[np.isfinite(ratio_draws)]
    out["j_per_request_ci_low"], out["j_per_request_ci_high"] = map(float, np.quantile(mean_draws,
                                                                                       (alpha / 2, 1 - alpha / 2)))
    if ratio_draws.size:
        low, high, bound_low, bound_high = np.quantile(ratio_draws, (alpha / 2, 1 - alpha / 2, alpha, 1 - alpha))
        out |= {"mwh_per_1k_tokens_ci_low": float(low), "mwh_per_1k_tokens_ci_high": float(high),
                "mwh_bound_low": float(bound_low), "mwh_bound_high": float(bound_high)}
    return out


def _rates(counts: Sequence[int], n: int, alpha: float) -> list[tuple[float, float, float]]:
    if n == 0:
        return [(math.nan, math.nan, math.nan)] * len(counts)
    limits = clopper_pearson_limits(np.asarray(counts), np.full(len(counts), n), confidence=1 - alpha)
    return [(float(e), float(lo), float(hi)) for e, lo, hi in
            zip(np.atleast_1d(limits.estimate), np.atleast_1d(limits.ci_low), np.atleast_1d(limits.ci_high),
                strict=True)]


def _quantile_columns(values: np.ndarray, prefix: str, alpha: float, seed: int) -> dict[str, float]:
    """P50/P95 with intervals via the enforcement table's own helper, renamed ``<prefix>_p50_ms`` etc."""
    got = _table.latency_quantiles(values, alpha=alpha, seed=seed)
    return {f"{prefix}_p50_ms": got["p50_ms"], f"{prefix}_p50_ms_ci_low": got["p50_ci_low"],
            f"{prefix}_p50_ms_ci_high": got["p50_ci_high"], f"{prefix}_p95_ms": got["p95_ms"],
            f"{prefix}_p95_ms_ci_low": got["p95_ci_low"], f"{prefix}_p95_ms_ci_high": got["p95_ci_high"]}


def enforcement_arm_table(requests: pd.DataFrame, *, guardians: Mapping[str, Sequence[str]] | None = None,
                          p95_co: Mapping[str, Mapping[str, float]] | None = None, alpha: float = 0.05,
                          n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per arm (in order of first appearance) of :func:`enforcement_requests`' frame; columns
    :data:`ARM_COLUMNS`, ``_ci_low`` / ``_ci_high`` beside each rate and quantile, ``guarded``,
    ``mwh_bound_low`` / ``mwh_bound_high`` (one-sided bounds for the claims check) and ``note``.

    ``guardians`` names each arm's guardians (the spec's); ``p95_co`` gives each arm's CO P95 row
    (``p95_ms``, ``p95_ci_low``, ``p95_ci_high``), NaN where absent."""
    alpha = _check_alpha(alpha)
    if not isinstance(requests, pd.DataFrame) or "violation" not in requests:
        raise InvalidArgument(f"`requests` must be enforcement_requests(events)'s frame; got "
                              f"{type(requests).__name__}.")
    rows = []
    for arm, part in requests.groupby("arm", sort=False):
        guarded = bool(part["guarded"].any())
        n, delivered = len(part), int(part["delivered"].sum())
        violations = int((part["violation"] & part["delivered"]).sum())
        notes = []
        names = tuple((guardians or {}).get(str(arm), ()))
        row: dict[str, Any] = {"arm": arm, "guarded": guarded, "guardians": ", ".join(names), "n": n,
                               "n_delivered": delivered, "violations": violations}
        (rate, low, high), = _rates([violations], delivered, alpha)
        row |= {"violation_rate": rate, "violation_rate_ci_low": low, "violation_rate_ci_high": high}
        if not delivered:
            notes.append("no delivered text: no violation rate")
        if guarded:
            outcome = part["outcome"]
            counts = {"flagged_rate": int(part["flagged"].sum()),
                      "blocked_rate": int(outcome.isin(("block", "input_block")).sum()),
                      "redacted_rate": int((outcome == "redact").sum()),
                      "delivered_flagged_rate": int(part["delivered_flagged"].sum())}
            for key, (est, lo, hi) in zip(counts, _rates(list(counts.values()), n, alpha), strict=True):
                row |= {key: est, f"{key}_ci_low": lo, f"{key}_ci_high": hi}
            row |= {"remedy_steps_per_req": float(part["steps"].mean()),
                    "added_tokens_per_req": float((part["judge_tokens"] + part["remedy_tokens"]).mean()),
                    "wasted_tokens": int(part["wasted_tokens"].sum()), "cancelled": int(part["cancelled"].sum())}
            waits = part["check_ms"].to_numpy(float)
            row |= _quantile_columns(waits[np.isfinite(waits)], "check", alpha, seed)
        else:
            notes.append(_NO_GUARD)
        co = (p95_co or {}).get(str(arm), {})
        row |= {"p95_co_ms": float(co.get("p95_ms", math.nan)),
                "p95_co_ms_ci_low": float(co.get("p95_ci_low", math.nan)),
                "p95_co_ms_ci_high": float(co.get("p95_ci_high", math.nan))}
        if math.isfinite(row["p95_co_ms"]) and not math.isfinite(row["p95_co_ms_ci_high"]):
            notes.append("P95 CO interval not computed: too few requests above the P95")
        measured = part[np.isfinite(part["energy_j"].to_numpy(float))]
        row |= energy_interval(measured["energy_j"].to_numpy(float), measured["energy_tokens"].to_numpy(float),
                               alpha=alpha, n_resamples=n_resamples, seed=seed)
        if not len(measured):
            reasons = part["energy_reason"].value_counts()
            notes.append(f"energy not measured: {reasons.index[0] if len(reasons) else 'no energy field'}")
        elif len(measured) < 2:
            notes.append("energy of one request only: no interval")
        row["alpha"] = alpha
        row["note"] = "; ".join(notes)
        rows.append(row)
    table = pd.DataFrame(rows)
    order = ["arm", "guarded", "guardians", "n", "n_delivered", "flagged_rate", "flagged_rate_ci_low",
                         "flagged_rate_ci_high", "violations", "violation_rate", "violation_rate_ci_low",
                         "violation_rate_ci_high", "blocked_rate", "blocked_rate_ci_low", "blocked_rate_ci_high",
                         "redacted_rate", "redacted_rate_ci_low", "redacted_rate_ci_high", "delivered_flagged_rate",
                         "delivered_flagged_rate_ci_low", "delivered_flagged_rate_ci_high", "remedy_steps_per_req",
                         "check_p50_ms", "check_p50_ms_ci_low", "check_p50_ms_ci_high", "check_p95_ms",
                         "check_p95_ms_ci_low", "check_p95_ms_ci_high", "added_tokens_per_req", "wasted_tokens",
                         "cancelled", "p95_co_ms", "p95_co_ms_ci_low", "p95_co_ms_ci_high", "n_energy",
                         "j_per_request", "j_per_request_ci_low", "j_per_request_ci_high", "mwh_per_1k_tokens",
                         "mwh_per_1k_tokens_ci_low", "mwh_per_1k_tokens_ci_high", "mwh_bound_low", "mwh_bound_high",
                         "alpha", "note"]
    # guard columns exist for every arm (NaN where it has no guardians), so the frame's shape is fixed
    return table.reindex(columns=order)


def guard_check_table(checks: pd.DataFrame, *, n_requests: Mapping[str, int] | None = None, alpha: float = 0.05,
                      seed: int = 0) -> pd.DataFrame:
    """One row per arm × guardian × stage of :func:`guard_checks`' frame: ``checks``,
    ``checks_per_req`` (with ``n_requests``), ``flag_rate`` (exact interval), ``errors`` and the latency
    per check P50/P95 with Harrell–Davis bootstrap intervals (``p50_ms``, ``p95_ms`` and their limits)."""
    alpha = _check_alpha(alpha)
    rows = []
    for (arm, guardian, stage), part in checks.groupby(["arm", "guardian", "stage"], sort=False):
        n = len(part)
        (rate, low, high), = _rates([int(part["violated"].sum())], n, alpha)
        latency = _table.latency_quantiles(part["latency_ms"].to_numpy(float), alpha=alpha, seed=seed)
        per_req = (n / n_requests[arm]) if n_requests and n_requests.get(arm) else math.nan
        rows.append({"arm": arm, "guardian": guardian, "stage": stage, "checks": n, "checks_per_req": per_req,
                     "flag_rate": rate, "flag_rate_ci_low": low, "flag_rate_ci_high": high,
                     "errors": int((part["error"] != "").sum()),
                     **{k: latency[k] for k in ("p50_ms", "p50_ci_low", "p50_ci_high", "p95_ms", "p95_ci_low",
                                                "p95_ci_high")},
                     "note": "fewer than 2 checks: no latency quantiles" if n < 2 else ""})
    columns = ["arm", "guardian", "stage", "checks", "checks_per_req", "flag_rate", "flag_rate_ci_low",
               "flag_rate_ci_high", "errors", "p50_ms", "p50_ci_low", "p50_ci_high", "p95_ms", "p95_ci_low",
               "p95_ci_high", "note"]
    return pd.DataFrame(rows, columns=columns)


# -------------------------------------------------------------------------------------------------- the suite


@functools.lru_cache(maxsize=8)
def _suite_table(names: tuple[str, ...], alpha: float, seed: int, repeats: int) -> tuple[pd.DataFrame, float]:
    from tsglab.policy.guardians import GUARDIANS
    from tsglab.suite.enforcement import load_enforcement_suite

    started = time.perf_counter()
    cases = [c for c in load_enforcement_suite() if c.guardian in names]
    outcomes = _table.evaluate_guardians(cases, GUARDIANS, repeats=repeats)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        table = _table.enforcement_table(outcomes, alpha=alpha, seed=seed)
    return table, time.perf_counter() - started


def suite_guardian_table(guardians: Iterable[str], *, alpha: float = 0.05, seed: int = 0,
                         repeats: int = 20) -> pd.DataFrame:
    """The labelled suite's guardian table for ``guardians`` (those with suite cases) plus the reference
    guardians; computed once per process for each set (a few seconds: see ``seconds`` in ``attrs``)."""
    from tsglab.policy.guardians import GUARDIANS

    names = tuple(sorted({*REFERENCE_GUARDIANS, *(g for g in guardians if g in GUARDIANS)}))
    table, seconds = _suite_table(names, float(alpha), int(seed), int(repeats))
    out = table.copy()
    out.attrs["seconds"] = seconds
    return out


def _reference_note(suite: pd.DataFrame) -> str:
    rows = suite[(suite["slice"] == _table.ALL) & suite["guardian"].isin(REFERENCE_GUARDIANS)]
    pct = _table.percent
    parts = [f"{r.guardian} detection {pct(r.detection_rate)} [{pct(r.detection_rate_ci_low)}, "
             f"{pct(r.detection_rate_ci_high)}], FPR {pct(r.fpr)} [{pct(r.fpr_ci_low)}, {pct(r.fpr_ci_high)}]"
             for r in rows.itertuples(index=False)]
    return "; ".join(parts)


# -------------------------------------------------------------------------------------------------- claims


def _run_claims(claims: Mapping[str, Any], suite: pd.DataFrame, arms: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """claims_check over the suite table, with claims on guardians the suite has no cases for answered
    'cannot decide' instead of raising (a spec may name the judge)."""
    known = set(suite.loc[suite["slice"] == _table.ALL, "guardian"].astype(str))
    kept: dict[str, Any] = {}
    missing: list[dict[str, Any]] = []
    for claim, value in claims.items():
        if claim == "energy_mwh_per_1k_tokens" or not isinstance(value, Mapping):
            kept[claim] = value
            continue
        inside = {g: v for g, v in value.items() if g in known}
        missing.extend({"guardian": guardian, "claim": claim, "measured": "no labelled cases", "bound": "—",
                            "decision": _table.DECISIONS[2], "n_needed": pd.NA,
                            "sentence": f"Cannot decide: the labelled suite has no cases for {guardian!r}.",
                            "claim_key": claim, "claimed": float(value[guardian]), "estimate": math.nan,
                            "bound_value": math.nan, "n": 0, "alpha": alpha}
                       for guardian in sorted(set(value) - set(inside)))
        if inside:
            kept[claim] = inside
    checked = _table.claims_check(suite, kept, alpha=alpha, energy=arms) if kept else pd.DataFrame()
    if missing:
        columns = list(checked.columns) if len(checked) else list(missing[0])
        # one frame from the records (a concat with all-NA columns changes dtype rules in pandas 3)
        checked = pd.DataFrame(checked.to_dict("records") + missing, columns=columns)
        checked["n_needed"] = checked["n_needed"].astype("Int64")
    return checked


def claims_lines(checks: pd.DataFrame) -> list[str]:
    """One line per claim: ``<guardian or arm> — <claim>: <decision>`` (with the n needed)."""
    lines = []
    for row in checks.itertuples(index=False):
        need = "" if pd.isna(row.n_needed) else f" (about {int(row.n_needed):,} needed)"
        lines.append(f"Claim {row.claim} [{row.guardian}]: {row.decision}{need} — {row.measured}")
    return lines


# -------------------------------------------------------------------------------------------------- the section


@dataclass(frozen=True)
class EnforcementSection:
    """The enforcement tables of one report (module docstring) and their notes."""

    arms: pd.DataFrame
    checks: pd.DataFrame
    guardians: pd.DataFrame = field(default_factory=pd.DataFrame)
    claims: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: dict[str, str] = field(default_factory=dict)
    suite_seconds: float = 0.0

    def tables(self) -> dict[str, tuple[str, pd.DataFrame]]:
        out = {"enforcement_arms": ("Runtime enforcement per arm: violations reaching the user, remedies, cost",
                                    self.arms)}
        if len(self.checks):
            out["enforcement_checks"] = ("Guardian checks in the run: added latency per check", self.checks)
        if len(self.guardians):
            out["enforcement"] = ("Guardians on the labelled suite: detection, false positives, latency",
                                  self.guardians)
        if len(self.claims):
            out["claims"] = ("Claims check", self.claims)
        return out

    def claims_lines(self) -> list[str]:
        return claims_lines(self.claims) if len(self.claims) else []


def enforcement_section(events: Sequence[Any], spec: Mapping[str, Any] | None, *, alpha: float = 0.05,
                        n_resamples: int = 2000, seed: int = 0,
                        p95_co: Mapping[str, Mapping[str, float]] | None = None,
                        reference: Mapping[str, Any] | None = None, suite: bool = True) -> EnforcementSection:
    """Every enforcement table of a run from its events and run.json spec (module docstring).

    ``p95_co`` gives CO P95 rows per arm; arms missing there get :func:`tsglab.report.tables.p95_view`
    over their answered requests. ``suite=False`` leaves out the suite table (and the guardian claims)."""
    from tsglab.report.frame import events_frame
    from tsglab.report.tables import p95_view

    spec = spec or {}
    requests = enforcement_requests(events, reference=reference)
    guardians = spec_guardians(spec)
    for arm in requests["arm"].unique():  # arms whose events carry enforcement but the spec does not say
        if not guardians.get(arm):
            used = sorted({c.guardian for e in events if e.arm == arm and e.enforcement is not None
                           for c in e.enforcement.checks})
            guardians[str(arm)] = tuple(used)
    p95 = dict(p95_co or {})
    frame = events_frame(list(events))
    for arm, part in frame.groupby("arm", sort=False):
        if str(arm) not in p95:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p95[str(arm)] = p95_view(part[~part["failed"]], "co_ms", n_resamples=n_resamples, seed=seed)
    arms = enforcement_arm_table(requests, guardians=guardians, p95_co=p95, alpha=alpha,
                                 n_resamples=n_resamples, seed=seed)
    counts = requests.groupby("arm", sort=False).size().to_dict()
    checks = guard_check_table(guard_checks(events), n_requests=counts, alpha=alpha, seed=seed)
    in_use = {g.removeprefix("in:") for names in guardians.values() for g in names}
    suite_table = suite_guardian_table(in_use, alpha=alpha, seed=seed) if suite else pd.DataFrame()
    level = f"{(1 - alpha) * 100:g} %"
    reference_note = (f" The reference is itself imperfect; on the labelled suite: {_reference_note(suite_table)}."
                      if len(suite_table) else " The reference is itself imperfect (its suite figures: table "
                      "'enforcement').")
    notes = {
        "enforcement_arms": (
            f"Violation rate reaching the user: the delivered text (the answer, the block message or the redacted "
            f"text) checked by the reference guardians {', '.join(REFERENCE_GUARDIANS)} for every arm alike, over "
            f"requests that delivered a text; two-sided {level} exact (Clopper–Pearson) intervals for every rate. "
            "It is the rate of texts the reference flags, not the true violation rate." + reference_note +
            " Flagged, blocked, redacted and delivered-flagged rates are over all requests of a guarded arm; "
            "delivered-flagged = the delivered text is still flagged by a configured guardian (the event's "
            "delivered_violation: a flagged answer let through, or a redaction that left a finding). Guard wait: the "
            f"request's check_ms, Harrell–Davis P50/P95 with {level} iid bootstrap intervals. Added tokens: judge "
            "calls' and guardian-caused remedy attempts' prompt + completion tokens. P95 CO: the report's CO / "
            f"Overall view where the arm is in it, else the same estimator over the arm's answered requests. Energy: "
            f"{level} percentile bootstrap over requests (B = {n_resamples}); '—' with the reason where no meter "
            "measured it."),
        "enforcement_checks": (
            f"Each guardian's checks in the run (input and output stages apart): share flagged with {level} exact "
            f"intervals; latency per check (its own wall time; the judge's includes its model call), Harrell–Davis "
            f"P50/P95 with {level} iid bootstrap intervals."),
        "enforcement": _table.enforcement_note(alpha) + " Guardians: those the spec's arms use (with labelled cases) "
                       f"and the reference guardians {', '.join(REFERENCE_GUARDIANS)}.",
    }
    claims = (spec.get("claims") or {})
    checked = pd.DataFrame()
    if claims:
        table = suite_table if len(suite_table) else pd.DataFrame(columns=["guardian", "slice", "n_benign", "alpha"])
        checked = _run_claims(claims, table, arms, alpha)
        notes["claims"] = _table.claims_note(alpha) + " " + _table.ENERGY_CLAIM_NOTE
    return EnforcementSection(arms=arms, checks=checks, guardians=suite_table, claims=checked, notes=notes,
                              suite_seconds=float(suite_table.attrs.get("seconds", 0.0)) if len(suite_table) else 0.0)


def attach_enforcement(report: Any, pair: Any, *, reader: Any = None) -> Any:
    """``report`` with its enforcement section (a new RunReport), or ``report`` itself when the run has no
    guardians, no claims and no enforcement records (then nothing is read or computed)."""
    dirs = [pair.run_dir] + ([pair.vs_dir] if pair.vs_dir is not None else [])
    if not has_enforcement(pair.manifest, dirs):
        return report
    if reader is None:
        from tsglab.events import read_events as reader
    events = list(reader(pair.run_dir))
    if pair.vs_dir is not None:  # the baseline arm of the other run, under the report's label for it
        base_arm = pair.baseline_label.rpartition(":")[2]
        events += [dataclasses.replace(e, arm=pair.baseline_label) for e in reader(pair.vs_dir) if e.arm == base_arm]
    settings = report.meta.get("settings", {})
    views = report.p95_views
    co = views[views["view"] == "CO / Overall"] if len(views) else views
    p95 = {str(r["arm"]): {k: float(r[k]) for k in ("p95_ms", "p95_ci_low", "p95_ci_high")}
           for _, r in co.iterrows()}
    section = enforcement_section(events, pair.manifest.get("spec") or {}, alpha=float(settings.get("alpha", 0.05)),
                                  n_resamples=int(settings.get("n_resamples", 2000)),
                                  seed=int(settings.get("seed", 0)), p95_co=p95)
    return dataclasses.replace(report, enforcement=section, notes={**report.notes, **section.notes})
