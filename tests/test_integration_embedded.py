"""A small real experiment on the embedded llama.cpp backend (real inference, no mocks)."""

from __future__ import annotations

import pandas as pd
import pytest

from tsglab.config import load_spec
from tsglab.events import read_events, read_manifest

pytestmark = pytest.mark.integration
llama_cpp = pytest.importorskip("llama_cpp", reason="the embedded runtime is installed by `make setup`")


def test_quickstart_spec_runs_end_to_end_on_real_models(tmp_path):
    import tsglab

    # a generous timeout: this checks that real models answer end to end, and a loaded CI machine made one
    # 320-token constrained answer pass the quickstart's 30 s (it then ends as a timeout with no tokens)
    spec = load_spec("experiments/quickstart.yaml", {"prompts.limit": 7, "load.period_ms": 0,
                                                     "load.warmup_count": 2, "load.timeout_s": 180})
    result = tsglab.run(spec, runs_dir=tmp_path, run_id="it", progress=False)
    assert result.status == "complete"
    assert result.n_events == 14
    events = read_events(result.run_dir)
    assert {e.bucket["task"] for e in events} == {"arith", "classify", "code", "factual", "json", "multipart",
                                                     "open"}
    for e in events:
        first = e.attempts[0]
        assert first.completion_tokens > 0
        assert first.prompt_tokens > 0
        assert first.eval_ms + first.prompt_eval_ms > 0
        assert e.latency.raw_ms >= first.total_ms
        assert 0.0 <= e.quality.score <= 1.0
    assert read_manifest(result.run_dir)["status"] == "complete"
    report = tsglab.build_report(result.run_dir)
    assert (result.run_dir / "tables" / "headline.tex").exists()
    summary = pd.read_parquet(result.run_dir / "metrics_summary.parquet")
    assert set(summary["arm"]) == {"baseline", "tsg"}
    assert "p50_e2e_warm_ms" in set(summary["metric"])
    base = report.frames["baseline"]
    assert (base["final_tier"] == "enh").all()
    assert base["touched_top"].all()


def test_embedded_inference_is_deterministic_and_json_constrained():
    from tsglab.backends.base import CompletionRequest, Message
    from tsglab.backends.embedded import EmbeddedBackend
    from tsglab.jsoncontract import check_json_contract

    backend = EmbeddedBackend("smollm2-135m")
    schema = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
    request = CompletionRequest(messages=(Message("user", "Lena lives in Oslo. Return JSON with key city."),),
                                max_tokens=40, json_schema=schema)
    first, second = backend.complete(request), backend.complete(request)
    assert first.text == second.text
    assert check_json_contract(first.text, schema).ok


def test_embedded_timeout_raises_a_censoring_error():
    from tsglab.backends.base import CompletionRequest, Message
    from tsglab.backends.embedded import EmbeddedBackend
    from tsglab.errors import BackendTimeout

    backend = EmbeddedBackend("smollm2-135m")
    request = CompletionRequest(messages=(Message("user", "Write a long story about a lighthouse."),),
                                max_tokens=400, timeout_s=0.05)
    with pytest.raises(BackendTimeout, match=r"no answer within 0\.05 s") as info:
        backend.complete(request)
    assert info.value.elapsed_ms >= 50


def test_an_answer_does_not_depend_on_the_request_before_it():
    # With llama.cpp's prefix cache reused, this prompt asked twice in a row gave two different greedy
    # answers (batch splits change the arithmetic); each request now starts from an empty context.
    from tsglab.backends.base import CompletionRequest, Message
    from tsglab.backends.embedded import EmbeddedBackend
    prompt = "Write a Python function fact(n) that returns n factorial."  # a bundled item's prompt that showed it
    backend = EmbeddedBackend("smollm2-135m")
    system = Message("system", "Answer the request directly and concisely.")
    request = CompletionRequest(messages=(system, Message("user", prompt)), max_tokens=128)
    other = CompletionRequest(messages=(system, Message("user", "What is 2 + 2?")), max_tokens=8)
    backend.complete(other)
    after_other = backend.complete(request).text
    after_itself = backend.complete(request).text
    assert after_other == after_itself
