"""The guard stage of the executor: guardians on answers and requests, the on_violation steps, parallel
mode with speculative attempts and cancellation, the LLM judge, and json_decoding per arm."""

from __future__ import annotations

import threading
import time

import pytest

from tsglab.backends.base import CompletionRequest
from tsglab.backends.scripted import ScriptedBackend
from tsglab.config import PolicyConfig, TierSpec, spec_from_dict
from tsglab.config.guard import GuardConfig, check_claims
from tsglab.errors import BackendCancelled, SpecError
from tsglab.events.record import Event, Fingerprint, Quality, Route, Schedule
from tsglab.policy import GUARDIANS, TierLadder, execute
from tsglab.policy.judge import JUDGE_SYSTEM, parse_risk

LEAK = "Contact Ana at ana.silva@gmail.com or 415-555-2671 about it."
CLEAN = "Contact the support team through the help page."
REPAIR_MARK = "That answer failed a check"


def reply_by_turn(first: str, repaired: str, *, judge_risk: int | None = None):
    """A scripted reply: ``first`` to a fresh prompt, ``repaired`` to a repair turn, the judge's JSON."""

    def reply(request: CompletionRequest) -> str:
        if request.messages[0].content == JUDGE_SYSTEM:
            return f'{{"risk": {judge_risk}}}' if judge_risk is not None else "no idea"
        if any(m.role == "user" and m.content.startswith(REPAIR_MARK) for m in request.messages):
            return repaired
        return first

    return reply


def ladder_of(replies: dict, *, sleep: bool = False, ms_per_token: float = 1.0) -> tuple[TierLadder, dict]:
    backends = {t: ScriptedBackend(r, name=f"scripted:{t}", sleep=sleep, eval_ms_per_token=ms_per_token)
                for t, r in replies.items()}
    return TierLadder({t: TierSpec(name=t, backend="scripted") for t in replies}, backends), backends


def policy(**guard) -> PolicyConfig:
    return PolicyConfig(guard=GuardConfig.from_dict(guard))


def run(ladder: TierLadder, config: PolicyConfig, tier: str = "light", prompt: str = "Who do I contact?"):
    return execute(ladder, config, prompt, tier=tier, task="general", json_schema=None, timeout_s=30)


def test_an_arm_without_guardians_records_no_enforcement():
    ladder, _ = ladder_of({"light": LEAK, "std": LEAK, "enh": LEAK})
    ex = run(ladder, PolicyConfig())
    assert ex.enforcement is None
    assert ex.text == LEAK


def test_blocking_repair_fixes_a_leak_and_the_checks_are_recorded():
    ladder, backends = ladder_of({t: reply_by_turn(LEAK, CLEAN) for t in ("light", "std", "enh")})
    ex = run(ladder, policy(output=["pii", "secrets"], on_violation=["repair", "block"]))
    enf = ex.enforcement
    assert ex.text == CLEAN
    assert [a.kind for a in ex.attempts] == ["initial", "repair"]
    assert enf is not None
    assert enf.outcome == "pass"
    assert enf.violated
    assert enf.steps == ("repair",)
    assert [(c.guardian, c.attempt, c.violated) for c in enf.checks] == [
        ("pii", 0, True), ("secrets", 0, False), ("pii", 1, False), ("secrets", 1, False)]
    assert enf.checks[0].category == "email"
    assert all(c.latency_ms >= 0 for c in enf.checks)
    assert enf.check_ms >= sum(c.latency_ms for c in enf.checks) * 0.5
    # the repair turn names the arm's guardians, never the finding (parallel mode sends the same turn)
    repair_turn = backends["light"].requests[1].messages[-1].content
    assert "personal data" in repair_turn
    assert "email" not in repair_turn


@pytest.mark.parametrize("terminal", ["block", "redact", "deliver"])
def test_terminal_steps(terminal):
    ladder, _ = ladder_of(dict.fromkeys(("light", "std", "enh"), LEAK))
    config = policy(output=["pii"], on_violation=["repair", terminal], block_message="Blocked.")
    ex = run(ladder, config)
    enf = ex.enforcement
    assert enf is not None
    assert enf.outcome == terminal
    assert len(ex.attempts) == 2
    if terminal == "block":
        assert ex.text == "Blocked."
        assert not enf.delivered_violation
    elif terminal == "redact":
        assert "ana.silva@gmail.com" not in ex.text
        assert "415-555-2671" not in ex.text
        assert ex.text.startswith("Contact Ana at [REDACTED]")
        assert not GUARDIANS["pii"].check(ex.text).violated
        assert not enf.delivered_violation
    else:
        assert ex.text == LEAK
        assert enf.delivered_violation


