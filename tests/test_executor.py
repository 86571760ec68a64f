from __future__ import annotations

import time

import pytest
from conftest import scripted_ladder

from tsglab.config import ABLATIONS, BASELINE, PolicyConfig, RetryPolicy
from tsglab.errors import BackendConnectError, BackendError, BackendHTTPError, BackendTimeout, SpecError
from tsglab.policy.executor import execute

SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
GOOD = '{"name": "Ada"}'


def sequence(*replies):
    """A reply function that returns the given replies in order (the last one repeats)."""
    calls = {"n": 0}

    def reply(_request):
        i = min(calls["n"], len(replies) - 1)
        calls["n"] += 1
        return replies[i]

    return reply


PAPER = PolicyConfig()


def run(ladder, config=PAPER, tier="light", task="json", schema=SCHEMA, timeout_s=None):
    return execute(ladder, config, "Return JSON with the name.", tier=tier, task=task, json_schema=schema,
                   timeout_s=timeout_s)


def test_first_attempt_passes_makes_one_attempt():
    result = run(scripted_ladder(GOOD))
    assert [a.kind for a in result.attempts] == ["initial"]
    assert result.ok
    assert result.json_ok
    assert result.final_tier == "light"
    assert result.upgrades == 0


def test_failed_json_gets_one_same_tier_repair():
    ladder = scripted_ladder(sequence("not json", GOOD))
    result = run(ladder)
    assert [(a.tier, a.kind) for a in result.attempts] == [("light", "initial"), ("light", "repair")]
    assert result.repaired
    assert result.ok
    assert result.final_tier == "light"
    # the repair turn shows the model its failed answer and the failure
    repair_request = ladder.backends["light"].requests[1]
    assert repair_request.messages[1].content == "not json"
    assert "failed a check" in repair_request.messages[2].content


def test_persistent_failure_repairs_once_then_upgrades_up_to_the_cap():
    result = run(scripted_ladder("never json"))
    assert [(a.tier, a.kind) for a in result.attempts] == [
        ("light", "initial"), ("light", "repair"), ("std", "upgrade"), ("enh", "upgrade")]
    assert result.upgrades == 2
    assert not result.ok
    assert result.json_ok is False


def test_max_upgrades_bounds_the_cascade():
    result = run(scripted_ladder("never json"), PolicyConfig(max_upgrades=1))
    assert [a.tier for a in result.attempts] == ["light", "light", "std"]
    result = run(scripted_ladder("never json"), PolicyConfig(max_upgrades=0))
    assert [a.kind for a in result.attempts] == ["initial", "repair"]


def test_no_repair_ablation_upgrades_directly():
    config = PolicyConfig(**ABLATIONS["F_no_repair"])
    result = run(scripted_ladder({"light": "no", "std": GOOD, "enh": GOOD}), config)
    assert [(a.tier, a.kind) for a in result.attempts] == [("light", "initial"), ("std", "upgrade")]
    assert not result.repaired
    assert result.ok


def test_upgrade_never_passes_enh():
    result = run(scripted_ladder("never json"), tier="enh")
    assert [a.tier for a in result.attempts] == ["enh", "enh"]


def test_timeout_is_censored_without_repair():
    ladder = scripted_ladder(BackendTimeout("stalled", elapsed_ms=1234.0))
    result = run(ladder, timeout_s=1.2)
    assert result.timed_out
    assert result.error_kind == "timeout"
    assert len(result.attempts) == 1
    assert result.attempts[0].total_ms == 1234.0
    assert not result.repaired
    assert result.upgrades == 0


def test_a_timed_out_attempt_costs_its_elapsed_time_not_zero():
    result = run(scripted_ladder(BackendTimeout("stalled", elapsed_ms=1234.0)), timeout_s=1.2)
    attempt = result.attempts[0]
    assert attempt.cost_ms == attempt.total_ms == 1234.0
    assert attempt.cost_source == "elapsed"
    assert attempt.completion_tokens == 0
    assert attempt.eval_ms == 0.0  # no tokens counted, split unknown


def test_a_scripted_backend_that_really_times_out_is_costed_at_the_time_it_ran():
    # 50 words at 10 ms each overrun a 0.05 s timeout; sleep=True spends the time for real
    result = run(scripted_ladder(" ".join(["word"] * 50), sleep=True, eval_ms_per_token=10.0), timeout_s=0.05)
    attempt = result.attempts[0]
    assert result.timed_out
    assert attempt.cost_source == "elapsed"
    assert attempt.cost_ms == attempt.total_ms == pytest.approx(50.0, rel=0.05)


def test_a_failed_attempt_costs_its_measured_elapsed_time():
    def slow_refusal(_request):
        time.sleep(0.02)
        return BackendConnectError("refused")

    result = run(scripted_ladder(slow_refusal))
    attempt = result.attempts[0]
    assert attempt.cost_source == "elapsed"
    assert attempt.cost_ms == attempt.total_ms >= 20.0


def test_an_answered_attempt_costs_its_backend_durations():
    result = run(scripted_ladder(sequence("not json", GOOD), prompt_ms=2.0, eval_ms_per_token=3.0))
    # two words each: 2 ms prompt + 2 × 3 ms eval
    assert [(a.cost_ms, a.cost_source) for a in result.attempts] == [(2.0 + 6.0, "backend")] * 2


