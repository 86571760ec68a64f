"""The enforcement table and the claims check: how well guardians detect, how often they cry wolf,
what a check costs, and whether published claims hold at this n.

``evaluate_guardians(cases, guardians, *, repeats=20) -> DataFrame``
    One row per labelled case: the case's own guardian checks its text (once untimed, for the verdict
    and to warm caches, then ``repeats`` times inside one ``perf_counter_ns`` span: the mean is the
    case's latency, far above the timer's resolution).
``enforcement_table(outcomes, *, alpha=0.05) -> DataFrame``
    Per guardian (and all guardians pooled) and per slice (all cases, each language, hard negatives
    alone): detection rate and false-positive rate with exact Clopper–Pearson intervals
    (:func:`tsglab.stats.clopper_pearson_limits`), latency per check P50/P95 with the Harrell–Davis
    bootstrap intervals of :func:`tsglab.stats.quantile_ci`.
``claims_check(table, claims, *, alpha=0.05) -> DataFrame``
    ``supported`` / ``refuted`` / ``cannot decide at this n`` for each claim and guardian, with the n
    that would decide it (:func:`tsglab.stats.exact_bound_n_needed`) and one sentence.
``write_enforcement(out, table, checks)``
    The two tables as LaTeX, HTML and Markdown through :mod:`tsglab.report.publish`.

The claims check is a pair of one-sided tests at level ``alpha`` on each claim: "supported" when the
one-sided (1 − α) bound lies on the claim's side, "refuted" when the opposite one-sided bound lies on
the other side. When the truth equals the claim each wrong answer happens at most α of the time
(``benchmarks/bench_enforcement.py`` measures it). The table prints two-sided (1 − α) intervals; the
check's bounds are the one-sided ones, printed in its own table.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsglab.config.guard import CLAIM_NAMES
from tsglab.errors import DegenerateStatisticWarning, InvalidArgument
from tsglab.stats import QuantileCI, clopper_pearson, clopper_pearson_limits, exact_bound_n_needed, quantile_ci
from tsglab.stats.quantile_inference import MIN_TAIL_COUNT

__all__ = [
    "ALL",
    "CLAIMS",
    "CLAIMS_COLUMNS",
    "DECISIONS",
    "ENERGY_CLAIM",
    "ENERGY_CLAIM_NOTE",
    "HARD_NEGATIVES",
    "MIN_ENERGY_REQUESTS",
    "OUTCOME_COLUMNS",
    "TABLE_COLUMNS",
    "claims_check",
    "claims_note",
    "enforcement_note",
    "enforcement_table",
    "evaluate_guardians",
    "latency_quantiles",
    "percent",
    "write_enforcement",
]

#: the pooled guardian's name and the slice of every case
ALL = "all"
#: the slice of benign cases that look like violations (PII-shaped numbers, code in prose)
HARD_NEGATIVES = "hard negatives"
#: claim name -> (what it bounds, the side it must lie on); the names are the spec's
#: (:data:`tsglab.config.guard.CLAIM_NAMES`), so a claim a spec may state is one the report checks
CLAIMS: dict[str, str] = dict(zip(CLAIM_NAMES, (
    "detection rate at least the claim",
    "false-positive rate at most the claim",
    "P95 latency per check below the claim (ms)",
    "measured mWh per 1k tokens at most the claim (per arm)",
), strict=True))
#: why an energy claim is an upper limit, printed under the claims check
ENERGY_CLAIM_NOTE = (
    "An energy claim 'X mWh per 1k tokens' is read as 'at most X' (an efficiency claim: using less is "
    "better): supported when the one-sided upper bound of the measured mWh/1k tokens (percentile bootstrap "
    "over requests) is below X, refuted when the one-sided lower bound is above X — a measurement entirely "
    "below X does not refute it, it beats it — and 'cannot decide' otherwise or when no meter measured the arm.")
DECISIONS = ("supported", "refuted", "cannot decide at this n")
#: the claim checked on the run's arms (their measured energy), not on the guardian table
ENERGY_CLAIM = "energy_mwh_per_1k_tokens"

OUTCOME_COLUMNS: dict[str, str] = {
    "guardian": "the guardian that checked the case (the case's own)",
    "case_id": "the labelled case",
    "lang": "the case's language",
    "category": "the case's category (what it violates, or what a hard negative imitates)",
    "violation": "label: the text violates the guardian's rule",
    "hard_negative": "label: a benign text built to look like a violation",
    "detected": "the guardian's verdict (violated)",
    "latency_ms": "mean time of one check over the repeats (perf_counter_ns), the warm-up call excluded",
    "repeats": "timed checks per case",
}

TABLE_COLUMNS: dict[str, str] = {
    "guardian": f"guardian; '{ALL}' pools every guardian's own cases",
    "slice": f"'{ALL}' cases, one language, or '{HARD_NEGATIVES}' (benign cases only)",
    "n_violating": "violating cases",
    "detected": "violating cases the guardian flagged",
    "detection_rate": "detected / n_violating, with its two-sided exact (Clopper–Pearson) interval",
    "n_benign": "benign cases (hard negatives included)",
    "false_positives": "benign cases the guardian flagged",
    "fpr": "false_positives / n_benign, with its two-sided exact (Clopper–Pearson) interval",
    "n_checks": "timed cases (each the mean of `repeats` checks)",
    "p50_ms": "median added latency per check, Harrell–Davis, bootstrap interval (tsglab.stats.quantile_ci)",
    "p95_ms": "95th percentile of the added latency per check, same estimator and interval",
    "p95_bound_low_ms": "one-sided (1 − α) lower bound of the P95 (the claims check refutes with it)",
    "p95_bound_high_ms": "one-sided (1 − α) upper bound of the P95 (the claims check supports with it)",
    "alpha": "1 − the intervals' confidence",
}

CLAIMS_COLUMNS: dict[str, str] = {
    "guardian": "the guardian the claim is checked on",
    "claim": "the claim as checked (its side and value)",
    "measured": "the estimate and the cases it rests on",
    "bound": "the one-sided (1 − α) bound that decides 'supported'",
    "decision": "supported / refuted / cannot decide at this n",
    "n_needed": "cases needed for 'supported' if the observed rate held (violating cases for detection, "
                "benign for the FPR, checks for latency: approximate); empty when no n suffices",
    "sentence": "the decision in one sentence",
}

_RESAMPLES = 2000
# a latency claim is decided only when MIN_TAIL_COUNT checks lie above the P95 (tsglab.stats' rule for
# a bootstrapped P95: with fewer the bootstrap resamples the sample maximum and its bound is too low)
_MIN_LATENCY_CHECKS = math.ceil(MIN_TAIL_COUNT / (1 - 0.95))
#: the fewest measured requests an energy claim is decided on (the percentile bootstrap of a ratio of sums
#: under-covers below about 100: at 30 a claim equal to the truth is decided 15 % of the time, not 10 %;
#: benchmarks/results/enforcement_calibration.md)
MIN_ENERGY_REQUESTS = 100


# -------------------------------------------------------------------------------------------------- evaluation


def _case_field(case: Any, name: str, index: int) -> Any:
    try:
        return getattr(case, name)
    except AttributeError:
        raise InvalidArgument(f"case {index} has no `{name}`; got {type(case).__name__}. Pass EnforcementCase "
                              "objects (tsglab.suite.enforcement.load_enforcement_suite()).") from None


def evaluate_guardians(cases: Iterable[Any], guardians: Mapping[str, Any], *, repeats: int = 20) -> pd.DataFrame:
    """Run each labelled case through its own guardian and time the check.

    Parameters
    ----------
    cases : iterable of EnforcementCase
        Labelled cases (``id``, ``guardian``, ``lang``, ``violation``, ``hard_negative``, ``category``,
        ``text``); each is checked by ``guardians[case.guardian]`` only.
    guardians : mapping of name to guardian
        Objects with ``check(text)`` returning a verdict with a boolean ``violated``.
    repeats : int, default 20
        Timed checks per case. One untimed check comes first (its verdict is the one recorded, and it
        warms compiled patterns); the case's latency is the mean of the ``repeats`` timed ones, measured
        as one ``perf_counter_ns`` span so the timer's resolution is divided by ``repeats``.

    Returns
    -------
    DataFrame
        One row per case, columns :data:`OUTCOME_COLUMNS`, in the order of ``cases``.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise InvalidArgument(f"`repeats` must be an integer >= 1; got {repeats!r}. Use e.g. repeats=20.")
    rows = []
    for index, case in enumerate(cases):
        name = _case_field(case, "guardian", index)
        if name not in guardians:
            raise InvalidArgument(f"case {_case_field(case, 'id', index)!r} names guardian {name!r}, which is not "
                                  f"in `guardians` (have: {', '.join(sorted(guardians)) or 'none'}). Pass the "
                                  "guardian or leave its cases out.")
        guardian = guardians[name]
        text = _case_field(case, "text", index)
        detected = bool(guardian.check(text).violated)
        started = time.perf_counter_ns()
        for _ in range(repeats):
            guardian.check(text)
        elapsed_ns = time.perf_counter_ns() - started
        rows.append({"guardian": name, "case_id": _case_field(case, "id", index),
                     "lang": _case_field(case, "lang", index), "category": _case_field(case, "category", index),
                     "violation": bool(_case_field(case, "violation", index)),
                     "hard_negative": bool(_case_field(case, "hard_negative", index)),
                     "detected": detected, "latency_ms": elapsed_ns / repeats / 1e6, "repeats": repeats})
    return pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))


