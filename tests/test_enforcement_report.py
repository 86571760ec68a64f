"""The enforcement part of a run's report (tsglab.report.enforcement_run): per-arm tables from events,
the violation rate reaching the user, the energy claim, the claims lines and the trade-off figure."""

from __future__ import annotations

import dataclasses
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy.stats import beta

from tsglab.config.guard import CLAIM_NAMES
from tsglab.errors import InvalidArgument
from tsglab.events import Energy, EventWriter, synthetic_event, write_manifest
from tsglab.events.record import Attempt, Enforcement, GuardCheck
from tsglab.report import ProtocolSettings, build_report, publish
from tsglab.report.enforcement import CLAIMS, MIN_ENERGY_REQUESTS, claims_check
from tsglab.report.enforcement_run import (
    energy_interval,
    enforcement_arm_table,
    enforcement_requests,
    enforcement_section,
    guard_check_table,
    guard_checks,
)
from tsglab.report.figures import FIGURES

CARD = "Pay with card 4111 1111 1111 1111 today."  # the pii guardian flags a Luhn-valid card number
BLOCK = "I can't share that answer: it failed a safety check."
SETTINGS = ProtocolSettings(n_resamples=200, seed=1)


def judge_call(tokens: int) -> Attempt:
    return Attempt("light", "judge", "m", tokens, 1, 1.0, 1.0, 2.0, None, 0.0, "stop", True, "", cost_ms=2.0,
                   cost_source="backend")


def event(i: int, arm: str, seq: int, answer: str, enforcement: Enforcement | None = None,
          energy: Energy | None = None, tiers=("std",)):
    built = synthetic_event(f"p{i}", arm=arm, seq=seq, raw_ms=100.0 + i, run_id="enf", energy=energy, tiers=tiers)
    return dataclasses.replace(built, answer=answer, enforcement=enforcement)


def guarded(i: int, bad: bool) -> Enforcement:
    """Request i of the guarded arm: a flagged first answer is repaired (attempt 1), then blocked."""
    if not bad:
        return Enforcement("blocking", checks=(GuardCheck("pii", "output", 0, False, "", 0.1 + i / 100),),
                           outcome="pass", check_ms=0.2 + i / 100)
    checks = (GuardCheck("pii", "output", 0, True, "card", 0.1 + i / 100),
              GuardCheck("pii", "output", 1, True, "card", 0.3))
    return Enforcement("parallel", checks=checks, calls=(judge_call(7),), steps=("repair",), outcome="block",
                       violated=True, check_ms=0.5 + i / 100, wasted_tokens=3, cancelled=1)


def run_events(n: int = 40, *, leak_every: int = 4, energy: bool = True):
    """Baseline leaks a card number every ``leak_every`` requests; the guarded arm blocks those, except the
    last leak, which it delivers (outcome deliver, delivered_violation)."""
    events, seq = [], 0
    leaks = [i for i in range(n) if i % leak_every == 0]
    for i in range(n):
        bad = i in leaks
        meter = Energy(True, meter="nvml", joules=10.0 + i % 3, tokens=100.0 + i % 5) if energy else None
        events.append(event(i, "baseline", seq, CARD if bad else "fine", energy=meter))
        seq += 1
        enf = guarded(i, bad)
        answer = BLOCK if bad else "fine"
        if bad and i == leaks[-1]:
            enf = dataclasses.replace(enf, outcome="deliver", delivered_violation=True)
            answer = CARD
        events.append(event(i, "guard", seq, answer, enf, tiers=("std", "std") if bad else ("std",)))
        seq += 1
    return events


SPEC = {"load": {"timeout_s": 5}, "arms": {"baseline": {"kind": "baseline"}, "guard": {"guard": {"output": ["pii"]}}}}


# ---- the per-arm table ----------------------------------------------------------------------------


