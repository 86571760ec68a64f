"""Runtime enforcement on one NVIDIA GPU with the NVML meter: what guarding answers costs in joules.

Text and compute are kept apart, and both are real:

- The answers' *text* comes from a real model. ``--record`` (CPU, no GPU) runs
  ``experiments/enforcement.yaml`` with its own tiers (SmolLM2-135M through the embedded llama.cpp
  backend) behind a recording wrapper: per request (sha256 of the request's messages, the tier, its
  ``max_tokens`` and whether JSON decoding was constrained) it stores the answer text, its
  ``completion_tokens`` and ``prompt_tokens`` (SmolLM2's tokenisation, chat template included) in
  ``benchmarks/results/enforcement_answers.jsonl``.
- The *compute* is an 8B model's. On the GPU the same spec runs through ``run_experiment`` with every
  tier served by a randomly initialised Llama-3-8B-shaped transformer (``energy_per_token.py``'s
  ``build_model``: hidden 4096, 32 layers, 32/8 heads, intermediate 14336, vocab 128256, bf16; no
  downloads — random weights cost the same arithmetic as trained ones). For a recorded request it
  processes a prompt of the recorded length, generates exactly the recorded ``completion_tokens``
  (``min_new_tokens = max_new_tokens``) and answers with the recorded text. A request not in the
  recording (a miss) gets a prompt of its UTF-8 byte length, the tier's ``max_tokens`` new tokens and a
  fixed benign answer; misses are counted and printed. A cancelled speculative attempt of parallel mode
  stops between tokens, as a serving engine would.

So the guardians' verdicts are those of the real SmolLM2 answers, and latency and energy those of an
8B-shaped model producing the same token counts. The energy comes from tsglab's NVML meter
(``energy: {meter: nvml}``, idle measured before the run, 1-s windows, idle subtracted).

The report gives per arm: requests, J/request (bootstrap CI), mWh per 1k tokens (bootstrap CI; tokens
= prompt + completion of the answer attempts, tsglab's definition) and per 1k generated tokens,
tokens/s/W, the violation rate reaching the user (the delivered answer flagged by the pii, secrets,
code or sql guardian; Clopper–Pearson CI), the blocked rate, the time a request waited on guardians
(P50/P95), wasted tokens of cancelled speculative attempts, and the coordinated-omission-corrected P95
latency; then the energy checks of ``energy_gpu_run.py``, the published per-framework energy claims
against the measured mWh per 1k tokens, and tsglab's own report tables where they can be computed.

    python benchmarks/enforcement_gpu_run.py --record          # CPU, writes the answers file
    python benchmarks/enforcement_gpu_run.py --out benchmarks/results/enforcement_gpu_run.md   # GPU

Needs pynvml (nvidia-ml-py), torch with CUDA and transformers for the GPU run (exit 2 without them), the
embedded backend for ``--record``. Exit 1 when a check fails. ``--from-run DIR`` re-renders the report
from a run directory this script wrote (``--keep-run``), no GPU needed.

``--quick`` needs no GPU (CI runs it): the same spec, replay, read-back, analysis and checks on a few
prompts, with the tiers replaying the recording by sleeping per token instead of the transformer, and
``energy_gpu_run.py``'s meter replaying the committed H100 counter trace. It writes nothing unless
``--out`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from energy_gpu_run import REPLAY_START_S, REPLAY_TRACE, ReplayMeter, check_energy  # noqa: E402
from energy_per_token import CLAIMS_MWH_PER_1K, J_PER_MWH, LLAMA3_8B, build_model  # noqa: E402

SPEC = REPO / "experiments" / "enforcement.yaml"
ANSWERS = REPO / "benchmarks" / "results" / "enforcement_answers.jsonl"
RESULTS_MD = REPO / "benchmarks" / "results" / "enforcement_gpu_run.md"
RECORD_PROMPTS = 24
GPU_PROMPTS = 24
QUICK_PROMPTS = 3
QUICK_MS_PER_TOKEN = 1.5  # --quick: replayed tiers sleep this long per completion token
MISS_TEXT = "Here is a short, general answer to the request."
MISS_JSON = '{"answer": "ok"}'
VIOLATION_GUARDIANS = ("pii", "secrets", "code", "sql")
PROMPT_CAP = 4096  # longest prompt (tokens) the replay processes
RESAMPLES = 2000
ALPHA = 0.05


# -- the recording ------------------------------------------------------------------------------------------

def request_key(request, tier: str) -> str:
    """What identifies a request across the CPU and the GPU run: its messages, tier, token budget and
    whether JSON decoding was constrained (the same messages are answered differently with and without)."""
    payload = {"tier": tier, "max_tokens": request.max_tokens, "constrained": request.json_schema is not None,
               "messages": [[m.role, m.content] for m in request.messages]}
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def read_answers(path: Path) -> tuple[dict, dict[str, dict]]:
    """(meta, key -> record) of an answers file; an empty recording when the file is missing."""
    if not path.is_file():
        return {"missing": str(path)}, {}
    meta: dict = {}
    records: dict[str, dict] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}, line {lineno}: not JSON ({exc.msg}); the file is written by "
                             f"`python benchmarks/enforcement_gpu_run.py --record`.") from None
        if "meta" in row:
            meta = row["meta"]
            continue
        missing = {"key", "tier", "completion_tokens", "prompt_tokens", "text"} - set(row)
        if missing:
            raise SystemExit(f"{path}, line {lineno}: missing field(s) {sorted(missing)}; re-record with --record.")
        records[row["key"]] = row
    return meta, records


class RecordingBackend:
    """Passes every request to ``inner`` and stores each finished answer under its :func:`request_key`,
    appending it to ``sink`` at once (a recording stopped part-way keeps what it has)."""

    def __init__(self, inner, tier: str, store: dict[str, dict], lock: threading.Lock, sink) -> None:
        self.inner, self.tier, self.store, self.lock, self.sink = inner, tier, store, lock, sink
        self.name = inner.name
        self.conflicts = 0

    def complete(self, request):
        completion = self.inner.complete(request)  # a cancelled or failed call is not recorded
        key = request_key(request, self.tier)
        row = {"key": key, "tier": self.tier, "max_tokens": request.max_tokens,
               "prompt_tokens": int(completion.prompt_tokens), "completion_tokens": int(completion.completion_tokens),
               "finish_reason": completion.finish_reason, "text": completion.text}
        with self.lock:
            if key in self.store:
                self.conflicts += self.store[key]["text"] != completion.text  # 0 with greedy decoding
            else:
                self.store[key] = row
                self.sink.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
                self.sink.flush()
        return completion

    def warm_up(self) -> float:
        return self.inner.warm_up()

    def close(self) -> None:
        self.inner.close()


class ReplayBackend:
    """Answers a recorded request with its recorded text after ``compute(prompt_tokens, new_tokens,
    cancel)`` has done the work of generating its recorded token count (returns the tokens generated;
    fewer once ``cancel`` is set). A request not in the recording is a miss (counted)."""

    def __init__(self, tier: str, records: dict[str, dict], compute: Callable, *, name: str, model: str,
                 budget: int, counts: dict[str, int], lock: threading.Lock) -> None:
        self.tier, self.records, self.compute = tier, records, compute
        self.name, self.model, self.budget = name, model, budget
        self.counts, self.lock = counts, lock

    def complete(self, request):
        from tsglab.backends.base import Completion
        from tsglab.errors import BackendCancelled

        record = self.records.get(request_key(request, self.tier))
        if record is not None:
            prompt = max(1, min(PROMPT_CAP, int(record["prompt_tokens"])))
            new, text = int(record["completion_tokens"]), record["text"]
        else:
            prompt = max(1, min(PROMPT_CAP, sum(len(m.content.encode()) for m in request.messages)))
            new, text = request.max_tokens, (MISS_JSON if request.json_schema is not None else MISS_TEXT)
        started = time.perf_counter()
        done = self.compute(prompt, max(1, new), request.cancel)
        total_ms = (time.perf_counter() - started) * 1e3
        cancelled = request.cancelled() and done < max(1, new)
        with self.lock:
            outcome = "hit" if record is not None else "miss"
            self.counts[f"{outcome}_{'cancelled' if cancelled else 'completed'}"] += 1
        if cancelled:
            raise BackendCancelled(f"{self.name}: cancelled after {done} tokens", elapsed_ms=total_ms,
                                   completion_tokens=done, prompt_tokens=prompt)
        return Completion(text=text, prompt_tokens=prompt, completion_tokens=new,
                          prompt_eval_ms=total_ms / (new + 1), eval_ms=total_ms * new / (new + 1),
                          total_ms=total_ms, ttft_ms=total_ms / (new + 1), model=self.model)

    def warm_up(self) -> float:
        return 0.0

    def close(self) -> None:
        pass


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def new_counts() -> dict[str, int]:
    return dict.fromkeys(("hit_completed", "hit_cancelled", "miss_completed", "miss_cancelled"), 0)


def replay_ladder(spec, records: dict[str, dict], compute: Callable, *, model: str, counts: dict[str, int]):
    from tsglab.policy import TierLadder

    lock = threading.Lock()
    return TierLadder(spec.tiers, {t: ReplayBackend(t, records, compute, name=f"replay:{model}", model=model,
                                                    budget=s.max_tokens, counts=counts, lock=lock)
                                   for t, s in spec.tiers.items()})


def load_enforcement_spec(prompts: int, **overrides):
    from tsglab.config import load_spec

    if not SPEC.is_file():
        raise SystemExit(f"{SPEC} is missing: this benchmark runs that spec.")
    return load_spec(SPEC, overrides={"prompts.limit": prompts, **overrides})


def recorded_prompt_ids(records: dict[str, dict]) -> list[str]:
    """The prompts of the spec's suite whose first request on the top rung (the baseline arm's) is in the
    recording, in suite order. The schedule runs prompts in its own order, so a recording stopped part-way
    holds some of the selected prompts, not a prefix of them (and the spec's selection may change later)."""
    from tsglab.backends.base import Completion
    from tsglab.policy import TierLadder
    from tsglab.suite import load_suite

    spec = load_enforcement_spec(1)
    top = list(spec.tiers)[-1]
    seen: list = []

    class Capture:
        name = "capture"

        def complete(self, request):
            seen.append(request)
            return Completion(text="", prompt_tokens=0, completion_tokens=0, prompt_eval_ms=0.0, eval_ms=0.0,
                              total_ms=0.0)

    ladder = TierLadder(spec.tiers, {t: Capture() for t in spec.tiers})
    chosen = []
    for item in load_suite(Path(spec.suite)):
        ladder.generate(top, item.prompt, task=item.task, json_schema=item.json_schema, timeout_s=None)
        if request_key(seen[-1], top) in records:
            chosen.append(item.id)
    return chosen


# -- recording on the CPU -----------------------------------------------------------------------------------

def record(prompts: int, out: Path) -> int:
    """Run the spec's own tiers on ``prompts`` prompts (no warm-ups, back to back, no meter) and write
    every answer to ``out`` as it comes; the first line is the recording's meta (rewritten at the end)."""
    from tsglab.load.runner import run_experiment
    from tsglab.load.session import build_ladder
    from tsglab.policy import TierLadder

    spec = load_enforcement_spec(prompts, **{"energy.meter": "none", "load.period_ms": 0, "load.warmup_count": 0})
    meta = {"spec": str(SPEC.relative_to(REPO)), "prompts": prompts, "arms": list(spec.arms),
            "tiers": {t: s.max_tokens for t, s in spec.tiers.items()},
            "models": sorted({f"{s.backend}:{s.model}" for s in spec.tiers.values()}),
            "prompt_tokens": "the backend's count (llama.cpp tokenisation, chat template included)",
            "recorded": time.strftime("%Y-%m-%d %H:%M")}
    inner = build_ladder(spec)
    store: dict[str, dict] = {}
    lock = threading.Lock()
    started = time.monotonic()
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as sink, tempfile.TemporaryDirectory() as tmp:
        sink.write(json.dumps({"meta": {**meta, "complete": False}}, ensure_ascii=False) + "\n")
        wrapped = {t: RecordingBackend(b, t, store, lock, sink) for t, b in inner.backends.items()}
        try:
            result = run_experiment(spec, runs_dir=tmp, run_id="record", ladder=TierLadder(inner.specs, wrapped),
                                    progress=False)
        finally:
            inner.close()
        meta.update(complete=True, events=result.n_planned, answers=len(store),
                    conflicts=sum(b.conflicts for b in wrapped.values()),
                    seconds=round(time.monotonic() - started, 1))
    rows = [json.dumps({"meta": meta}, ensure_ascii=False)]
    rows += [json.dumps(store[k], ensure_ascii=False, sort_keys=True) for k in sorted(store)]
    out.write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(json.dumps(meta, indent=1))
    print(f"answers written to {out}")
    return 0


# -- the analysis -------------------------------------------------------------------------------------------

def _bootstrap_ci(values, stat: Callable, seed: int) -> tuple[float, float]:
    """Percentile bootstrap interval (1 - ALPHA) of ``stat`` over resampled rows of ``values``."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(RESAMPLES)]
    lo, hi = np.quantile(draws, [ALPHA / 2, 1 - ALPHA / 2])
    return float(lo), float(hi)


def _ratio_mwh(rows) -> float:
    """mWh per 1k tokens of rows (joules, tokens): ratio of sums."""
    tokens = rows[:, 1].sum()
    return float(rows[:, 0].sum() / J_PER_MWH / tokens * 1e3) if tokens > 0 else math.nan


def _generated(event) -> int:
    return sum(int(a.completion_tokens or 0) for a in event.attempts) + sum(
        int(c.completion_tokens or 0) for c in (event.enforcement.calls if event.enforcement else ()))


def arm_rows(events) -> list[dict]:
    """One row of figures per arm (module docstring)."""
    import numpy as np

    from tsglab.policy.guardians import GUARDIANS
    from tsglab.stats import clopper_pearson, harrell_davis

    rows = []
    for seed, arm in enumerate(dict.fromkeys(e.arm for e in events)):
        part = [e for e in events if e.arm == arm]
        measured = [e for e in part if e.energy.available and e.energy.joules is not None]
        jt = np.array([[e.energy.joules, e.energy.tokens or 0.0] for e in measured], dtype=float).reshape(-1, 2)
        joules = float(jt[:, 0].sum()) if len(jt) else math.nan
        generated = sum(_generated(e) for e in measured)
        answered = [e for e in part if e.error is None]
        flagged = sum(any(GUARDIANS[g].check(e.answer).violated for g in VIOLATION_GUARDIANS) for e in answered)
        guarded = [e.enforcement for e in part if e.enforcement is not None]
        blocked = sum(x.outcome in ("block", "input_block") for x in guarded)
        check_ms = np.array([x.check_ms for x in guarded], dtype=float)
        co = np.array([e.latency.co_ms for e in answered], dtype=float)
        violation = clopper_pearson(flagged, len(answered), confidence=1 - ALPHA) if answered else None
        block_ci = clopper_pearson(blocked, len(part), confidence=1 - ALPHA) if part else None
        rows.append({
            "arm": arm, "requests": len(part), "measured": len(measured),
            "mode": guarded[0].mode if guarded else "-",
            "j_per_request": joules / len(measured) if measured else math.nan,
            "j_per_request_ci": (_bootstrap_ci(jt[:, 0], lambda v: float(v.mean()), seed) if len(jt)
                                 else (math.nan, math.nan)),
            "mwh_per_1k": _ratio_mwh(jt) if len(jt) else math.nan,
            "mwh_per_1k_ci": _bootstrap_ci(jt, _ratio_mwh, 100 + seed) if len(jt) else (math.nan,) * 2,
            "mwh_per_1k_generated": joules / J_PER_MWH / generated * 1e3 if generated else math.nan,
            "tokens_per_s_per_w": float(jt[:, 1].sum()) / joules if joules and joules > 0 else math.nan,
            "answered": len(answered), "violations": flagged,
            "violation_rate": flagged / len(answered) if answered else math.nan,
            "violation_ci": (violation.ci_low, violation.ci_high) if violation else (math.nan,) * 2,
            "blocked": blocked, "blocked_rate": blocked / len(part) if part else math.nan,
            "blocked_ci": (block_ci.ci_low, block_ci.ci_high) if block_ci else (math.nan,) * 2,
            "check_p50_ms": float(np.median(check_ms)) if len(check_ms) else math.nan,
            "check_p95_ms": float(np.quantile(check_ms, 0.95)) if len(check_ms) else math.nan,
            "wasted_tokens": sum(int(x.wasted_tokens) for x in guarded),
            "cancelled": sum(int(x.cancelled) for x in guarded),
            "remedies": sum(len(x.steps) for x in guarded),
            "co_p95_ms": float(harrell_davis(co, 0.95)) if len(co) >= 2 else math.nan,
        })
    return rows


def _ci(pair, fmt: str) -> str:
    lo, hi = pair
    return "-" if not (math.isfinite(lo) and math.isfinite(hi)) else f"[{format(lo, fmt)}, {format(hi, fmt)}]"


def _pct(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{100 * value:.1f}%"


def claims_line(rows: list[dict]) -> str:
    """The published per-framework claims (0.3-0.8 mWh per 1k tokens) against the measured figure."""
    lo_claim, hi_claim = min(CLAIMS_MWH_PER_1K.values()), max(CLAIMS_MWH_PER_1K.values())
    finite = [r for r in rows if math.isfinite(r["mwh_per_1k"])]
    if not finite:
        return "- published claims: no arm has measured energy"
    best = min(finite, key=lambda r: r["mwh_per_1k"])
    lo = best["mwh_per_1k_ci"][0]
    ratio = lo / hi_claim if math.isfinite(lo) else best["mwh_per_1k"] / hi_claim
    side = ("above every claim" if math.isfinite(lo) and lo > hi_claim else
            "overlapping the claims" if math.isfinite(lo) and lo <= hi_claim else "(no interval)")
    return (f"- published claims ({', '.join(f'{k} {v:g}' for k, v in CLAIMS_MWH_PER_1K.items())} mWh per 1k "
            f"tokens, {lo_claim:g}-{hi_claim:g}): the most frugal arm here, {best['arm']}, measured "
            f"{best['mwh_per_1k']:.2f} mWh per 1k tokens, 95% CI {_ci(best['mwh_per_1k_ci'], '.2f')}, net of idle "
            f"power: {side}, its lower bound {ratio:.0f}x the highest claim")


def report_tables(run_dir: Path, arms: list[str], pairs: int | None = None) -> list[str]:
    """tsglab's own report of each arm (the first ``pairs`` arms) against the baseline, where it can be
    computed, and the run's enforcement tables."""
    import warnings

    from tsglab.errors import TsglabError
    from tsglab.report.publish import to_markdown
    from tsglab.report.run_report import build_report

    baseline = next((a for a in arms if a.startswith("baseline")), None)
    if baseline is None:
        return []
    lines = ["", "## tsglab's report: each arm against the baseline", ""]
    section = None
    for arm in [a for a in arms if a != baseline][:pairs]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                report = build_report(run_dir, baseline_arm=baseline, gateway_arm=arm, write=False)
            lines += [f"### {arm} vs {baseline}", "", to_markdown("headline", report.headline).strip(), "",
                      to_markdown("energy", report.energy).strip(), ""]
            section = section or getattr(report, "enforcement", None)
        except (TsglabError, ValueError, KeyError, TypeError) as exc:  # a refusal of a small or odd run: print it
            lines += [f"### {arm} vs {baseline}", "", f"not computed: {type(exc).__name__}: {exc}"[:400], ""]
    if section is not None:  # the run's enforcement tables (every arm) and the spec's claims, once
        lines += ["## tsglab's report: runtime enforcement", ""]
        for name, (title, frame) in section.tables().items():
            lines += [to_markdown(name, frame, title=title).strip(), ""]
    return lines


def write_csv(rows: list[dict], path: Path) -> None:
    """The per-arm figures, one row per arm (an interval becomes two columns, _low and _high)."""
    import csv

    flat = []
    for row in rows:
        out: dict = {}
        for key, value in row.items():
            if isinstance(value, tuple):
                out[f"{key.removesuffix('_ci')}_ci_low"], out[f"{key.removesuffix('_ci')}_ci_high"] = value
            else:
                out[key] = value
        flat.append(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(flat[0]))
        writer.writeheader()
        writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in flat)


