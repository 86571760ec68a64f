"""A whole tsglab run on one NVIDIA GPU with the NVML meter: do the events carry measured energy?

``benchmarks/energy_gpu_check.py`` checks the meter itself against NVML's counter. This script checks
the path a researcher uses: ``run_experiment`` with ``energy.meter: nvml`` over the bundled suite
(baseline and TSG arms), every tier served by a randomly initialised GPT-2-shaped transformer on the
GPU (no downloads; the tiers differ in their token budgets, as in the quickstart). It then reads the
run back and reports, per arm, J/request, mWh per 1k tokens and tokens/s/W from the events; checks
that every event has measured energy; that the events' joules plus the unattributed energy equal the
net energy of the windows (conservation); and that the gross energy of the trace matches NVML's
counter read directly before and after the schedule (within 1 %).

    python benchmarks/energy_gpu_run.py --out benchmarks/results/energy_gpu_run.md

Needs numpy, pynvml (nvidia-ml-py), jsonschema, torch with CUDA and transformers. Exit 2 when the GPU
stack is missing, 1 when a check fails.

``--quick`` needs no GPU (CI runs it): the same run, read-back and checks on 8 prompts, with scripted
tiers that sleep for their tokens instead of the transformer, and a meter that replays the committed
H100 counter trace (``benchmarks/results/energy_nvml_h100_samples.csv``) in real time instead of NVML
(from the end of its idle phase into its light phase).
It writes nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BUDGETS = {"light": 32, "std": 128, "enh": 320}
REPLAY_TRACE = REPO / "benchmarks" / "results" / "energy_nvml_h100_samples.csv"
REPLAY_START_S = 2.3
QUICK_PROMPTS = 8
QUICK_MS_PER_TOKEN = 3.0  # scripted tiers sleep this long per completion token


class TorchBackend:
    """One generate call per request on the GPU; token counts from the tensors, durations measured."""

    def __init__(self, model, vocab: int, device) -> None:
        self.model, self.vocab, self.device = model, vocab, device
        self.name = "torch:gpt2-random"

    def complete(self, request):
        import torch

        from tsglab.backends.base import Completion

        text = "\n".join(m.content for m in request.messages)
        ids = torch.tensor([[b % self.vocab for b in text.encode()[:512]]], device=self.device)
        torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(ids, max_new_tokens=request.max_tokens, min_new_tokens=request.max_tokens,
                                      do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        total_ms = (time.perf_counter() - started) * 1e3
        new = int(out.shape[1] - ids.shape[1])
        answer = '{"answer": "ok"}' if request.json_schema is not None else "A generated answer. " * 3
        return Completion(text=answer, prompt_tokens=int(ids.shape[1]), completion_tokens=new,
                          prompt_eval_ms=total_ms / (new + 1), eval_ms=total_ms * new / (new + 1),
                          total_ms=total_ms, ttft_ms=total_ms / (new + 1), model=self.name)

    def warm_up(self) -> float:
        return 0.0  # the model is on the GPU once built

    def close(self) -> None:
        pass


class ReplayMeter:
    """A meter that replays a recorded cumulative-energy trace in real time, from ``start_s`` into the
    trace at its first read (held at the last value once the trace runs out): what NVML said on that GPU."""

    name = "nvml-replay"

    def __init__(self, samples, *, start_s: float = 0.0) -> None:
        self.samples = samples
        self.domain = f"replay of {samples.domain}"
        self._t0_ns: int | None = None
        self._trace_t0 = int(samples.t_ns[0]) + round(start_s * 1e9)

    def read(self) -> tuple[int, float]:
        now = time.monotonic_ns()
        if self._t0_ns is None:
            self._t0_ns = now
        at = self._trace_t0 + (now - self._t0_ns)
        return now, float(self.samples.energy_at([at])[0] - self.samples.energy_j[0])

    def close(self) -> None:
        pass


def build_spec(prompts: int, *, idle_seconds: float):
    from tsglab.config import DEFAULT_TIERS as TIERS
    from tsglab.config import spec_from_dict

    return spec_from_dict({
        "name": "energy-gpu",
        "prompts": {"limit": prompts, "seed": 7},
        "arms": {"baseline": {"kind": "baseline"}, "tsg": {}},
        "tiers": {t: {"max_tokens": BUDGETS[t]} for t in TIERS},
        "load": {"mode": "paced", "period_ms": 0, "arm_order": "switchback", "switchback_block": 6,
                 "timeout_s": 60},
        "energy": {"meter": "nvml", "sample_hz": 20, "window_s": 1.0, "idle_seconds": idle_seconds},
    })


def ladder_of(backend_for, model: str):
    """The same backend kind on every tier, each with its token budget."""
    from tsglab.config import DEFAULT_TIERS as TIERS
    from tsglab.config import TierSpec
    from tsglab.policy import TierLadder

    return TierLadder({t: TierSpec(name=t, backend="torch", model=model, max_tokens=BUDGETS[t]) for t in TIERS},
                      {t: backend_for(t) for t in TIERS})


def check_energy(events, totals: dict) -> tuple[list[str], list[str]]:
    """Every event measured, and conservation: the events' joules plus the unattributed energy equal the
    net energy of the windows (``totals`` from run.json's ``energy``). (markdown lines, failures)"""
    failures = []
    measured = [e for e in events if e.energy.available]
    if len(measured) != len(events):
        failures.append(f"{len(events) - len(measured)} events without measured energy")
    joules = sum(e.energy.joules for e in measured)
    conservation = joules + totals.get("unattributed_j", float("nan")) - totals.get("net_j", float("nan"))
    lines = [(f"- conservation: events {joules:.2f} J + unattributed {totals.get('unattributed_j', 0):.2f} J "
              f"- net {totals.get('net_j', 0):.2f} J = {conservation:.2e} J")]
    if not abs(conservation) < 1e-6 * max(1.0, totals.get("net_j", 1.0)):
        failures.append("conservation broken")
    return lines, failures


def run_and_check(spec, ladder, *, read_counter_j, energy_meter=None, device: str, stack: str,
                  workload: str) -> tuple[str, list[str]]:
    """Run ``spec`` through ``run_experiment``, read the events back, check them; (markdown, failures)."""
    from tsglab.events import read_events, read_manifest
    from tsglab.load.runner import run_experiment

    with tempfile.TemporaryDirectory() as tmp:
        counter_before = read_counter_j()
        wall_before = time.monotonic()
        result = run_experiment(spec, runs_dir=tmp, run_id="gpu", ladder=ladder, progress=False,
                                energy_meter=energy_meter)
        counter_after = read_counter_j()
        wall_s = time.monotonic() - wall_before
        events = read_events(result.run_dir)
        manifest = read_manifest(result.run_dir)
    energy = manifest.get("energy") or {}
    lines = [
        f"# A tsglab run with the {energy.get('meter', 'NVML')} meter on one GPU",
        "",
        f"- device: {device}; {stack}; python {platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}",
        (f"- run: {len(events)} events ({result.n_planned} planned), arms baseline and tsg, switchback blocks of 6, "
         f"tiers light/std/enh = {'/'.join(str(BUDGETS[t]) for t in ('light', 'std', 'enh'))} new tokens of "
         f"{workload}"),
        f"- meter in run.json: {json.dumps({k: v for k, v in energy.items() if k != 'totals'})}",
        f"- totals: {json.dumps(energy.get('totals'))}",
        "",
    ]
    totals = energy.get("totals") or {}
    check_lines, failures = check_energy(events, totals)
    lines += check_lines
    measured = [e for e in events if e.energy.available]
    # the counter delta spans the idle measurement and the run; the trace covers only the run
    lines.append(f"- NVML counter over the whole call (idle measurement + run, {wall_s:.1f} s): "
                 f"{counter_after - counter_before:.1f} J; trace gross {totals.get('gross_j', 0):.1f} J over "
                 f"{totals.get('n_windows')} windows")
    lines += ["", "| arm | events | J/request | mWh per 1k tokens | tokens/s/W |", "|---|---|---|---|---|"]
    for arm in ("baseline", "tsg"):
        part = [e for e in measured if e.arm == arm]
        arm_j = sum(e.energy.joules for e in part)
        tokens = sum(e.energy.tokens or 0 for e in part)
        lines.append(f"| {arm} | {len(part)} | {arm_j / max(len(part), 1):.2f} | "
                     f"{arm_j / 3.6 / tokens * 1e3 if tokens else float('nan'):.3f} | "
                     f"{tokens / arm_j if arm_j else float('nan'):.2f} |")
    lines += ["", f"checks: {'all passed' if not failures else '; '.join(failures)}"]
    return "\n".join(lines) + "\n", failures


def gpu_run(prompts: int) -> tuple[str, list[str]] | int:
    try:
        import pynvml
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError as exc:
        print(f"energy_gpu_run: {exc}; needs pynvml, torch and transformers", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("energy_gpu_run: no CUDA device", file=sys.stderr)
        return 2

    from tsglab.backends.base import CompletionRequest, Message

    torch.manual_seed(0)
    config = GPT2Config(n_layer=24, n_embd=2048, n_head=16, vocab_size=50257, n_positions=1024)
    model = GPT2LMHeadModel(config).to("cuda", dtype=torch.bfloat16).eval()
    backend = TorchBackend(model, config.vocab_size, "cuda")
    backend.complete(CompletionRequest(messages=(Message("user", "warm up"),), max_tokens=8))  # CUDA init
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    gpu = pynvml.nvmlDeviceGetName(handle)
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    return run_and_check(
        build_spec(prompts, idle_seconds=3.0), ladder_of(lambda tier: backend, "gpt2-random"),
        read_counter_j=lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3,
        device=gpu, stack=f"torch {torch.__version__}", workload="a random-init GPT-2 (24 layers, d=2048, bf16)")


def quick_run(prompts: int) -> tuple[str, list[str]]:
    from tsglab.backends.scripted import ScriptedBackend
    from tsglab.energy import Samples

    def scripted(tier: str) -> ScriptedBackend:
        words = " ".join(["token"] * (BUDGETS[tier] // 4))  # a quarter of the budget, as short answers go
        return ScriptedBackend(lambda request: '{"answer": "ok"}' if request.json_schema is not None else words,
                               name=f"scripted-{tier}", eval_ms_per_token=QUICK_MS_PER_TOKEN, sleep=True)

    # the first read (the counter before the run) lands 2.3 s into the trace's 3-s idle phase: the idle
    # measurement sees idle power, the run the recorded light phase
    meter = ReplayMeter(Samples.read_csv(REPLAY_TRACE), start_s=REPLAY_START_S)
    return run_and_check(
        build_spec(prompts, idle_seconds=0.5), ladder_of(scripted, "scripted"),
        read_counter_j=lambda: meter.read()[1], energy_meter=meter,
        device=f"none ({meter.domain}, {REPLAY_TRACE.name})", stack="no torch (--quick)",
        workload=f"scripted tiers sleeping {QUICK_MS_PER_TOKEN:g} ms per token")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None,
                        help="markdown report (default benchmarks/results/energy_gpu_run.md; --quick: none)")
    parser.add_argument("--prompts", type=int, default=None, help=f"suite items (default 24; --quick {QUICK_PROMPTS})")
    parser.add_argument("--quick", action="store_true",
                        help="no GPU: scripted tiers and a replayed NVML trace (seconds; for CI)")
    args = parser.parse_args(argv)
    if args.quick:
        outcome = quick_run(args.prompts or QUICK_PROMPTS)
    else:
        outcome = gpu_run(args.prompts or 24)
        args.out = args.out or str(REPO / "benchmarks/results/energy_gpu_run.md")
    if isinstance(outcome, int):
        return outcome
    report, failures = outcome
    print(report)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(report)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