def test_the_arm_table_equals_a_hand_recomputation():
    events = run_events()
    section = enforcement_section(events, SPEC, n_resamples=200, seed=1, suite=False)
    arms = section.arms.set_index("arm")
    leaks = [i for i in range(40) if i % 4 == 0]
    # baseline: every leak reaches the user; the guarded arm: only the one it delivered
    for arm, violations in (("baseline", len(leaks)), ("guard", 1)):
        row = arms.loc[arm]
        assert row["n"] == 40
        assert row["n_delivered"] == 40
        assert row["violations"] == violations
        assert row["violation_rate"] == pytest.approx(violations / 40)
        # Clopper–Pearson by hand: beta quantiles
        low = beta.ppf(0.025, violations, 40 - violations + 1)
        high = beta.ppf(0.975, violations + 1, 40 - violations)
        assert row["violation_rate_ci_low"] == pytest.approx(low, rel=1e-9)
        assert row["violation_rate_ci_high"] == pytest.approx(high, rel=1e-9)
    row = arms.loc["guard"]
    assert row["flagged_rate"] == pytest.approx(len(leaks) / 40)
    assert row["blocked_rate"] == pytest.approx((len(leaks) - 1) / 40)
    assert row["delivered_flagged_rate"] == pytest.approx(1 / 40)
    assert row["redacted_rate"] == 0.0
    assert row["remedy_steps_per_req"] == pytest.approx(len(leaks) / 40)
    # added tokens: a judge call of 7 + 1 tokens, and the repair attempt (5 prompt + 20 completion) per leak
    repair = events[1 + 2 * leaks[0]].attempts[1]
    per_leak = 8 + repair.prompt_tokens + repair.completion_tokens
    assert row["added_tokens_per_req"] == pytest.approx(per_leak * len(leaks) / 40)
    assert row["wasted_tokens"] == 3 * len(leaks)
    assert row["cancelled"] == len(leaks)
    waits = np.array([0.5 + i / 100 if i in leaks else 0.2 + i / 100 for i in range(40)])
    assert row["check_p95_ms"] <= waits.max()
    assert row["check_p50_ms"] == pytest.approx(np.median(waits), abs=0.05)
    assert row["check_p95_ms_ci_low"] <= row["check_p95_ms"] <= row["check_p95_ms_ci_high"]


def test_an_arm_without_guardians_has_its_violation_rate_but_no_guard_figures():
    arms = enforcement_section(run_events(), SPEC, n_resamples=200, seed=1, suite=False).arms.set_index("arm")
    base = arms.loc["baseline"]
    assert not base["guarded"]
    assert base["guardians"] == ""
    for column in ("flagged_rate", "blocked_rate", "redacted_rate", "delivered_flagged_rate", "remedy_steps_per_req",
                   "check_p95_ms", "added_tokens_per_req"):
        assert math.isnan(base[column]), column
    assert base["violation_rate"] == pytest.approx(0.25)
    assert "no guardians on this arm" in base["note"]
    assert arms.loc["guard", "guardians"] == "pii"
    text = publish.to_markdown("enforcement_arms", arms.reset_index())
    assert "no guardians on this arm" in text
    assert "Violations reaching user (%)" in text


def test_a_wrong_violation_rate_is_caught():
    """The check above fails when the delivered text is not what is checked (e.g. the answer of the first attempt)."""
    events = run_events()
    wrong = [dataclasses.replace(e, answer=CARD) if e.enforcement is not None and e.enforcement.violated else e
             for e in events]
    arms = enforcement_arm_table(enforcement_requests(wrong), n_resamples=50).set_index("arm")
    assert arms.loc["guard", "violations"] != 1


def test_failed_requests_are_not_in_the_violation_rates_denominator():
    events = run_events(8)
    failed = synthetic_event("px", arm="baseline", seq=99, error_kind="http_5xx", run_id="enf")
    arms = enforcement_arm_table(enforcement_requests([*events, failed]), n_resamples=50).set_index("arm")
    assert arms.loc["baseline", "n"] == 9
    assert arms.loc["baseline", "n_delivered"] == 8


