"""The replay kernel against its plain-Python twin, and the twin against the live gateway, on every bundled
prompt: the replayed route, attempts, final tier, cost and quality equal what the gateway did."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import tsglab.replay.data as replay_data
from tsglab.backends.base import CompletionRequest
from tsglab.backends.scripted import ScriptedBackend
from tsglab.config import ABLATIONS, BASELINE, PAPER_TSG, PolicyConfig, TierSpec
from tsglab.policy import TierLadder, handle
from tsglab.replay import SUMMARY_COLUMNS, ConfigGrid, collect, load_replay, replay, replay_python, replay_summary
from tsglab.suite import load_suite

LADDER = ("light", "std", "enh")
ANSWERS = (
    "A clear and complete answer to the request, with the reasoning spelled out.",
    "ok",
    "",
    "I'm sorry, but I can't help with that.",
    '{"answer": "yes", "items": [1, 2, 3]}',
    "not json at all",
    "def solve(x):\n    return x",
)


def scripted_reply(tier: str):
    """A deterministic answer per (prompt, tier, repair turn or not): a mix that fails and passes checks."""

    def reply(request: CompletionRequest) -> str:
        prompt = next(m.content for m in request.messages if m.role == "user")
        repair = any(m.role == "assistant" for m in request.messages)
        digest = hashlib.sha256(f"{tier}|{repair}|{prompt}".encode()).digest()
        return ANSWERS[digest[0] % len(ANSWERS)]

    return reply


def scripted_ladder() -> TierLadder:
    backends = {t: ScriptedBackend(scripted_reply(t), name=f"scripted:{t}", eval_ms_per_token=1.0 + 3 * i,
                                   prompt_ms=0.5 + i) for i, t in enumerate(LADDER)}
    return TierLadder({t: TierSpec(name=t, backend="scripted") for t in LADDER}, backends)


def cheap_quality(text: str) -> float:
    return (len(text) % 7) / 6


class _Score:
    def __init__(self, text: str) -> None:
        self.score = cheap_quality(text)


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    items = load_suite()
    original = replay_data.score_answer
    replay_data.score_answer = lambda item, text: _Score(text)  # code answers would run sandboxes: not the point
    try:
        data = collect(items, scripted_ladder(), tmp_path_factory.mktemp("replay"), timeout_s=30)
    finally:
        replay_data.score_answer = original
    return items, data


CONFIGS = [
    PAPER_TSG,
    BASELINE,
    PolicyConfig(kind="baseline", baseline_tier="light", label="light"),
    *(PolicyConfig(label=name, **values) for name, values in ABLATIONS.items()),
    PolicyConfig(label="strict", min_answer_chars=1, check_refusal=False, max_upgrades=1),
    PolicyConfig(label="low", thr_std=0.1, thr_enh=0.3, json_floor="light", code_floor="light"),
    PolicyConfig(label="high", thr_std=1.2, thr_enh=1.5, def_floor="std", force_light_len=300),
    PolicyConfig(label="nofloor", json_floor="light", same_tier_repair=False, max_upgrades=0),
]


def test_collect_records_every_initial_cell_and_the_repairs_a_failure_asks_for(collected):
    items, data = collected
    assert data.n_prompts == len(items)
    assert data.ladder == LADDER
    coverage = data.coverage()
    assert coverage["initial"] == 1.0
    assert coverage["repair"] == 1.0
    assert data.present[:, :, 1].sum() > 0  # some answers failed and were repaired


def test_the_saved_data_set_reads_back_equal(collected, tmp_path):
    _, data = collected
    data.save(tmp_path)
    again = load_replay(tmp_path)
    for name in ("chars", "marks", "task", "present", "json_ok", "length", "quality", "cost_ms"):
        np.testing.assert_array_equal(getattr(again, name), getattr(data, name))
    assert again.prompt_ids == data.prompt_ids
    assert again.ladder == data.ladder


def test_the_kernel_equals_the_python_twin(collected):
    _, data = collected
    grid = ConfigGrid.from_configs(CONFIGS, LADDER)
    result = replay(data, grid)
    for c, config in enumerate(CONFIGS):
        for p in range(data.n_prompts):
            q, cost, latency, initial, final, attempts, flags = replay_python(data, config, p)
            got = (result.quality[c, p], result.cost_ms[c, p], result.latency_ms[c, p], result.initial[c, p],
                   result.final[c, p], result.attempts[c, p], result.flags[c, p])
            assert got == pytest.approx((q, cost, latency, initial, final, attempts, flags), abs=1e-9), (config, p)


def test_the_python_twin_equals_the_live_gateway_on_every_bundled_prompt(collected):
    items, data = collected
    ladder = scripted_ladder()
    agree = total = 0
    for config in CONFIGS:
        for p, item in enumerate(items):
            handled = handle(ladder, config, item.prompt, json_schema=item.json_schema, timeout_s=30)
            ex = handled.execution
            q, cost, _latency, initial, final, attempts, flags = replay_python(data, config, p)
            live = (LADDER.index(handled.decision.tier), LADDER.index(ex.final_tier), len(ex.attempts),
                    sum(a.cost_ms for a in ex.attempts), cheap_quality(ex.text))
            assert flags & 1 == 0, (config.label, item.id)  # the default checks' repairs cover every path here
            total += 1
            agree += live == pytest.approx((initial, final, attempts, cost, q), abs=1e-9)
    assert agree == total, f"{agree}/{total} prompt-policy pairs agree"


def test_a_wrong_kernel_is_caught(collected):
    """The agreement test can fail: a grid whose repair flag is flipped replays differently."""
    _, data = collected
    grid = ConfigGrid.from_configs([PAPER_TSG], LADDER)
    flipped = ConfigGrid(grid.matrix.copy(), LADDER)
    flipped.matrix[0, 13] = 0.0  # same_tier_repair off
    a, b = replay(data, grid), replay(data, flipped)
    assert (a.attempts != b.attempts).any()


def test_grid_rows_read_back_as_policies():
    grid = ConfigGrid.product(PAPER_TSG, {"thr_std": [0.2, 0.4, 0.9], "thr_enh": [0.5, 0.85],
                                          "json_floor": ["light", "std"]}, LADDER)
    assert len(grid) == 2 * 4  # of the 6 threshold pairs, the two with thr_std=0.9 > thr_enh are left out
    config = grid.config(0)
    assert config.thr_std == 0.2
    assert config.thr_enh == 0.5
    assert config.json_floor == "light"
    assert ConfigGrid.from_configs([config], LADDER).matrix.tolist() == grid.matrix[:1].tolist()


def test_the_summary_kernel_equals_the_means_of_the_full_kernel(collected):
    _, data = collected
    grid = ConfigGrid.from_configs(CONFIGS, LADDER)
    full = replay(data, grid).summary()
    fast = replay_summary(data, grid)
    for j, name in enumerate(SUMMARY_COLUMNS):
        np.testing.assert_allclose(fast[:, j], full[name], rtol=1e-12, atol=1e-12, err_msg=name)
    # weights are resample counts: doubling every prompt changes nothing, dropping prompts does
    np.testing.assert_allclose(replay_summary(data, grid, np.full(data.n_prompts, 2.0)), fast, rtol=1e-12)
    weights = np.zeros(data.n_prompts)
    weights[:10] = 1
    subset = replay_summary(data, grid, weights)
    np.testing.assert_allclose(subset[:, 1], replay(data, grid).cost_ms[:, :10].mean(axis=1), rtol=1e-12)