def test_redacting_a_finding_without_spans_blocks_instead():
    ladder, _ = ladder_of({t: reply_by_turn(LEAK, LEAK, judge_risk=9) for t in ("light", "std", "enh")})
    ex = run(ladder, policy(output=["judge"], on_violation=["redact"], block_message="Blocked."))
    assert ex.text == "Blocked."
    assert ex.enforcement is not None
    assert ex.enforcement.outcome == "block"


def test_upgrade_steps_climb_the_ladder_and_stop_at_the_top():
    ladder, _ = ladder_of({"light": LEAK, "std": LEAK, "enh": CLEAN})
    ex = run(ladder, policy(output=["pii"], on_violation=["upgrade", "upgrade", "upgrade", "block"]))
    assert [a.tier for a in ex.attempts] == ["light", "std", "enh"]
    assert ex.text == CLEAN
    assert ex.upgrades == 2
    assert ex.enforcement is not None
    assert ex.enforcement.steps == ("upgrade", "upgrade")
    # at the top rung an upgrade is skipped: the terminal step follows at once
    ladder, _ = ladder_of({"light": LEAK, "std": LEAK, "enh": LEAK})
    ex = run(ladder, policy(output=["pii"], on_violation=["upgrade", "block"]), tier="enh")
    assert len(ex.attempts) == 1
    assert ex.enforcement is not None
    assert ex.enforcement.outcome == "block"


def test_max_upgrades_bounds_guard_upgrades_too():
    ladder, _ = ladder_of({"light": LEAK, "std": LEAK, "enh": CLEAN})
    config = PolicyConfig(max_upgrades=1, guard=GuardConfig.from_dict({"output": ["pii"],
                                                                      "on_violation": ["upgrade", "upgrade", "block"]}))
    ex = run(ladder, config)
    assert [a.tier for a in ex.attempts] == ["light", "std"]
    assert ex.enforcement.outcome == "block"


def test_input_guardians_block_before_any_generation():
    ladder, backends = ladder_of(dict.fromkeys(("light", "std", "enh"), CLEAN))
    ex = run(ladder, policy(input=["pii"]), prompt=f"Please e-mail {LEAK}")
    assert ex.attempts == ()
    assert ex.enforcement is not None
    assert ex.enforcement.outcome == "input_block"
    assert not any(b.requests for b in backends.values())
    ex = run(ladder, policy(input=["pii"]), prompt="What is the capital of France?")
    assert ex.text == CLEAN
    assert ex.enforcement.outcome == "pass"


def test_parallel_mode_cancels_the_speculative_repair_when_the_answer_passes():
    # every token sleeps 20 ms: a 40-word speculative repair cannot finish during a rule check
    long_clean = " ".join(["word"] * 40)
    ladder, backends = ladder_of({t: reply_by_turn(CLEAN, long_clean) for t in ("light", "std", "enh")},
                                 sleep=True, ms_per_token=20.0)
    ex = run(ladder, policy(output=["pii"], mode="parallel"))
    enf = ex.enforcement
    assert ex.text == CLEAN
    assert enf is not None
    assert enf.outcome == "pass"
    assert enf.cancelled == 1
    assert len(enf.calls) == 1
    assert enf.calls[0].kind == "speculative"
    assert enf.calls[0].check_reason == "cancelled"
    assert enf.wasted_tokens == enf.calls[0].completion_tokens < 40
    assert enf.calls[0].cost_ms > 0
    assert len(backends["light"].requests) == 2  # the answer and the speculative repair


def test_parallel_mode_uses_the_speculative_repair_when_the_answer_fails():
    ladder, backends = ladder_of({t: reply_by_turn(LEAK, CLEAN) for t in ("light", "std", "enh")})
    blocking = run(ladder, policy(output=["pii"]))
    parallel = run(ladder, policy(output=["pii"], mode="parallel"))
    assert parallel.text == blocking.text == CLEAN
    assert [a.kind for a in parallel.attempts] == [a.kind for a in blocking.attempts] == ["initial", "repair"]
    assert parallel.enforcement.cancelled == 0
    assert parallel.enforcement.steps == ("repair",)
    # the speculative repair sent exactly the request blocking mode sent
    sent = backends["light"].requests
    assert sent[1].messages == sent[3].messages


def test_parallel_input_check_cancels_the_answer_of_a_flagged_request():
    ladder, _ = ladder_of({t: " ".join(["word"] * 40) for t in ("light", "std", "enh")}, sleep=True,
                          ms_per_token=20.0)
    ex = run(ladder, policy(input=["pii"], mode="parallel"), prompt=f"Please e-mail {LEAK}")
    enf = ex.enforcement
    assert enf.outcome == "input_block"
    assert enf.cancelled == 1
    assert ex.attempts == ()