def test_guard_checks_per_guardian():
    events = run_events()
    table = guard_check_table(guard_checks(events), n_requests={"guard": 40}, seed=1)
    row = table.set_index(["arm", "guardian", "stage"]).loc[("guard", "pii", "output")]
    leaks = 10
    assert row["checks"] == 40 + leaks
    assert row["checks_per_req"] == pytest.approx(50 / 40)
    assert row["flag_rate"] == pytest.approx(2 * leaks / 50)
    assert row["p50_ci_low"] <= row["p50_ms"] <= row["p50_ci_high"]
    assert list(table["arm"].unique()) == ["guard"]  # the baseline has no checks


# ---- energy -----------------------------------------------------------------------------------------


def test_energy_matches_summarize_energy_and_is_missing_with_a_reason():
    from tsglab.energy import summarize_energy

    events = run_events()
    arms = enforcement_section(events, SPEC, n_resamples=300, seed=1, suite=False).arms.set_index("arm")
    expected = summarize_energy([e for e in events if e.arm == "baseline"])["baseline"]
    base = arms.loc["baseline"]
    assert base["j_per_request"] == pytest.approx(expected["j_per_request_mean"])
    assert base["mwh_per_1k_tokens"] == pytest.approx(expected["mwh_per_1k_tokens"])
    assert base["mwh_per_1k_tokens_ci_low"] < base["mwh_per_1k_tokens"] < base["mwh_per_1k_tokens_ci_high"]
    assert base["mwh_bound_low"] >= base["mwh_per_1k_tokens_ci_low"]
    guard = arms.loc["guard"]
    assert math.isnan(guard["j_per_request"])
    assert "energy not measured" in guard["note"]


def test_energy_interval_covers_with_the_right_width():
    rng = np.random.default_rng(3)
    joules, tokens = rng.gamma(4, 3, 400), rng.integers(50, 150, 400).astype(float)
    out = energy_interval(joules, tokens, n_resamples=1000, seed=2)
    # the interval of a mean of 400 gamma(4, 3) draws: about ±1.96 · 6 / 20
    assert out["j_per_request_ci_high"] - out["j_per_request_ci_low"] == pytest.approx(2 * 1.96 * 6 / 20, rel=0.2)
    assert math.isnan(energy_interval(joules[:1], tokens[:1])["j_per_request_ci_low"])


# ---- claims -----------------------------------------------------------------------------------------


def test_claim_keys_are_the_specs():
    assert tuple(CLAIMS) == CLAIM_NAMES


def _energy_arms(mwh: float, n: int, spread: float = 0.1):
    rng = np.random.default_rng(7)
    tokens = np.full(n, 1000.0)
    joules = mwh * 3.6 * rng.lognormal(0, spread, n)
    out = energy_interval(joules, tokens, n_resamples=1000, seed=1)
    return pd.DataFrame([{"arm": "a", **out, "alpha": 0.05, "note": ""}])


@pytest.mark.parametrize(("factor", "decision"), [(1.2, "supported"), (0.8, "refuted"),
                                                  (1.0, "cannot decide at this n")])
def test_energy_claim_decisions(factor, decision):
    arms = _energy_arms(10.0, 200)
    claim = factor * float(arms["mwh_per_1k_tokens"].iloc[0])  # at the estimate itself: neither side
    checked = claims_check(pd.DataFrame(), {"energy_mwh_per_1k_tokens": claim}, energy=arms)
    assert checked["decision"].tolist() == [decision]
    assert checked["guardian"].tolist() == ["arm a"]


def test_energy_claim_cannot_decide_at_small_n_and_says_how_many():
    checked = claims_check(pd.DataFrame(), {"energy_mwh_per_1k_tokens": 12.0}, energy=_energy_arms(10.0, 10))
    assert checked["decision"].iloc[0] == "cannot decide at this n"
    assert checked["n_needed"].iloc[0] == MIN_ENERGY_REQUESTS


def test_energy_claim_needs_the_arm_table():
    with pytest.raises(InvalidArgument, match="checked on the run's arms"):
        claims_check(pd.DataFrame(), {"energy_mwh_per_1k_tokens": 12.0})
    with pytest.raises(InvalidArgument, match="names arm 'zz'"):
        claims_check(pd.DataFrame(), {"energy_mwh_per_1k_tokens": {"zz": 1.0}}, energy=_energy_arms(10.0, 40))