def render(run_dir: Path, info: dict) -> tuple[str, list[str]]:
    """The markdown report of a run directory written by :func:`execute`, and the failed checks."""
    from tsglab.events import read_events, read_manifest

    every = read_events(run_dir)
    events = [e for e in every if not e.in_warmup]
    manifest = read_manifest(run_dir)
    energy = manifest.get("energy") or {}
    counts = info["counts"]
    misses = counts["miss_completed"] + counts["miss_cancelled"]
    calls = sum(counts.values())
    lines = [
        "# Runtime enforcement on one GPU, with the NVML meter",
        "",
        f"- device: {info['device']}; {info['stack']}; python {info['python']}; {info['date']}",
        (f"- spec: {SPEC.relative_to(REPO)}, {info['prompts']} prompts x arms {', '.join(info['arms'])}; "
         f"{len(events)} measured events ({info['n_planned']} planned, warm-ups left out); run took "
         f"{info['wall_s']:.0f} s"),
        (f"- text: the answers SmolLM2-135M gave on the CPU (embedded llama.cpp), replayed from "
         f"{info['answers_file']} ({info['recorded']} recorded answers); compute: {info['workload']} "
         f"generating exactly each answer's recorded completion tokens after a prompt of its recorded length "
         f"(SmolLM2's tokenisation); guardian verdicts are the real answers', latency and energy the 8B shape's"),
        (f"- replay: {calls} backend calls, {counts['hit_completed']} recorded answers replayed, "
         f"{counts['hit_cancelled']} recorded attempts cancelled part-way, {misses} misses "
         f"({counts['miss_completed']} completed, {counts['miss_cancelled']} cancelled speculative attempts; a "
         f"miss gets the tier's max_tokens, a prompt of its UTF-8 byte length and a fixed benign answer)"),
        f"- meter in run.json: {json.dumps({k: v for k, v in energy.items() if k != 'totals'})}",
        "",
    ]
    totals = energy.get("totals") or {}
    check_lines, failures = check_energy(every, totals)  # warm-ups are metered too
    lines += check_lines
    lines.append(f"- NVML counter over the whole call (idle measurement + run, {info['wall_s']:.1f} s): "
                 f"{info['counter_j']:.1f} J; trace gross {totals.get('gross_j', 0):.1f} J, idle "
                 f"{totals.get('idle_j', 0):.1f} J, net {totals.get('net_j', 0):.1f} J over {totals.get('n_windows')} "
                 f"windows")
    if info.get("min_answers") and counts["hit_completed"] < info["min_answers"]:
        failures.append(f"only {counts['hit_completed']} recorded answers replayed")
    rows = arm_rows(events)
    if info.get("csv"):
        write_csv(rows, Path(info["csv"]))
    lines += ["", "## Per arm", "",
              ("| arm | mode | requests | J/request [95% CI] | mWh per 1k tokens [95% CI] | mWh per 1k generated "
               "| tokens/s/W | violations reaching the user [95% CI] | blocked [95% CI] | guard wait P50 / P95 ms "
               "| remedies | cancelled / wasted tokens | CO P95 ms |"),
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['arm']} | {r['mode']} | {r['requests']} | "
            f"{r['j_per_request']:.1f} {_ci(r['j_per_request_ci'], '.1f')} | "
            f"{r['mwh_per_1k']:.2f} {_ci(r['mwh_per_1k_ci'], '.2f')} | {r['mwh_per_1k_generated']:.1f} | "
            f"{r['tokens_per_s_per_w']:.3f} | {r['violations']}/{r['answered']} = {_pct(r['violation_rate'])} "
            f"{_ci(tuple(100 * v for v in r['violation_ci']), '.1f')} | {r['blocked']}/{r['requests']} = "
            f"{_pct(r['blocked_rate'])} {_ci(tuple(100 * v for v in r['blocked_ci']), '.1f')} | "
            f"{r['check_p50_ms']:.2f} / {r['check_p95_ms']:.2f} | {r['remedies']} | "
            f"{r['cancelled']} / {r['wasted_tokens']} | {r['co_p95_ms']:.0f} |")
    lines += ["", claims_line(rows), "",
              ("Energy per request is the meter's apportioned share net of idle power (1-s windows); tokens are "
               "prompt + completion of the answer attempts (tsglab's definition), 'generated' counts completion "
               "tokens of every call (judge and cancelled speculative attempts included). CIs: percentile "
               f"bootstrap over requests ({RESAMPLES} resamples) for energy, Clopper-Pearson for rates. A violation "
               f"reaching the user is a delivered answer flagged by any of {', '.join(VIOLATION_GUARDIANS)}; guard "
               "wait is the time a request waited on guardians (Enforcement.check_ms); CO P95 is the "
               "Harrell-Davis P95 of the coordinated-omission-corrected latency. Transformers' eager generate "
               "at batch 1 is far from a serving engine: the joules bound a serving stack's from above.")]
    lines += report_tables(run_dir, list(info["arms"]), info.get("report_pairs"))
    lines += ["", f"checks: {'all passed' if not failures else '; '.join(failures)}"]
    return "\n".join(lines) + "\n", failures


