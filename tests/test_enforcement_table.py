"""Tests of tsglab.report.enforcement: counts against a direct count, exact intervals against scipy,
latency intervals from tsglab.stats.quantile_ci, the claims check's decisions on constructed counts
(supported / refuted / cannot decide with the n needed, zero failures, no n suffices), a small Monte
Carlo of its error rate at the claim (and a broken check that this Monte Carlo catches), publication,
and every error message."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import tsglab.report.enforcement as enforcement
from tsglab.errors import InvalidArgument
from tsglab.policy.guardians import GuardVerdict
from tsglab.report.enforcement import (
    ALL,
    HARD_NEGATIVES,
    OUTCOME_COLUMNS,
    TABLE_COLUMNS,
    claims_check,
    claims_note,
    enforcement_note,
    enforcement_table,
    evaluate_guardians,
    write_enforcement,
)
from tsglab.report.publish import to_latex, to_markdown
from tsglab.stats import BinomialCI, quantile_ci
from tsglab.suite.enforcement import EnforcementCase

# ------------------------------------------------------------------------------------------- fakes


class KeywordGuardian:
    """Flags a text holding ``word``; counts its calls."""

    def __init__(self, name: str, word: str) -> None:
        self.name, self.word, self.calls = name, word, 0

    def check(self, text: str) -> GuardVerdict:
        self.calls += 1
        return GuardVerdict(self.name, self.word in text, "", ())


def case(*fields) -> EnforcementCase:
    """A labelled case with no note (id, guardian, lang, violation, hard_negative, category, text)."""
    return EnforcementCase(*fields, note="")


def hand_made_cases() -> list[EnforcementCase]:
    """Violating texts hold the keyword unless marked as a miss; benign ones lack it unless a false alarm."""
    cases = []
    for i in range(40):
        lang = "en" if i % 2 else "zh"
        miss = i in (3, 17)  # two violating texts the keyword guardian cannot see
        cases.append(case(f"s{i}", "secret", lang, True, False, "key", "nothing" if miss else f"token SECRET {i}"))
    for i in range(60):
        hard = i % 3 == 0
        alarm = i in (0, 9)  # two hard negatives that mention the keyword
        cases.append(case(f"b{i}", "secret", "en" if i % 2 else "zh", False, hard, "prose",
                          "the word SECRET in prose" if alarm else f"plain text {i}"))
    cases += [case(f"q{i}", "sql", "en", i < 10, False, "drop", "DROP TABLE t" if i < 10 else "SELECT 1")
              for i in range(30)]
    return cases


def fake_guardians() -> dict[str, KeywordGuardian]:
    return {"secret": KeywordGuardian("secret", "SECRET"), "sql": KeywordGuardian("sql", "DROP")}


def outcomes_from_counts(rows: list[tuple[str, int, int, int, int]], *, latency: float | None = None,
                         seed: int = 0) -> pd.DataFrame:
    """Outcomes with given ``(guardian, n_violating, detected, n_benign, false_positives)`` per guardian."""
    rng = np.random.default_rng(seed)
    records = []
    for guardian, n_viol, detected, n_benign, false_pos in rows:
        for violation, n, flagged in ((True, n_viol, detected), (False, n_benign, false_pos)):
            records += [{"guardian": guardian, "case_id": f"{guardian}-{violation}-{i}", "lang": "en",
                         "category": "c", "violation": violation, "hard_negative": False, "detected": i < flagged}
                        for i in range(n)]
    frame = pd.DataFrame(records)
    frame["latency_ms"] = np.nan if latency is None else rng.gamma(4.0, latency / 4.0, size=len(frame))
    frame["repeats"] = 1
    return frame


@pytest.fixture(scope="module")
def evaluated() -> pd.DataFrame:
    return evaluate_guardians(hand_made_cases(), fake_guardians(), repeats=5)


@pytest.fixture(scope="module")
def table(evaluated) -> pd.DataFrame:
    return enforcement_table(evaluated)


# ------------------------------------------------------------------------------------------- evaluation


def test_evaluate_guardians_records_each_case_once_with_its_own_guardian():
    cases, guardians = hand_made_cases(), fake_guardians()
    outcomes = evaluate_guardians(cases, guardians, repeats=7)
    assert list(outcomes.columns) == list(OUTCOME_COLUMNS)
    assert list(outcomes["case_id"]) == [c.id for c in cases]
    # one untimed check (the verdict) + 7 timed ones per case, each by its own guardian
    assert guardians["secret"].calls == 8 * sum(c.guardian == "secret" for c in cases)
    assert guardians["sql"].calls == 8 * sum(c.guardian == "sql" for c in cases)
    expected = ["SECRET" in c.text if c.guardian == "secret" else "DROP" in c.text for c in cases]
    assert outcomes["detected"].tolist() == expected
    assert (outcomes["latency_ms"] > 0).all()
    assert (outcomes["repeats"] == 7).all()


def test_latency_is_the_mean_of_the_timed_repeats(monkeypatch):
    ticks = iter(range(0, 10**9, 1_000_000))  # each perf_counter_ns call advances 1 ms
    monkeypatch.setattr(enforcement.time, "perf_counter_ns", lambda: next(ticks))
    outcomes = evaluate_guardians(hand_made_cases()[:3], fake_guardians(), repeats=4)
    # start and end are consecutive calls: a 1 ms span over 4 repeats
    assert outcomes["latency_ms"].tolist() == pytest.approx([0.25] * 3)


# ------------------------------------------------------------------------------------------- the table


def direct_count(outcomes: pd.DataFrame, guardian: str, slice_name: str) -> dict[str, int]:
    rows = outcomes if guardian == ALL else outcomes[outcomes["guardian"] == guardian]
    if slice_name == HARD_NEGATIVES:
        rows = rows[rows["hard_negative"]]
    elif slice_name != ALL:
        rows = rows[rows["lang"] == slice_name]
    viol, benign = rows[rows["violation"]], rows[~rows["violation"]]
    return {"n_violating": len(viol), "detected": int(viol["detected"].sum()), "n_benign": len(benign),
            "false_positives": int(benign["detected"].sum()), "n_checks": len(rows)}


def test_table_counts_equal_a_direct_count(evaluated, table):
    assert {"guardian", "slice"} <= set(table.columns)
    assert set(TABLE_COLUMNS) - {"detection_rate", "fpr", "p50_ms", "p95_ms"} <= set(table.columns)
    seen = set()
    for row in table.itertuples():
        expected = direct_count(evaluated, row.guardian, row.slice)
        got = {k: getattr(row, k) for k in expected}
        assert got == expected, (row.guardian, row.slice)
        seen.add((row.guardian, row.slice))
    assert seen == {("secret", ALL), ("secret", "en"), ("secret", "zh"), ("secret", HARD_NEGATIVES),
                    ("sql", ALL), ("sql", "en"), (ALL, ALL), (ALL, "en"), (ALL, "zh"), (ALL, HARD_NEGATIVES)}
    secret = table[(table["guardian"] == "secret") & (table["slice"] == ALL)].iloc[0]
    assert (secret["detected"], secret["false_positives"]) == (38, 2)


def test_rate_intervals_are_scipy_exact(table):
    for row in table.itertuples():
        for count, n, rate in (("detected", "n_violating", "detection_rate"), ("false_positives", "n_benign", "fpr")):
            x, trials = getattr(row, count), getattr(row, n)
            if trials == 0:
                assert math.isnan(getattr(row, rate))
                continue
            ref = stats.binomtest(x, trials).proportion_ci(confidence_level=0.95, method="exact")
            assert getattr(row, rate) == x / trials
            assert getattr(row, f"{rate}_ci_low") == pytest.approx(ref.low, rel=1e-8, abs=1e-14)
            assert getattr(row, f"{rate}_ci_high") == pytest.approx(ref.high, rel=1e-8, abs=1e-14)


def test_latency_intervals_come_from_quantile_ci(evaluated, table):
    row = table[(table["guardian"] == "secret") & (table["slice"] == "en")].iloc[0]
    values = evaluated.loc[(evaluated["guardian"] == "secret") & (evaluated["lang"] == "en"), "latency_ms"]
    p95 = quantile_ci(values.to_numpy(), 0.95, confidence=0.95, resampling="iid", seed=0)
    p50 = quantile_ci(values.to_numpy(), 0.5, confidence=0.95, resampling="iid", seed=0)
    one_sided = quantile_ci(values.to_numpy(), 0.95, confidence=0.90, resampling="iid", seed=0)
    assert (row["p95_ms"], row["p95_ci_low"], row["p95_ci_high"]) == (p95.estimate, p95.ci_low, p95.ci_high)
    assert (row["p50_ms"], row["p50_ci_low"], row["p50_ci_high"]) == (p50.estimate, p50.ci_low, p50.ci_high)
    assert (row["p95_bound_low_ms"], row["p95_bound_high_ms"]) == (one_sided.ci_low, one_sided.ci_high)


def test_hard_negative_row_has_no_detection_rate_and_says_why(table):
    row = table[(table["guardian"] == "secret") & (table["slice"] == HARD_NEGATIVES)].iloc[0]
    assert row["n_violating"] == 0
    assert math.isnan(row["detection_rate"])
    assert "no violating case" in row["note"]
    assert row["false_positives"] == 2


def test_table_without_latencies_has_counts_only():
    table = enforcement_table(outcomes_from_counts([("g", 10, 9, 10, 0)]))
    assert table["n_checks"].eq(0).all()
    assert table["p95_ms"].isna().all()
    assert table["note"].str.contains("fewer than 2 timed checks").all()


# ------------------------------------------------------------------------------------------- claims


def check_one(claim: str, value: float, counts: tuple[int, int, int, int], **kwargs) -> pd.Series:
    table = enforcement_table(outcomes_from_counts([("g", *counts)], **kwargs))
    checks = claims_check(table, {claim: {"g": value}})
    assert len(checks) == 1
    return checks.iloc[0]


def test_detection_supported_when_the_exact_lower_bound_clears():
    row = check_one("guardian_detection", 0.998, (2000, 2000, 10, 0))
    assert row["decision"] == "supported"
    assert row["bound_value"] == pytest.approx(0.05 ** (1 / 2000))  # one-sided lower bound with no miss
    assert row["sentence"].startswith("Supported")


def test_detection_refuted_when_the_upper_bound_is_below():
    row = check_one("guardian_detection", 0.998, (1000, 980, 10, 0))
    assert row["decision"] == "refuted"
    assert pd.isna(row["n_needed"])
    upper = stats.binomtest(980, 1000, alternative="less").proportion_ci(0.95, method="exact").high
    assert upper < 0.998
    assert "Refuted" in row["sentence"]


def test_zero_false_positives_need_ln_alpha_over_ln_one_minus_p():
    row = check_one("guardian_fpr", 0.001, (10, 10, 500, 0))
    assert row["decision"] == "cannot decide at this n"
    assert row["n_needed"] == math.ceil(math.log(0.05) / math.log(1 - 0.001)) == 2995
    assert "2,995 benign cases" in row["sentence"]
    assert check_one("guardian_fpr", 0.001, (10, 10, 2995, 0))["decision"] == "supported"
    assert check_one("guardian_fpr", 0.001, (10, 10, 2994, 0))["decision"] == "cannot decide at this n"


def test_undecided_with_failures_gives_the_n_at_which_the_bound_would_clear():
    row = check_one("guardian_fpr", 0.01, (10, 10, 400, 2))  # observed 0.5 % against a 1 % claim
    assert row["decision"] == "cannot decide at this n"
    n = int(row["n_needed"])
    rate = 2 / 400
    assert stats.beta.ppf(0.95, rate * n + 1, n - rate * n) <= 0.01 < stats.beta.ppf(0.95, rate * (n - 1) + 1,
                                                                                      (n - 1) * (1 - rate))
    assert n > 400


def test_no_n_suffices_when_the_observed_rate_is_on_the_wrong_side():
    row = check_one("guardian_fpr", 0.01, (10, 10, 100, 2))  # 2 % observed, claim 1 %, CI still covers 1 %
    assert row["decision"] == "cannot decide at this n"
    assert pd.isna(row["n_needed"])
    assert "no n suffices" in row["sentence"]


def test_fpr_refuted_and_supported():
    assert check_one("guardian_fpr", 0.001, (10, 10, 1000, 8))["decision"] == "refuted"
    assert check_one("guardian_fpr", 0.01, (10, 10, 1000, 2))["decision"] == "supported"


def test_latency_claims():
    supported = check_one("guardian_latency_ms", 10.0, (100, 100, 100, 0), latency=1.0)
    assert supported["decision"] == "supported"
    refuted = check_one("guardian_latency_ms", 0.5, (100, 100, 100, 0), latency=1.0)
    assert refuted["decision"] == "refuted"
    assert refuted["sentence"].startswith("Refuted")
    # 100 checks hold 5 values above the P95: too few for its bootstrap bound, whatever the claim
    small = check_one("guardian_latency_ms", 1000.0, (50, 50, 50, 0), latency=1.0)
    assert small["decision"] == "cannot decide at this n"
    assert small["n_needed"] == 200


def test_a_plain_number_applies_to_every_guardian_and_the_pooled_row():
    table = enforcement_table(outcomes_from_counts([("a", 50, 50, 50, 0), ("b", 50, 49, 50, 1)]))
    checks = claims_check(table, {"guardian_detection": 0.9, "guardian_fpr": 0.2})
    assert checks["guardian"].tolist() == ["a", "b", ALL, "a", "b", ALL]
    assert set(checks["decision"]) <= set(enforcement.DECISIONS)
    assert checks["sentence"].str.len().gt(20).all()


def refuted_share_at_claim(claim: float, n: int, reps: int, seed: int) -> float:
    """Share of 'refuted' when the true FPR equals the claim, over ``reps`` simulated guardians."""
    rng = np.random.default_rng(seed)
    false_pos = rng.binomial(n, claim, size=reps)
    rows = [(f"g{i}", 1, 1, n, int(x)) for i, x in enumerate(false_pos)]
    table = enforcement_table(outcomes_from_counts(rows))
    checks = claims_check(table, {"guardian_fpr": {f"g{i}": claim for i in range(reps)}})
    return float((checks["decision"] == "refuted").mean())


def test_refuted_at_most_alpha_when_the_truth_equals_the_claim():
    reps = 300
    share = refuted_share_at_claim(0.02, 300, reps, seed=5)
    assert share <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_the_monte_carlo_catches_a_check_that_uses_the_point_estimate(monkeypatch):
    """Broken code: bounds equal to the point estimate refute a true claim about half the time."""
    def point_bounds(successes, n, *, confidence=0.95, alternative="two-sided"):
        rate = successes / n
        return BinomialCI(rate, rate, rate, successes, n, confidence, alternative, "broken", "")

    monkeypatch.setattr(enforcement, "clopper_pearson", point_bounds)
    reps = 300
    assert refuted_share_at_claim(0.02, 300, reps, seed=5) > 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


# ------------------------------------------------------------------------------------------- publication


def test_publication_tables_render(table, tmp_path):
    checks = claims_check(table, {"guardian_detection": 0.998, "guardian_fpr": 0.001, "guardian_latency_ms": 10})
    md = to_markdown("enforcement", table, note=enforcement_note())
    assert "Detection (%)" in md
    assert "95.0 [" in md  # secret all: 38/40 detected
    assert "Clopper–Pearson" in md
    latex = to_latex("claims", checks, note=claims_note())
    assert "One-sided" in latex
    assert "U+" not in latex  # every character of the notes has a LaTeX spelling
    assert "cannot decide at this n" in latex
    written = write_enforcement(tmp_path, table, checks)
    assert {p.name for p in written} >= {"enforcement.md", "claims.md", "enforcement.tex", "claims.html"}


# ------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(("call", "match"), [
    (lambda t: evaluate_guardians(hand_made_cases(), {"secret": KeywordGuardian("secret", "S")}),
     "names guardian 'sql', which is not in `guardians`"),
    (lambda t: evaluate_guardians([object()], fake_guardians()), "case 0 has no `guardian`"),
    (lambda t: evaluate_guardians(hand_made_cases(), fake_guardians(), repeats=0), "`repeats` must be an integer"),
    (lambda t: enforcement_table([1, 2]), "`outcomes` must be a DataFrame"),
    (lambda t: enforcement_table(pd.DataFrame({"guardian": ["g"]})), "`outcomes` lacks the columns"),
    (lambda t: enforcement_table(pd.DataFrame({"guardian": ["g"], "lang": ["en"], "violation": [True],
                                               "hard_negative": [True], "detected": [True], "case_id": ["c1"]})),
     "a hard negative is benign by definition, but case 'c1'"),
    (lambda t: enforcement_table(outcomes_from_counts([("g", 1, 1, 1, 0)]), alpha=0.7), r"`alpha` must be"),
    (lambda t: claims_check(t, {"guardian_recall": 0.9}), "unknown claim 'guardian_recall'"),
    (lambda t: claims_check(t, {"guardian_fpr": 0.1 * 10}), r"is a proportion in \(0, 1\)"),
    (lambda t: claims_check(t, {"guardian_fpr": {"nope": 0.1}}), "names guardian 'nope'"),
    (lambda t: claims_check(t, {"guardian_latency_ms": -1}), "must be > 0 ms"),
    (lambda t: claims_check(t, {}), "`claims` must be a non-empty mapping"),
    (lambda t: claims_check(t, {"guardian_latency_ms": 5}, alpha=0.01), "latency bounds are at alpha=0.05"),
    (lambda t: claims_check(pd.DataFrame(), {"guardian_fpr": 0.1}), "`table` must be enforcement_table"),
])
def test_errors_say_what_and_how_to_fix(table, call, match):
    with pytest.raises(InvalidArgument, match=match):
        call(table)