def test_judge_flags_at_its_threshold_and_its_call_is_a_side_call():
    for risk, threshold, flagged in ((8, 0.5, True), (3, 0.5, False), (5, 5 / 9, True), (4, 5 / 9, False)):
        ladder, _ = ladder_of({t: reply_by_turn(CLEAN, CLEAN, judge_risk=risk) for t in ("light", "std", "enh")})
        ex = run(ladder, policy(output=["judge"], judge_threshold=threshold, on_violation=["deliver"]))
        check = ex.enforcement.checks[0]
        assert check.violated is flagged
        assert check.score == pytest.approx(risk / 9)
        call = ex.enforcement.calls[0]
        assert call.kind == "judge"
        assert call.tier == "light"
        assert call.cost_ms > 0


def test_judge_cost_is_part_of_the_event_cost():
    ladder, _ = ladder_of({t: reply_by_turn(CLEAN, CLEAN, judge_risk=1) for t in ("light", "std", "enh")})
    ex = run(ladder, policy(output=["judge"]))
    event = Event.answered(run_id="r", arm="a", prompt_id="p", prompt="q", seq=0, schedule=Schedule(0, 0, 10**6),
                           attempts=ex.attempts, quality=Quality(1.0), route=Route(), timeout_s=30,
                           fingerprint=Fingerprint(tsglab="x", ladder=("light",)), enforcement=ex.enforcement)
    assert event.latency.cost_ms == pytest.approx(sum(a.cost_ms for a in ex.attempts) + ex.enforcement.calls[0].cost_ms)
    assert Event.from_json(event.to_json()) == event


def test_an_unreadable_judge_answer_fails_closed():
    ladder, _ = ladder_of({t: reply_by_turn(CLEAN, CLEAN, judge_risk=None) for t in ("light", "std", "enh")})
    ex = run(ladder, policy(output=["judge"], on_violation=["block"]))
    assert ex.enforcement.outcome == "block"
    assert "no risk" in ex.enforcement.checks[0].error


def test_parse_risk():
    assert parse_risk('{"risk": 7}') == 7
    assert parse_risk("risk 3 of 9") == 3
    assert parse_risk("none") is None
    assert parse_risk('{"risk": 12}') is None
    assert parse_risk('{"risk": true}') is None


def test_json_decoding_overrides_the_tier_for_json_tasks():
    seen = []

    def reply(request):
        seen.append(request.json_schema)
        return '{"a": 1}'

    backends = {t: ScriptedBackend(reply) for t in ("light", "std", "enh")}
    specs = {t: TierSpec(name=t, backend="scripted", constrained_json=(t != "light")) for t in backends}
    ladder = TierLadder(specs, backends)
    schema = {"type": "object"}
    for decoding, expected in (("tier", [None, schema]), ("constrained", [schema, schema]), ("validate", [None, None])):
        seen.clear()
        config = PolicyConfig(guard=GuardConfig(json_decoding=decoding))
        for tier in ("light", "std"):
            execute(ladder, config, "JSON please", tier=tier, task="json", json_schema=schema, timeout_s=5)
        assert seen == expected, decoding


def test_cancellation_of_a_scripted_call_reports_the_tokens_generated():
    backend = ScriptedBackend(" ".join(["w"] * 50), sleep=True, eval_ms_per_token=10.0)
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    started = time.perf_counter()
    with pytest.raises(BackendCancelled) as info:
        backend.complete(CompletionRequest(messages=(), max_tokens=64, cancel=cancel))
    assert time.perf_counter() - started < 0.4
    assert 0 < info.value.completion_tokens < 50


@pytest.mark.parametrize(("guard", "message"), [
    ({"output": ["pi"]}, "unknown guardian"),
    ({"output": "pii", "on_violation": ["block", "repair"]}, "exactly one terminal"),
    ({"on_violation": []}, "ending in one of"),
    ({"mode": "async"}, "blocking"),
    ({"judge_threshold": 1.5}, "[0, 1]"),
    ({"judge_tier": "huge"}, "not a rung"),
    ({"outputs": ["pii"]}, "unknown key"),
])
def test_bad_guard_settings_name_the_arm_and_field(guard, message):
    with pytest.raises(SpecError) as info:
        spec_from_dict({"name": "x", "arms": {"g": {"guard": guard}}, "tiers": {"light": {}, "std": {}, "enh": {}}})
    assert message in str(info.value)
    assert "arms.g" in str(info.value)


def test_claims_are_checked_for_shape():
    assert check_claims({"guardian_fpr": 0.001, "guardian_latency_ms": {"pii": 10}}) == {
        "guardian_fpr": 0.001, "guardian_latency_ms": {"pii": 10}}
    for bad in ({"guardian_speed": 1}, {"guardian_fpr": 1.5}, {"guardian_latency_ms": -1}, {"guardian_fpr": True}, [1]):
        with pytest.raises(SpecError):
            check_claims(bad)