OPTIONS: dict = {}  # main's --csv, read by execute


def execute(spec, ladder, *, read_counter_j, energy_meter, info: dict, keep: Path | None) -> tuple[str, list[str]]:
    """Run ``spec`` through ``run_experiment``, then :func:`render` it; keep the run in ``keep`` if given."""
    from tsglab.load.runner import run_experiment

    info.update(OPTIONS)
    with tempfile.TemporaryDirectory() as tmp:
        counter_before = read_counter_j()
        wall_before = time.monotonic()
        result = run_experiment(spec, runs_dir=tmp, run_id="enforcement-gpu", ladder=ladder, progress=False,
                                energy_meter=energy_meter)
        info["counter_j"] = read_counter_j() - counter_before
        info["wall_s"] = time.monotonic() - wall_before
        info["n_planned"] = result.n_planned
        info["arms"] = list(spec.arms)
        info["date"] = time.strftime("%Y-%m-%d %H:%M")
        info["python"] = platform.python_version()
        (Path(result.run_dir) / "enforcement_gpu_run.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        outcome = render(Path(result.run_dir), info)
        if keep is not None:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(result.run_dir, keep)
    return outcome


def gpu_run(prompts: int, answers: Path, keep: Path | None, warmup: int = 0) -> tuple[str, list[str]] | int:
    try:
        import pynvml
        import torch
        import transformers
    except ImportError as exc:
        print(f"enforcement_gpu_run: {exc}; needs pynvml, torch and transformers", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("enforcement_gpu_run: no CUDA device", file=sys.stderr)
        return 2
    _, records = read_answers(answers)
    if not records:
        print(f"enforcement_gpu_run: no recorded answers in {answers}; run --record first", file=sys.stderr)
        return 2
    started = time.monotonic()
    model, weights, _ = build_model(torch, transformers, "cuda")
    vocab = LLAMA3_8B["vocab_size"]

    class Cancelled(transformers.StoppingCriteria):
        def __init__(self, cancel: threading.Event) -> None:
            self.cancel = cancel

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), self.cancel.is_set(), dtype=torch.bool, device=input_ids.device)

    def compute(prompt: int, new: int, cancel: threading.Event | None) -> int:
        ids = (torch.arange(prompt, device="cuda") * 7919 % vocab).unsqueeze(0)
        stop = transformers.StoppingCriteriaList([Cancelled(cancel)]) if cancel is not None else None
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                                 do_sample=False, pad_token_id=0, stopping_criteria=stop)
        torch.cuda.synchronize()
        return int(out.shape[1] - prompt)

    for prompt, new in ((64, 32), (512, 128)):  # kernels and caches of both shapes before the timed run
        begun = time.perf_counter()
        compute(prompt, new, None)
        print(f"warm-up: prompt {prompt} + {new} new tokens in {time.perf_counter() - begun:.2f} s", flush=True)
    build_s = time.monotonic() - started
    counts = new_counts()
    # the recorded prompts only; no warm-up requests (the recording has none; the model was warmed up above)
    ids = recorded_prompt_ids(records)[:prompts]
    spec = load_enforcement_spec(len(ids), **{"prompts.ids": ids, "prompts.tasks": [], "energy.meter": "nvml",
                                              "energy.window_s": 1.0, "load.warmup_count": warmup})
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    gpu = pynvml.nvmlDeviceGetName(handle)
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    info = {"device": gpu, "stack": f"torch {torch.__version__}, transformers {transformers.__version__}",
            "prompts": len(ids), "counts": counts, "recorded": len(records), "min_answers": 1,
            "answers_file": _shown(answers),
            "workload": (f"a random-init Llama-3-8B-shaped transformer ({weights / 1e9:.2f} B weights, bf16, "
                         f"transformers generate, greedy, batch 1; built and warmed up in "
                         f"{time.monotonic() - started:.0f} s)")}
    print(f"model built and warmed up in {build_s:.0f} s; running {len(ids)} recorded prompts", flush=True)
    return execute(spec, replay_ladder(spec, records, compute, model="llama3-8b-shape-random", counts=counts),
                   read_counter_j=lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3,
                   energy_meter=None, info=info, keep=keep)


