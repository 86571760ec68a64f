from __future__ import annotations

import math

import pytest
from conftest import scripted_ladder

from tsglab.backends.base import Completion
from tsglab.comparison import comparison_table, load_comparison, variant_spec
from tsglab.errors import BackendConnectError, SpecError
from tsglab.load.runner import run_experiment

BASE = """
name: cmp
spec:
  prompts: {limit: 6, seed: 1}
  arms: {tsg: {}}
  tiers:
    light: {max_tokens: 16}
    std: {max_tokens: 64, constrained_json: true}
    enh: {max_tokens: 128}
  load: {mode: paced, period_ms: 0, timeout_s: 5}
servers:
  llama: {kind: llama_cpp_server, model: smollm2-135m}
  ollama: {kind: ollama_proxy, upstream: llama}
variants:
  embedded: {backend: embedded}
  server: {backend: openai, server: llama, options: {json_mode: json_object_schema}}
  ollama: {backend: ollama, server: ollama, tiers: {enh: {max_tokens: 99}}}
"""


def write(tmp_path, text):
    path = tmp_path / "cmp.yaml"
    path.write_text(text)
    return path


def test_variants_point_every_tier_at_their_server_and_keep_the_base_settings(tmp_path):
    comparison = load_comparison(write(tmp_path, BASE))
    endpoints = {"llama": ("http://127.0.0.1:5001/v1", "smollm2"), "ollama": ("http://127.0.0.1:5002", "llama/x")}
    server = variant_spec(comparison, "server", endpoints)
    assert {t.backend for t in server.tiers.values()} == {"openai"}
    assert {t.endpoint for t in server.tiers.values()} == {"http://127.0.0.1:5001/v1"}
    assert server.tiers["std"].constrained_json
    assert server.tiers["std"].max_tokens == 64
    assert server.tiers["light"].options == {"json_mode": "json_object_schema"}
    ollama = variant_spec(comparison, "ollama", endpoints)
    assert ollama.tiers["enh"].model == "llama/x"
    assert ollama.tiers["enh"].max_tokens == 99
    assert variant_spec(comparison, "embedded", endpoints).tiers["light"].endpoint == ""
    assert variant_spec(comparison, "embedded", endpoints, {"prompts.limit": 2}).prompts.limit == 2


@pytest.mark.parametrize(("edit", "match"), [
    (("kind: llama_cpp_server, model", "kind: vllm, model"), r"servers.llama.kind must be one of"),
    (("upstream: llama", "upstream: nowhere"), r"servers.ollama.upstream must name a llama_cpp_server"),
    (("server: llama,", "server: gpu-box,"), r"variants.server.server 'gpu-box' is not in 'servers'"),
    (("{backend: embedded}", "{backend: embedded, port: 1}"), r"variants.embedded: unknown key\(s\) \['port'\]"),
    (("name: cmp", "name: cmp\nextra: 1"), r"unknown top-level key\(s\) \['extra'\]"),
])
def test_comparison_file_errors_name_the_key(tmp_path, edit, match):
    with pytest.raises(SpecError, match=match):
        load_comparison(write(tmp_path, BASE.replace(*edit)))


def test_a_missing_file_says_where_examples_live(tmp_path):
    with pytest.raises(SpecError, match=r"experiments/backends\.yaml"):
        load_comparison(tmp_path / "nope.yaml")


def _completion(text, tokens, ttft_ms, eval_ms):
    return Completion(text=text, prompt_tokens=10, completion_tokens=tokens, prompt_eval_ms=ttft_ms,
                      eval_ms=eval_ms, total_ms=ttft_ms + eval_ms, ttft_ms=ttft_ms, model="m")


def test_comparison_table_reads_each_variant_run(tmp_path):
    comparison = load_comparison(write(tmp_path, BASE))
    fast = scripted_ladder(lambda r: _completion('{"a": 1}' if r.json_schema else "Forty-two is the answer.",
                                                 11, 5.0, 100.0))
    calls = {"n": 0}

    def flaky(request):
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            return BackendConnectError("refused")
        return _completion('{"a": 1}' if request.json_schema else "Forty-two is the answer.", 21, 50.0, 100.0)

    runs = {}
    for variant, ladder in (("embedded", fast), ("server", scripted_ladder(flaky))):
        spec = variant_spec(comparison, variant, {"llama": ("http://127.0.0.1:1/v1", "m")})
        runs[variant] = run_experiment(spec, runs_dir=tmp_path, run_id=variant, ladder=ladder,
                                       progress=False).run_dir
    table = comparison_table(runs).set_index("variant")
    assert table.loc["embedded", "tokens_per_s"] == pytest.approx(10 / 0.1)  # 10 decode tokens in 100 ms
    assert table.loc["server", "tokens_per_s"] == pytest.approx(20 / 0.1)
    assert table.loc["embedded", "ttft_p50_ms"] == pytest.approx(5.0)
    assert table.loc["embedded", "error_rate"] == 0
    assert table.loc["server", "error_rate"] > 0
    assert math.isnan(table.loc["server", "j_per_request"])  # no meter: NaN and a reason, never 0
    assert table.loc["server", "energy"] != "measured"
    assert (table["n"] == 6).all()
    assert table["mean_quality"].between(0, 1).all()
    assert table["itl_p50_ms"].isna().all()  # scripted completions stream nothing: no inter-token latency