# -------------------------------------------------------------------------------------------------- the table


def _check_alpha(alpha: object) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 0.5:
        raise InvalidArgument(f"`alpha` must be a number in (0, 0.5); got {alpha!r}. Use e.g. alpha=0.05.")
    return float(alpha)


def _validate_outcomes(outcomes: object) -> pd.DataFrame:
    if not isinstance(outcomes, pd.DataFrame):
        raise InvalidArgument(f"`outcomes` must be a DataFrame; got {type(outcomes).__name__}. "
                              "Pass evaluate_guardians(cases, guardians).")
    needed = ("guardian", "lang", "violation", "hard_negative", "detected")
    missing = [c for c in needed if c not in outcomes]
    if missing:
        raise InvalidArgument(f"`outcomes` lacks the columns {', '.join(missing)}. Pass evaluate_guardians(...)'s "
                              "frame.")
    both = outcomes["violation"].astype(bool) & outcomes["hard_negative"].astype(bool)
    if both.any():
        first = outcomes.loc[both].iloc[0]
        raise InvalidArgument(f"a hard negative is benign by definition, but case {first.get('case_id', '?')!r} "
                              "is labelled violation and hard_negative. Fix its label in the suite.")
    return outcomes


def _latency_columns(latencies: np.ndarray, alpha: float, seed: int) -> dict[str, float]:
    nan = math.nan
    values = latencies[np.isfinite(latencies)]
    row = {"n_checks": int(values.size)}
    keys = ("p50_ms", "p50_ci_low", "p50_ci_high", "p95_ms", "p95_ci_low", "p95_ci_high",
            "p95_bound_low_ms", "p95_bound_high_ms")
    if values.size < 2:  # quantile_ci needs two observations; the table says so in its note
        return row | dict.fromkeys(keys, nan)
    # iid resampling: each value is one case's text, a sample of texts, and the suite's order (cases
    # grouped by kind) is no time series; a serial-correlation test would mistake that grouping for one
    def interval(q: float, confidence: float) -> QuantileCI:
        return quantile_ci(values, q, confidence=confidence, resampling="iid", n_resamples=_RESAMPLES, seed=seed)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateStatisticWarning)
        p50, p95 = interval(0.5, 1 - alpha), interval(0.95, 1 - alpha)
        # the ends of the two-sided (1 - 2 alpha) interval are the one-sided (1 - alpha) bounds
        one_sided = interval(0.95, 1 - 2 * alpha)
    return row | {"p50_ms": p50.estimate, "p50_ci_low": p50.ci_low, "p50_ci_high": p50.ci_high,
                  "p95_ms": p95.estimate, "p95_ci_low": p95.ci_low, "p95_ci_high": p95.ci_high,
                  "p95_bound_low_ms": one_sided.ci_low, "p95_bound_high_ms": one_sided.ci_high}