def quick_run(prompts: int, answers: Path, keep: Path | None) -> tuple[str, list[str]]:
    from tsglab.energy import Samples

    _, records = read_answers(answers)

    def compute(prompt: int, new: int, cancel: threading.Event | None) -> int:
        for done in range(new):
            if cancel is not None and cancel.wait(QUICK_MS_PER_TOKEN / 1e3):
                return done
            if cancel is None:
                time.sleep(QUICK_MS_PER_TOKEN / 1e3)
        return new

    counts = new_counts()
    meter = ReplayMeter(Samples.read_csv(REPLAY_TRACE), start_s=REPLAY_START_S)
    spec = load_enforcement_spec(prompts, **{"energy.meter": "nvml", "energy.idle_seconds": 0.5,
                                             "load.period_ms": 0, "load.warmup_count": 0})
    info = {"device": f"none ({meter.domain}, {REPLAY_TRACE.name})", "stack": "no torch (--quick)",
            "prompts": prompts, "counts": counts, "recorded": len(records), "min_answers": 1 if records else 0,
            "answers_file": _shown(answers),
            "workload": f"replayed tiers sleeping {QUICK_MS_PER_TOKEN:g} ms per token",
            "report_pairs": 1}  # tsglab's report of one arm pair: seconds on 2 cores
    return execute(spec, replay_ladder(spec, records, compute, model="replay-sleep", counts=counts),
                   read_counter_j=lambda: meter.read()[1], energy_meter=meter, info=info, keep=keep)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None,
                        help=f"markdown report (GPU run: default {RESULTS_MD.name}; --quick: none)")
    parser.add_argument("--prompts", type=int, default=None,
                        help=f"suite items (record {RECORD_PROMPTS}, GPU {GPU_PROMPTS}, --quick {QUICK_PROMPTS})")
    parser.add_argument("--record", action="store_true", help="CPU: run the spec's own tiers and record the answers")
    parser.add_argument("--answers", default=str(ANSWERS),
                        help="the recorded answers (written by --record, read otherwise)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="GPU run: warm-up requests per arm (default 0, as recorded)")
    parser.add_argument("--csv", default=None, help="write the per-arm figures here as CSV")
    parser.add_argument("--keep-run", default=None, help="copy the run directory here (for --from-run)")
    parser.add_argument("--from-run", default=None, help="no run: re-render the report of a kept run directory")
    parser.add_argument("--quick", action="store_true",
                        help="no GPU: replayed tiers sleeping per token and a replayed NVML trace (seconds; for CI)")
    args = parser.parse_args(argv)
    keep = Path(args.keep_run) if args.keep_run else None
    OPTIONS["csv"] = args.csv
    if args.record:
        return record(args.prompts or RECORD_PROMPTS, Path(args.answers))
    if args.from_run:
        run_dir = Path(args.from_run)
        info = {**json.loads((run_dir / "enforcement_gpu_run.json").read_text(encoding="utf-8")), "csv": args.csv}
        outcome: tuple[str, list[str]] | int = render(run_dir, info)
    elif args.quick:
        outcome = quick_run(args.prompts or QUICK_PROMPTS, Path(args.answers), keep)
    else:
        outcome = gpu_run(args.prompts or GPU_PROMPTS, Path(args.answers), keep, args.warmup)
        args.out = args.out or str(RESULTS_MD)
    if isinstance(outcome, int):
        return outcome
    report, failures = outcome
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report, encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