def test_a_cascade_of_retries_sums_failed_and_answered_attempts():
    ladder = scripted_ladder(sequence(BackendConnectError("refused"), GOOD), prompt_ms=2.0, eval_ms_per_token=3.0)
    result = execute(ladder, PAPER, "Return JSON with the name.", tier="light", task="json", json_schema=SCHEMA,
                     timeout_s=None, retry=RetryPolicy(max_retries=1, backoff_ms=1.0))
    failed, answered = result.attempts
    assert failed.cost_source == "elapsed"
    assert failed.cost_ms > 0
    assert answered.cost_source == "backend"
    assert answered.cost_ms == 2.0 + 6.0


def test_backend_error_is_recorded_not_raised():
    result = run(scripted_ladder(BackendError("connection refused")))
    assert result.error_kind == "backend_error"
    assert not result.timed_out
    assert "connection refused" in result.error


def test_baseline_makes_a_single_attempt_even_when_the_check_fails():
    result = run(scripted_ladder("never json"), BASELINE, tier="enh")
    assert len(result.attempts) == 1
    assert not result.ok
    assert result.json_ok is False


def test_refusal_and_short_answers_fail_the_check():
    result = run(scripted_ladder(sequence("I'm sorry, but I can't help with that.", "Paris")), task="general",
                 schema=None)
    assert result.attempts[0].check_reason == "refusal"
    assert result.repaired
    assert result.ok
    config = PolicyConfig(min_answer_chars=10)
    result = run(scripted_ladder("short"), config, task="general", schema=None)
    assert result.attempts[0].check_reason == "too_short"


def test_schema_violation_fails_the_contract():
    result = run(scripted_ladder(sequence('{"name": 5}', GOOD)))
    assert result.attempts[0].check_reason == "json_contract"
    assert result.ok


@pytest.mark.parametrize("text", ['```json\n{"name": "Ada"}\n```', 'Sure! {"name": "Ada"} Hope it helps.'])
def test_json_contract_tolerates_fences_and_prose(text):
    assert run(scripted_ladder(text)).ok


def test_attempt_durations_are_recorded_per_attempt():
    result = run(scripted_ladder("never json", prompt_ms=2.0, eval_ms_per_token=3.0))
    assert all(a.prompt_eval_ms == 2.0 and a.eval_ms == 6.0 for a in result.attempts)


# ---- retry policy: explicit, per error kind, never for timeouts ----

def run_with_retry(ladder, retry, timeout_s=None, tier="light"):
    return execute(ladder, PAPER, "Return JSON with the name.", tier=tier, task="json", json_schema=SCHEMA,
                   timeout_s=timeout_s, retry=retry)


def test_default_policy_does_not_retry_a_refused_connection():
    result = run(scripted_ladder(BackendConnectError("refused")))
    assert result.error_kind == "connect_error"
    assert result.retries == 0
    assert len(result.attempts) == 1
    assert result.attempts[0].error_kind == "connect_error"
    assert result.attempts[0].backend == "scripted-light"


def test_retry_policy_retries_named_kinds_on_the_same_tier_then_succeeds():
    ladder = scripted_ladder(sequence(BackendConnectError("refused"), BackendHTTPError("busy", status=503), GOOD))
    result = run_with_retry(ladder, RetryPolicy(max_retries=2, backoff_ms=1.0))
    assert [(a.tier, a.kind, a.error_kind) for a in result.attempts] == [
        ("light", "initial", "connect_error"), ("light", "retry", "http_5xx"), ("light", "retry", "")]
    assert result.ok
    assert result.retries == 2
    assert result.error_kind == ""


def test_retries_stop_at_max_retries_and_the_request_ends_as_an_error():
    ladder = scripted_ladder(BackendHTTPError("down", status=502))
    result = run_with_retry(ladder, RetryPolicy(max_retries=2, backoff_ms=0.0))
    assert len(result.attempts) == 3
    assert result.retries == 2
    assert result.error_kind == "http_5xx"
    assert not result.ok
    assert not result.timed_out


def test_kinds_not_named_are_not_retried():
    ladder = scripted_ladder(BackendHTTPError("no such model", status=404))
    result = run_with_retry(ladder, RetryPolicy(max_retries=3, backoff_ms=0.0))
    assert len(result.attempts) == 1
    assert result.error_kind == "http_4xx"


def test_timeouts_are_never_retried():
    ladder = scripted_ladder(BackendTimeout("stalled", elapsed_ms=50.0))
    result = run_with_retry(ladder, RetryPolicy(max_retries=3, backoff_ms=0.0), timeout_s=0.05)
    assert len(result.attempts) == 1
    assert result.timed_out
    with pytest.raises(SpecError, match=r"retry.on: \['timeout'\] are not retryable"):
        RetryPolicy(on=("timeout",))


def test_a_backoff_that_would_pass_the_deadline_is_not_taken():
    ladder = scripted_ladder(BackendConnectError("refused"))
    result = run_with_retry(ladder, RetryPolicy(max_retries=5, backoff_ms=10_000.0), timeout_s=1.0)
    assert len(result.attempts) == 1
    assert result.error_kind == "connect_error"


def test_http_error_kinds_follow_the_status():
    assert BackendHTTPError("x", status=429).error_kind == "http_429"
    assert BackendHTTPError("x", status=400).error_kind == "http_4xx"
    assert BackendHTTPError("x", status=500).error_kind == "http_5xx"