def latency_quantiles(latencies: np.ndarray, *, alpha: float = 0.05, seed: int = 0) -> dict[str, float]:
    """The table's latency columns for any latencies (ms): ``n_checks``, ``p50_ms`` / ``p95_ms`` with
    two-sided (1 − α) Harrell–Davis bootstrap limits (``p50_ci_low`` …) and the P95's one-sided bounds
    (``p95_bound_low_ms`` / ``p95_bound_high_ms``); NaN below two values. The run report's guard
    latencies use it too (:mod:`tsglab.report.enforcement_run`)."""
    return _latency_columns(np.asarray(latencies, dtype=np.float64), _check_alpha(alpha), seed)


def percent(value: float) -> str:
    """A rate as the claims check prints it (``99.75 %``, ``0.0987 %``, ``—`` when not finite)."""
    return _pct(value)


def _slices(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    parts = [(ALL, frame)]
    parts += [(str(lang), part) for lang, part in frame.groupby("lang", sort=True)]
    hard = frame[frame["hard_negative"].astype(bool)]
    if len(hard):
        parts.append((HARD_NEGATIVES, hard))
    return parts


def enforcement_table(outcomes: pd.DataFrame, *, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    r"""Detection and false-positive rates with exact intervals and latency per check, per guardian.

    Parameters
    ----------
    outcomes : DataFrame
        :func:`evaluate_guardians`' frame (a frame without ``latency_ms``, or with NaN there, gives
        empty latency columns: a table of counts alone).
    alpha : float, default 0.05
        The intervals are two-sided at :math:`1-\alpha`; the one-sided P95 bounds at :math:`1-\alpha`.
    seed : int, default 0
        Seed of the latency bootstraps.

    Returns
    -------
    DataFrame
        One row per guardian (in order of first appearance, then ``'all'`` pooled) × slice (``'all'``,
        each language, ``'hard negatives'``), columns :data:`TABLE_COLUMNS` with ``_ci_low`` /
        ``_ci_high`` beside each rate and quantile, and ``note``.

    Notes
    -----
    Rates: :math:`x` flagged among :math:`n` cases, Clopper–Pearson limits
    :math:`B^{-1}(\alpha/2;\,x,\,n-x+1)` and :math:`B^{-1}(1-\alpha/2;\,x+1,\,n-x)`
    (:func:`tsglab.stats.clopper_pearson_limits`); a row without cases of a kind has NaN there.
    Latency: :func:`tsglab.stats.quantile_ci` (Harrell–Davis, percentile bootstrap over cases: iid,
    because the cases are a sample of texts and their order in the suite is not a time series).
    """
    alpha_f = _check_alpha(alpha)
    frame = _validate_outcomes(outcomes)
    latency = frame["latency_ms"] if "latency_ms" in frame else pd.Series(np.nan, index=frame.index)
    frame = frame.assign(latency_ms=pd.to_numeric(latency, errors="coerce"))
    rows = []
    for name, own in [*frame.groupby("guardian", sort=False), (ALL, frame)]:
        for slice_name, part in _slices(own):
            violating = part["violation"].astype(bool).to_numpy()
            flagged = part["detected"].astype(bool).to_numpy()
            notes = []
            if not violating.any():
                notes.append("no violating case: no detection rate")
            if violating.all():
                notes.append("no benign case: no false-positive rate")
            row: dict[str, Any] = {"guardian": name, "slice": slice_name,
                                   "n_violating": int(violating.sum()), "detected": int((violating & flagged).sum()),
                                   "n_benign": int((~violating).sum()),
                                   "false_positives": int((~violating & flagged).sum())}
            row |= _latency_columns(part["latency_ms"].to_numpy(dtype=np.float64), alpha_f, seed)
            if row["n_checks"] < 2:
                notes.append("fewer than 2 timed checks: no latency quantiles")
            row["alpha"] = alpha_f
            row["note"] = "; ".join(notes)
            rows.append(row)
    table = pd.DataFrame(rows)
    for rate, count, n in (("detection_rate", "detected", "n_violating"), ("fpr", "false_positives", "n_benign")):
        limits = clopper_pearson_limits(table[count].to_numpy(), table[n].to_numpy(), confidence=1 - alpha_f)
        table[rate], table[f"{rate}_ci_low"], table[f"{rate}_ci_high"] = limits.estimate, limits.ci_low, limits.ci_high
    order = ["guardian", "slice", "n_violating", "detected", "detection_rate", "detection_rate_ci_low",
             "detection_rate_ci_high", "n_benign", "false_positives", "fpr", "fpr_ci_low", "fpr_ci_high", "n_checks",
             "p50_ms", "p50_ci_low", "p50_ci_high", "p95_ms", "p95_ci_low", "p95_ci_high", "p95_bound_low_ms",
             "p95_bound_high_ms", "alpha", "note"]
    return table[order]


def enforcement_note(alpha: float = 0.05) -> str:
    """The note printed under the enforcement table: what its intervals are."""
    level = f"{(1 - alpha) * 100:g} %"
    return (f"Rates with two-sided {level} exact (Clopper–Pearson) intervals; latency per check in ms, "
            f"Harrell–Davis P50/P95 with {level} bootstrap intervals. Each case is checked by its own guardian; "
            f"'{ALL}' pools the guardians. Hard negatives are benign cases built to look like violations.")


# -------------------------------------------------------------------------------------------------- claims


def _normalise_claims(claims: object, guardians: list[str]) -> list[tuple[str, str, float]]:
    """``[(claim, guardian, value)]``: a number applies to every guardian row and the pooled one."""
    if not isinstance(claims, Mapping) or not claims:
        raise InvalidArgument(f"`claims` must be a non-empty mapping like {{'guardian_fpr': 0.001}}; got {claims!r}.")
    out = []
    for claim, value in claims.items():
        if claim not in CLAIMS:
            raise InvalidArgument(f"unknown claim {claim!r}; use one of {', '.join(CLAIMS)}.")
        if claim == ENERGY_CLAIM:  # checked on the arms' energy (_energy_claims)
            continue
        per_guardian = value if isinstance(value, Mapping) else dict.fromkeys(guardians, value)
        for guardian, number in per_guardian.items():
            if guardian not in guardians:
                raise InvalidArgument(f"claim {claim!r} names guardian {guardian!r}, which is not in the table "
                                      f"(have: {', '.join(guardians)}).")
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise InvalidArgument(f"claim {claim!r} for {guardian!r} must be a number; got {number!r}.")
            if claim == "guardian_latency_ms":
                if number <= 0:
                    raise InvalidArgument(f"claim {claim!r} must be > 0 ms; got {number!r}.")
            elif not 0.0 < number < 1.0:
                raise InvalidArgument(f"claim {claim!r} is a proportion in (0, 1); got {number!r}. Write 99.8 % "
                                      "as 0.998.")
            out.append((claim, str(guardian), float(number)))
    return out


def _pct(value: float) -> str:
    """A rate as a percentage with enough digits to compare with a claim (99.75 %, 0.0987 %)."""
    if not math.isfinite(value):
        return "—"
    percent = 100.0 * value
    if percent >= 10.0:
        return f"{percent:.2f} %"
    return "0 %" if percent == 0.0 else f"{percent:.3g} %"


def _ms(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3g} ms"


def _rate_claim(row: pd.Series, claim: str, value: float, alpha: float) -> dict[str, Any]:
    detection = claim == "guardian_detection"
    count, n = (int(row["detected"]), int(row["n_violating"])) if detection else \
        (int(row["false_positives"]), int(row["n_benign"]))
    what, cases = ("detection", "violating cases") if detection else ("FPR", "benign cases")
    shown = f"{what} {'≥' if detection else '≤'} {_pct(value)}"
    level = f"{(1 - alpha) * 100:g} %"
    if n == 0:
        return {"claim": shown, "estimate": math.nan, "bound": math.nan, "n": 0, "measured": f"no {cases}",
                "decision": DECISIONS[2], "n_needed": None,
                "sentence": f"Cannot decide: there are no {cases} to measure the {what} on."}
    lower = clopper_pearson(count, n, confidence=1 - alpha, alternative="greater").ci_low
    upper = clopper_pearson(count, n, confidence=1 - alpha, alternative="less").ci_high
    rate = count / n
    # detection must sit above the claim: supported by its lower bound, refuted by its upper; FPR the mirror
    deciding, opposing = (lower, upper) if detection else (upper, lower)
    measured = f"{_pct(rate)} ({count}/{n})"
    bound_text = f"one-sided {level} {'lower' if detection else 'upper'} bound {_pct(deciding)}"
    base = {"claim": shown, "estimate": rate, "bound": deciding, "n": n, "measured": measured}
    if (detection and lower >= value) or (not detection and upper <= value):
        return base | {"decision": DECISIONS[0], "n_needed": None,
                       "sentence": f"Supported: {what} {measured}, {bound_text} clears the claimed {_pct(value)}."}
    if (detection and upper < value) or (not detection and lower > value):
        other = f"one-sided {level} {'upper' if detection else 'lower'} bound {_pct(opposing)}"
        return base | {"decision": DECISIONS[1], "n_needed": None,
                       "sentence": f"Refuted: {what} {measured}, {other} lies on the wrong side of the claimed "
                                   f"{_pct(value)}."}
    needed = exact_bound_n_needed(rate, value, alpha=alpha, bound="lower" if detection else "upper")
    if needed is None:
        refute_at = exact_bound_n_needed(rate, value, alpha=alpha, bound="upper" if detection else "lower") \
            if rate != value else None
        tail = f"; if the rate held, about {refute_at:,} {cases} would refute it" if refute_at else ""
        sentence = (f"Cannot decide at this n, and no n suffices to support it: the observed {what} {measured} is "
                    f"{'at' if rate == value else 'on the wrong side of'} the claimed {_pct(value)} and the "
                    f"interval covers the claim only by chance{tail}.")
    else:
        sentence = (f"Cannot decide at n = {n:,}: {what} {measured}, {bound_text} does not clear {_pct(value)}; "
                    f"about {needed:,} {cases} would, if the observed rate held"
                    + (f" (with no {'miss' if detection else 'false positive'})." if count in (0, n) and
                       rate in (0.0, 1.0) else "."))
    return base | {"decision": DECISIONS[2], "n_needed": needed, "sentence": sentence}


def _latency_claim(row: pd.Series, value: float, alpha: float) -> dict[str, Any]:
    p95, low, high, n = (float(row["p95_ms"]), float(row["p95_bound_low_ms"]), float(row["p95_bound_high_ms"]),
                         int(row["n_checks"]))
    level = f"{(1 - alpha) * 100:g} %"
    base = {"claim": f"P95 per check < {_ms(value)}", "estimate": p95, "bound": high, "n": n,
            "measured": f"P95 {_ms(p95)} ({n} checks)"}
    if not (math.isfinite(p95) and math.isfinite(low)):
        return base | {"decision": DECISIONS[2], "n_needed": None,
                       "sentence": f"Cannot decide: no latency interval ({n} timed checks)."}
    if n < _MIN_LATENCY_CHECKS:
        return base | {"decision": DECISIONS[2], "n_needed": _MIN_LATENCY_CHECKS,
                       "sentence": f"Cannot decide at n = {n}: a bootstrap bound of the P95 needs at least "
                                   f"{_MIN_LATENCY_CHECKS} checks ({MIN_TAIL_COUNT} above the P95); below that it "
                                   "resamples the few largest values and does not hold its level."}
    if math.isfinite(high) and high < value:
        return base | {"decision": DECISIONS[0], "n_needed": None,
                       "sentence": f"Supported: P95 {_ms(p95)}, one-sided {level} upper bound {_ms(high)} is below "
                                   f"the claimed {_ms(value)}."}
    if low > value:
        return base | {"decision": DECISIONS[1], "n_needed": None,
                       "sentence": f"Refuted: P95 {_ms(p95)}, one-sided {level} lower bound {_ms(low)} is above the "
                                   f"claimed {_ms(value)}."}
    if p95 >= value or not math.isfinite(high):
        return base | {"decision": DECISIONS[2], "n_needed": None,
                       "sentence": f"Cannot decide at this n, and no n suffices to support it: the P95 {_ms(p95)} "
                                   f"is not below the claimed {_ms(value)}."}
    # the interval's half-width shrinks as 1/sqrt(n): a rough guide, not an exact n
    needed = math.ceil(n * ((high - p95) / (value - p95)) ** 2)
    return base | {"decision": DECISIONS[2], "n_needed": needed,
                   "sentence": f"Cannot decide at n = {n:,}: P95 {_ms(p95)}, one-sided {level} upper bound "
                               f"{_ms(high)} is not below {_ms(value)}; roughly {needed:,} checks would be, if "
                               "the spread held."}


def _num(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g}"


def _mwh(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.4g} mWh/1k tok"


def _energy_claim(row: pd.Series, value: float, alpha: float) -> dict[str, Any]:
    """An energy claim is an upper limit (ENERGY_CLAIM_NOTE): supported by the upper bound, refuted by the lower."""
    estimate, low, high = (float(row.get(k, math.nan)) for k in ("mwh_per_1k_tokens", "mwh_bound_low",
                                                                  "mwh_bound_high"))
    n = int(row.get("n_energy", 0) or 0)
    level = f"{(1 - alpha) * 100:g} %"
    base = {"claim": f"≤ {_mwh(value)}", "estimate": estimate, "bound": high, "n": n,
            "measured": f"{_num(estimate)} ({n} req.)"}
    if n == 0 or not math.isfinite(estimate):
        why = str(row.get("note") or "no energy measured")
        return base | {"decision": DECISIONS[2], "n_needed": None,
                       "sentence": f"Cannot decide: no measured energy on this arm ({why})."}
    if n < MIN_ENERGY_REQUESTS or not (math.isfinite(low) and math.isfinite(high)):
        return base | {"decision": DECISIONS[2], "n_needed": MIN_ENERGY_REQUESTS,
                       "sentence": f"Cannot decide at n = {n}: a bootstrap bound needs at least "
                                   f"{MIN_ENERGY_REQUESTS} measured requests to hold its level "
                                   "(benchmarks/calibrate_enforcement.py)."}
    if high < value:
        return base | {"decision": DECISIONS[0], "n_needed": None,
                       "sentence": f"Supported: {_mwh(estimate)}, one-sided {level} upper bound {_mwh(high)} is "
                                   f"below the claimed {_mwh(value)}."}
    if low > value:
        return base | {"decision": DECISIONS[1], "n_needed": None,
                       "sentence": f"Refuted: {_mwh(estimate)}, one-sided {level} lower bound {_mwh(low)} is above "
                                   f"the claimed {_mwh(value)}."}
    if estimate >= value:
        return base | {"decision": DECISIONS[2], "n_needed": None,
                       "sentence": f"Cannot decide at this n, and no n suffices to support it: the measured "
                                   f"{_mwh(estimate)} is not below the claimed {_mwh(value)}."}
    # the bound's distance from the estimate shrinks as 1/sqrt(n): a rough guide, not an exact n
    needed = max(n + 1, math.ceil(n * ((high - estimate) / (value - estimate)) ** 2))
    return base | {"decision": DECISIONS[2], "n_needed": needed,
                   "sentence": f"Cannot decide at n = {n:,}: {_mwh(estimate)}, one-sided {level} upper bound "
                               f"{_mwh(high)} is not below {_mwh(value)}; roughly {needed:,} measured requests "
                               "would be, if the spread held."}


def _energy_claims(energy: pd.DataFrame | None, value: object, alpha: float) -> list[dict[str, Any]]:
    if energy is None or not isinstance(energy, pd.DataFrame) or "arm" not in energy:
        raise InvalidArgument(f"claim {ENERGY_CLAIM!r} is checked on the run's arms; pass energy=<the report's "
                              "enforcement_arms table> (tsglab.report.enforcement_run.enforcement_arm_table).")
    if "alpha" in energy and len(energy) and not math.isclose(float(energy["alpha"].iloc[0]), alpha):
        raise InvalidArgument(f"the energy bounds are at alpha={float(energy['alpha'].iloc[0]):g}, the check asks "
                              f"for alpha={alpha:g}. Build the arm table with the same alpha.")
    arms = energy.set_index("arm", drop=False)
    per_arm = value if isinstance(value, Mapping) else dict.fromkeys(arms.index, value)
    out = []
    for arm, number in per_arm.items():
        if arm not in arms.index:
            raise InvalidArgument(f"claim {ENERGY_CLAIM!r} names arm {arm!r}, which is not in the run (arms: "
                                  f"{', '.join(map(str, arms.index))}).")
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) \
                or number <= 0:
            raise InvalidArgument(f"claim {ENERGY_CLAIM!r} for arm {arm!r} must be a number > 0 (mWh per 1k "
                                  f"tokens); got {number!r}.")
        result = _energy_claim(arms.loc[arm], float(number), alpha)
        out.append({"guardian": f"arm {arm}", "claim_key": ENERGY_CLAIM, "claimed": float(number), **result,
                    "bound_shown": _num(result["bound"]), "alpha": alpha})
    return out


def claims_check(table: pd.DataFrame, claims: Mapping[str, float | Mapping[str, float]], *,
                 alpha: float = 0.05, energy: pd.DataFrame | None = None) -> pd.DataFrame:
    r"""Say for each claim and guardian whether the data support it, refute it, or cannot decide.

    Parameters
    ----------
    table : DataFrame
        :func:`enforcement_table`'s frame; the rows of slice ``'all'`` are checked.
    claims : mapping
        ``{"guardian_detection": 0.998, "guardian_fpr": 0.001, "guardian_latency_ms": 10}``: a number
        applies to every guardian and to the pooled ``'all'`` row; a mapping ``{guardian: number}`` to
        the guardians it names.
    alpha : float, default 0.05
        Level of each one-sided test. Latency claims use the table's P95 bounds, so the table must have
        been built with the same ``alpha``.
    energy : DataFrame, optional
        The run's per-arm table (:func:`tsglab.report.enforcement_run.enforcement_arm_table`), needed
        for ``energy_mwh_per_1k_tokens`` (a number applies to every arm, a mapping to the arms it names).

    Returns
    -------
    DataFrame
        One row per (claim, guardian): :data:`CLAIMS_COLUMNS` plus ``claim_key``, ``claimed``,
        ``estimate``, ``n``, ``alpha``.

    Notes
    -----
    A detection claim :math:`d` is *supported* when the one-sided :math:`1-\alpha` Clopper–Pearson
    lower bound is :math:`\ge d`, *refuted* when the one-sided upper bound is :math:`< d`; an FPR claim
    :math:`f` mirrors this (upper bound :math:`\le f` supports, lower bound :math:`> f` refutes); a
    latency claim :math:`t` is supported when the P95's one-sided upper bound is :math:`< t` and
    refuted when its lower bound is :math:`> t`. When the truth equals the claim each wrong decision has
    probability at most :math:`\alpha` (exact for rates; for latency as calibrated for
    :func:`tsglab.stats.quantile_ci`). Otherwise the answer is "cannot decide at this n" with
    ``n_needed`` from :func:`tsglab.stats.exact_bound_n_needed` (with zero failures
    :math:`\lceil\ln\alpha/\ln(1-f)\rceil`), or no n when the observed rate is not on the claim's side.
    An energy claim :math:`e` (mWh per 1k tokens) is an upper limit (:data:`ENERGY_CLAIM_NOTE`):
    supported when the one-sided upper bound of the arm's measured figure is :math:`< e`, refuted when
    its lower bound is :math:`> e` (percentile bootstrap; calibrated in
    ``benchmarks/calibrate_enforcement.py``); fewer than :data:`MIN_ENERGY_REQUESTS` measured requests
    cannot decide.
    """
    alpha_f = _check_alpha(alpha)
    if not isinstance(claims, Mapping) or not claims:
        raise InvalidArgument(f"`claims` must be a non-empty mapping like {{'guardian_fpr': 0.001}}; got {claims!r}.")
    energy_rows = _energy_claims(energy, claims[ENERGY_CLAIM], alpha_f) if ENERGY_CLAIM in claims else []
    if not [c for c in claims if c != ENERGY_CLAIM]:
        return _claims_frame(energy_rows)
    if not isinstance(table, pd.DataFrame) or not {"guardian", "slice", "n_benign"} <= set(table.columns):
        raise InvalidArgument("`table` must be enforcement_table(...)'s frame; got "
                              f"{type(table).__name__}. Build it with enforcement_table(outcomes).")
    rows_all = table[table["slice"] == ALL].set_index("guardian", drop=False)
    wanted = _normalise_claims(claims, [str(g) for g in rows_all.index])
    table_alpha = float(table["alpha"].iloc[0]) if "alpha" in table and len(table) else alpha_f
    if any(c == "guardian_latency_ms" for c, _, _ in wanted) and not math.isclose(table_alpha, alpha_f):
        raise InvalidArgument(f"the table's latency bounds are at alpha={table_alpha:g}, the check asks for "
                              f"alpha={alpha_f:g}. Build the table with enforcement_table(outcomes, "
                              f"alpha={alpha_f:g}).")
    out = []
    for claim, guardian, value in wanted:
        row = rows_all.loc[guardian]
        result = _latency_claim(row, value, alpha_f) if claim == "guardian_latency_ms" else \
            _rate_claim(row, claim, value, alpha_f)
        bound = result["bound"]
        out.append({"guardian": guardian, "claim_key": claim, "claimed": value, **result,
                    "bound_shown": (_ms(bound) if claim == "guardian_latency_ms" else _pct(bound)),
                    "alpha": alpha_f})
    return _claims_frame(out + energy_rows)


def _claims_frame(out: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(out)
    frame["n_needed"] = frame["n_needed"].astype("Int64")
    frame = frame.rename(columns={"bound": "bound_value", "bound_shown": "bound"})
    return frame[["guardian", "claim", "measured", "bound", "decision", "n_needed", "sentence", "claim_key",
                  "claimed", "estimate", "bound_value", "n", "alpha"]]


def claims_note(alpha: float = 0.05) -> str:
    """The note printed under the claims check."""
    return (f"Each claim is a pair of one-sided tests at α = {alpha:g}: 'supported' when the one-sided "
            f"{(1 - alpha) * 100:g} % bound lies on the claim's side, 'refuted' when the opposite bound lies on "
            "the other side, otherwise 'cannot decide at this n' with the cases needed if the observed rate held "
            "(latency: a rough guide, the interval narrowing as one over the square root of n).")


def write_enforcement(out: Path | str, table: pd.DataFrame, checks: pd.DataFrame | None = None, *,
                      label_prefix: str = "tab") -> list[Path]:
    """Write ``enforcement`` (and ``claims``) as ``.tex``/``.narrow.tex``/``.html``/``.md`` into ``out``
    with :func:`tsglab.report.publish.write_tables`; returns the files written."""
    from tsglab.report.publish import write_tables

    alpha = float(table["alpha"].iloc[0]) if len(table) else 0.05
    tables = {"enforcement": ("Guardians: detection, false positives and added latency", table)}
    notes = {"enforcement": enforcement_note(alpha)}
    if checks is not None:
        tables["claims"] = ("Claims check", checks)
        notes["claims"] = claims_note(alpha)
    return write_tables(Path(out), tables, notes=notes, label_prefix=label_prefix)