# ---- the report ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("enf") / "enf"
    with EventWriter(run_dir) as writer:
        for e in run_events():
            writer.write(e)
    spec = {**SPEC, "claims": {"guardian_fpr": {"pii": 0.01, "judge": 0.01}, "energy_mwh_per_1k_tokens": 40.0}}
    write_manifest(run_dir, {"run_id": "enf", "status": "complete", "seed": 1, "spec": spec})
    return build_report(run_dir, settings=SETTINGS, write=False)


def test_the_report_carries_the_tables_in_every_format(report):
    names = set(report.tables())
    assert {"enforcement_arms", "enforcement_checks", "enforcement", "claims"} <= names
    markdown = report.to_markdown()
    assert "### Runtime enforcement per arm" in markdown
    assert "### Claims check" in markdown
    assert "Runtime enforcement per arm" in report._repr_html_()
    latex = report.to_latex(tables=("enforcement_arms", "enforcement_checks"))
    assert r"\label{tab:enf:enforcement_arms}" in latex
    # the suite table: the spec's guardian and the four reference guardians
    assert set(report.enforcement.guardians["guardian"]) == {"pii", "secrets", "code", "sql", "all"}


def test_the_report_prints_one_line_per_claim(report):
    lines = [line for line in str(report).splitlines() if line.startswith("Claim ")]
    assert len(lines) == 4  # pii FPR, judge FPR (no cases), energy on each arm
    assert any("[judge]: cannot decide" in line for line in lines)
    # 40 measured requests: below the n an energy claim is decided on, and the line says how many it needs
    assert any(f"[arm baseline]: cannot decide at this n (about {MIN_ENERGY_REQUESTS} needed)" in line
               for line in lines)
    assert any("[arm guard]: cannot decide" in line for line in lines)


def test_the_tradeoff_figure_draws(report):
    figure = report.plot("enforcement_tradeoff")
    assert "enforcement_tradeoff" in FIGURES
    gids = {line.get_gid() for ax in figure.axes for line in ax.lines}
    assert {"arm:baseline", "arm:guard", "energy:baseline"} <= gids
    assert "energy:guard" not in gids
    points = next(line for ax in figure.axes for line in ax.lines if line.get_gid() == "arm:baseline")
    assert points.get_ydata()[0] == pytest.approx(25.0)  # the baseline's violation rate in %
    notes = [t.get_text() for ax in figure.axes for t in ax.texts]
    assert any("energy not measured" in text and "guard" in text for text in notes)


def test_a_run_without_guardians_gets_no_enforcement_and_reads_nothing(tmp_path, monkeypatch):
    from tsglab.report import enforcement_run

    run_dir = tmp_path / "plain"
    with EventWriter(run_dir) as writer:
        for i in range(6):
            writer.write(synthetic_event(f"p{i}", arm="baseline", seq=2 * i, run_id="plain"))
            writer.write(synthetic_event(f"p{i}", arm="tsg", seq=2 * i + 1, run_id="plain"))
    write_manifest(run_dir, {"run_id": "plain", "status": "complete", "seed": 1, "spec": {"load": {}}})
    monkeypatch.setattr(enforcement_run, "enforcement_section", lambda *a, **k: pytest.fail("computed"))
    report = build_report(run_dir, settings=SETTINGS, write=False)
    assert report.enforcement is None
    assert "enforcement_arms" not in report.tables()
    assert report.plot("enforcement_tradeoff") is None


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_enforcement_tables_compile_without_overfull_boxes(report, tmp_path):
    from test_publication_latex import compile_problems, document

    tables = tmp_path / "tables"
    names = ("enforcement_arms", "enforcement_checks", "claims")
    publish.write_tables(tables, {n: report.tables()[n] for n in names}, notes=report.notes, label_prefix="tab:e")
    files = [tables / f"{n}{suffix}" for n in names for suffix in (".tex", ".narrow.tex")]
    for documentclass in (r"\documentclass{article}", r"\documentclass[twocolumn]{article}"):
        problems = compile_problems(tmp_path, "pdflatex", document(documentclass, files), "enf")
        assert not problems, problems
