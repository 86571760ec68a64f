"""Check tsglab's energy meter against NVML's total-energy counter on one NVIDIA GPU.

Runs a randomly initialised GPT-2-shaped model (no downloads) through phases of different intensity
(idle, light, heavy, idle) while

- three samplers run at ``--hz`` (default 20): the NVML energy counter, power integration of the
  instantaneous power field, and power integration of ``nvmlDeviceGetPowerUsage`` (1-s average on
  Ampere-and-newer), and
- a separate thread reads the NVML energy counter directly at 1-s boundaries.

It compares per-window energy (1, 2 and 5 s windows) from each sampled trace, interpolated at the
window bounds, with the counter's own delta over the same bounds; reports idle power, the sampler's
achieved rate and CPU cost, and apportions the generate calls (as requests) with conservation
checked. Output: a markdown report (``--out``) and optionally the raw counter samples (``--samples``).

    python benchmarks/energy_gpu_check.py --out benchmarks/results/energy_nvml.md \
        --samples benchmarks/results/energy_nvml_samples.csv

Needs numpy, pynvml (the nvidia-ml-py wheel), torch with CUDA and transformers. Exits 2 when NVML or
the GPU stack is unavailable, 1 when apportioning breaks conservation (or, with ``--strict``, when a
target is missed), 0 otherwise. Total runtime is about 1.5-2 minutes.

``--quick`` needs no GPU (CI runs it): it replays the committed counter traces
(``benchmarks/results/energy_nvml_*_samples.csv``) through the same analysis — per-window errors of the
trace thinned to 10 and 5 Hz against the counter's own readings at the window bounds, the counter's
refresh cadence, apportioning (numpy kernel checked against its plain-Python twin) of synthetic
requests laid over the recorded phases, and the report — and writes nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import math
import platform
import re
import statistics
import sys
import threading
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WINDOWS_S = (1, 2, 5)
TARGET_REL_ERR = 0.01
PYNVML_MISSING = (
    "energy_gpu_check: the python module pynvml is not installed here, so NVML cannot be read.\n"
    "Carry the nvidia-ml-py wheel (pure Python): on a machine with internet run\n"
    "    pip download nvidia-ml-py --no-deps -d wheels/\n"
    "copy wheels/ over, then\n"
    "    pip install --no-index wheels/nvidia_ml_py-*.whl"
)


class CheckFailed(SystemExit):
    """Exit with a clear one-paragraph message on stderr."""

    def __init__(self, message: str, code: int = 2) -> None:
        print(f"FAILED: {message}", file=sys.stderr)
        super().__init__(code)


def require_pynvml():
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        raise CheckFailed(PYNVML_MISSING) from None


def load_energy_package(repo: Path = REPO):
    """``tsglab.energy`` from this checkout. If tsglab's package ``__init__`` cannot import here (a heavy
    dependency missing on the GPU box), load ``tsglab.energy`` under a bare ``tsglab`` namespace."""
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        return importlib.import_module("tsglab.energy")
    except ImportError as exc:
        print(f"note: `import tsglab` failed here ({exc}); loading tsglab.energy alone", file=sys.stderr)
        for name in [m for m in sys.modules if m == "tsglab" or m.startswith("tsglab.")]:
            del sys.modules[name]
        stub = types.ModuleType("tsglab")
        stub.__path__ = [str(repo / "tsglab")]
        sys.modules["tsglab"] = stub
        return importlib.import_module("tsglab.energy")


class BoundaryReader(threading.Thread):
    """Reads the NVML counter directly at ``t0 + k * period`` (absolute deadlines), independently of the
    samplers: the reference the sampled traces are compared with."""

    def __init__(self, read, period_s: float = 1.0) -> None:
        super().__init__(name="boundary-reader", daemon=True)
        self._read = read
        self._period_ns = round(period_s * 1e9)
        self._stop_event = threading.Event()
        self.points: list[tuple[int, float]] = []

    def run(self) -> None:
        t0 = time.monotonic_ns()
        k = 0
        while True:
            self.points.append(self._read())
            k += 1
            wait_s = (t0 + k * self._period_ns - time.monotonic_ns()) / 1e9
            if self._stop_event.wait(max(0.0, wait_s)):
                return

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def window_errors(trace, boundaries: list[tuple[int, float]], every: int) -> dict:
    """Relative error of the trace's interpolated energy over non-overlapping windows of ``every``
    boundary steps, against the boundary counter deltas. Only windows inside the trace are used."""
    t_lo, t_hi = int(trace.t_ns[0]), int(trace.t_ns[-1])
    inside = [(t, e) for t, e in boundaries if t_lo <= t <= t_hi]
    errors, signed = [], []
    for i in range(0, len(inside) - every, every):
        (ta, ea), (tb, eb) = inside[i], inside[i + every]
        reference = eb - ea
        if reference <= 0:
            continue
        estimate = float(trace.energy_at([tb])[0] - trace.energy_at([ta])[0])
        signed.append((estimate - reference) / reference)
        errors.append(abs(signed[-1]))
    if not errors:
        return {"n": 0, "median": math.nan, "p95": math.nan, "max": math.nan, "bias": math.nan}
    ordered = sorted(errors)
    return {"n": len(errors), "median": statistics.median(errors),
            "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
            "max": ordered[-1], "bias": statistics.fmean(signed)}


def counter_cadence(trace) -> dict:
    """How often the counter's value actually changes in the trace: NVML refreshes it in steps."""
    steps = [(t, e1 - e0) for t, e0, e1 in zip(trace.t_ns[1:].tolist(), trace.energy_j[:-1].tolist(),
                                               trace.energy_j[1:].tolist(), strict=True)]
    change_t = [t for t, de in steps if de > 0]
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(change_t)]
    return {"unchanged_fraction": sum(1 for _, de in steps if de == 0) / len(steps) if steps else math.nan,
            "update_ms": statistics.median(gaps_ms) if gaps_ms else math.nan}


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:  # metadata missing (a vendored copy): the version is only informative
        return "?"


def call_cost_us(fn, n: int = 200) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def _pct(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{100 * x:.3f} %"


def _num(x, fmt: str = ".2f") -> str:
    return "n/a" if x is None or not math.isfinite(x) else format(x, fmt)


def render_report(r: dict) -> str:
    """Markdown for the results dict ``run_check`` builds (kept separate so it can be tested)."""
    lines = [
        "# Energy meter check on NVML",
        "",
        (f"- device: {r['gpu_name']} (GPU {r['gpu_index']}), driver {r['driver']}, pynvml {r['pynvml_version']}, "
         f"torch {r['torch_version']}, transformers {r['transformers_version']}, python {r['python']}"),
        f"- date: {r['date']}; workload: random-init GPT-2 ({r['model']}), phases {r['phases']}",
        (f"- sampler target {r['hz']} Hz; achieved {_num(r['hz_achieved'])} Hz (counter), "
         f"{_num(r['hz_achieved_instant'])} Hz (instant power), {_num(r['hz_achieved_average'])} Hz (avg power); "
         f"missed deadlines {r['missed_deadlines']}, read errors {r['read_errors']}"),
        (f"- sampler CPU per sample: {_num(r['cpu_us_per_sample'], '.1f')} µs (counter sampler thread); NVML call "
         f"cost: counter {_num(r['us_counter'], '.1f')} µs, instant power field {_num(r['us_instant'], '.1f')} µs, "
         f"nvmlDeviceGetPowerUsage {_num(r['us_average'], '.1f')} µs"),
        f"- instantaneous power field (NVML_FI_DEV_POWER_INSTANT): {r['instant_supported']}",
        f"- idle power (counter, {r['idle_seconds']} s after model load): {_num(r['idle_w'])} W",
        (f"- counter refresh: its value changed every {_num(r['update_ms'], '.1f')} ms (median); "
         f"{_pct(r['unchanged_fraction'])} of successive samples saw no change"),
        "",
        "## Per-window energy vs the NVML counter read directly at the window bounds",
        "",
        f"Target: median relative error within {_pct(TARGET_REL_ERR)} for windows >= 1 s.",
        "",
        "| trace | window | n | median rel. err | p95 | max | mean signed err | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in r["window_rows"]:
        ok = "met" if math.isfinite(row["median"]) and row["median"] <= TARGET_REL_ERR else "MISSED"
        lines.append(f"| {row['trace']} | {row['window_s']} s | {row['n']} | {_pct(row['median'])} | "
                     f"{_pct(row['p95'])} | {_pct(row['max'])} | {_pct(row['bias'])} | {ok} |")
    lines += [
        "",
        "## Apportioning the generate calls (window 1 s, counter trace, idle subtracted)",
        "",
        (f"- requests: {r['n_requests']}; windows: {r['n_windows']} ({r['unattributed_windows']} with nothing in "
         f"flight, {r['clipped_windows']} clipped at 0)"),
        (f"- gross {_num(r['gross_j'])} J, idle {_num(r['idle_j'])} J, net {_num(r['net_j'])} J = attributed "
         f"{_num(r['attributed_j'])} J + unattributed {_num(r['unattributed_j'])} J; conservation error "
         f"{r['conservation_error_j']:.3e} J ({'ok' if r['conservation_ok'] else 'BROKEN'})"),
        f"- apportioning time: {_num(r['apportion_ms'], '.1f')} ms",
        "",
        "| phase | requests | tokens | J | J/request | mWh per 1k tokens | tokens/s/W |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in r["phase_rows"]:
        lines.append(f"| {row['phase']} | {row['n']} | {row['tokens']:.0f} | {_num(row['joules'])} | "
                     f"{_num(row['j_per_request'], '.3f')} | {_num(row['mwh_per_1k'], '.4f')} | "
                     f"{_num(row['tok_per_j'], '.2f')} |")
    lines += ["", "Phase timeline (s from trace start): " + ", ".join(
        f"{name} {a:.1f}-{b:.1f}" for name, a, b in r["phase_bounds"]), ""]
    return "\n".join(lines)


def _gpu_stack():
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise CheckFailed(f"torch and transformers are needed for the workload ({exc}).") from None
    if not torch.cuda.is_available():
        raise CheckFailed("torch sees no CUDA device (torch.cuda.is_available() is False).")
    return torch, transformers


def run_check(args) -> dict:
    pynvml = require_pynvml()
    energy = load_energy_package()
    try:
        counter = energy.NvmlCounter.open(args.gpu_index)
        ref_counter = energy.NvmlCounter.open(args.gpu_index)
    except energy.MeterUnavailable as exc:
        raise CheckFailed(f"NVML energy counter unavailable: {exc.reason}") from None
    instant = energy.NvmlPowerIntegration.open(args.gpu_index, prefer_instant=True)
    average = energy.NvmlPowerIntegration.open(args.gpu_index, prefer_instant=False)
    torch, transformers = _gpu_stack()
    device = f"cuda:{args.gpu_index}"

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=24, n_embd=2048, n_head=16, n_positions=1024, vocab_size=50257)
    model = transformers.GPT2LMHeadModel(config).to(device=device, dtype=torch.bfloat16).eval()
    vocab = config.vocab_size

    def generate(batch: int, prompt: int, new: int) -> int:
        ids = torch.randint(0, vocab, (batch, prompt), device=device)
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        return batch * (prompt + new)

    generate(2, 16, 4)  # warm up kernels before anything is measured
    scale = args.scale
    idle_probe = energy.Sampler(counter, sample_hz=args.hz)
    idle_w = idle_probe.measure_idle(3.0 * scale)

    samplers = {
        "counter": energy.Sampler(counter, sample_hz=args.hz, csv_path=args.samples),
        "instant": energy.Sampler(instant, sample_hz=args.hz),
        "average": energy.Sampler(average, sample_hz=args.hz),
    }
    reader = BoundaryReader(ref_counter.read, 1.0)
    for sampler in samplers.values():
        sampler.start()
    reader.start()
    requests, phase_of, phase_bounds = [], {}, []
    t_start = time.monotonic_ns()

    def phase(name: str, seconds: float, batch: int = 0, prompt: int = 0, new: int = 0, gap_s: float = 0.0):
        begin = time.monotonic_ns()
        end = begin + round(seconds * scale * 1e9)
        while time.monotonic_ns() < end:
            if batch == 0:
                time.sleep(max(0.0, (end - time.monotonic_ns()) / 1e9))
                break
            dispatched = time.monotonic_ns()
            tokens = generate(batch, prompt, new)
            rid = f"{name}-{len(requests)}"
            requests.append(energy.RequestSpan(rid, dispatched, time.monotonic_ns(), tokens))
            phase_of[rid] = name
            if gap_s:
                time.sleep(gap_s)
        phase_bounds.append((name, (begin - t_start) / 1e9, (time.monotonic_ns() - t_start) / 1e9))

    phase("idle", 3.0)
    phase("light", 25.0, batch=1, prompt=32, new=32, gap_s=0.25)
    phase("heavy", 30.0, batch=32, prompt=256, new=64)
    phase("idle-after", 6.0)
    reader.stop()
    traces = {name: sampler.stop() for name, sampler in samplers.items()}

    us_counter = call_cost_us(counter.read)
    us_instant = call_cost_us(instant.read_power_w)
    us_average = call_cost_us(average.read_power_w)

    window_rows = []
    labels = {"counter": "counter trace (interpolated)", "instant": "instant-power integration",
              "average": "1-s-average power integration"}
    for name, trace in traces.items():
        for w in WINDOWS_S:
            row = window_errors(trace, reader.points, w)
            row.update(trace=labels[name], window_s=w)
            window_rows.append(row)

    t0 = time.perf_counter()
    result = energy.apportion(traces["counter"], requests, window_s=1.0, idle_w=idle_w)
    apportion_ms = (time.perf_counter() - t0) * 1e3
    scale_j = max(1.0, result.net_j)
    conservation_ok = abs(result.conservation_error_j) <= 1e-9 * scale_j
    phase_rows = []
    for name in ("light", "heavy"):
        idx = [i for i, rid in enumerate(result.request_ids) if phase_of[rid] == name]
        joules = sum(float(result.joules[i]) for i in idx)
        tokens = sum(float(result.tokens[i]) for i in idx)
        phase_rows.append({"phase": name, "n": len(idx), "tokens": tokens, "joules": joules,
                           "j_per_request": joules / len(idx) if idx else math.nan,
                           "mwh_per_1k": joules / 3.6 / tokens * 1e3 if tokens else math.nan,
                           "tok_per_j": tokens / joules if joules > 0 else math.nan})

    handle = pynvml.nvmlDeviceGetHandleByIndex(args.gpu_index)
    driver = pynvml.nvmlSystemGetDriverVersion()
    counter_sampler = samplers["counter"]
    report = {
        "gpu_name": counter.domain.split(":", 1)[1], "gpu_index": args.gpu_index,
        "driver": driver.decode() if isinstance(driver, bytes) else driver,
        "pynvml_version": package_version("nvidia-ml-py"),
        "torch_version": torch.__version__, "transformers_version": transformers.__version__,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": "24 layers, d=2048, 16 heads, bf16",
        "phases": "idle 3 s, light (batch 1) 25 s, heavy (batch 32 x 256+64) 30 s, idle 6 s",
        "hz": args.hz, "hz_achieved": traces["counter"].sample_hz_achieved,
        "hz_achieved_instant": traces["instant"].sample_hz_achieved,
        "hz_achieved_average": traces["average"].sample_hz_achieved,
        "missed_deadlines": sum(s.missed_deadlines for s in samplers.values()),
        "read_errors": sum(s.read_errors for s in samplers.values()),
        "cpu_us_per_sample": counter_sampler.cpu_s_per_sample * 1e6,
        "us_counter": us_counter, "us_instant": us_instant, "us_average": us_average,
        "instant_supported": "supported" if instant.power_reading == "instant" else "NOT supported (1-s average used)",
        "idle_seconds": 3.0 * scale, "idle_w": idle_w, "window_rows": window_rows,
        "n_requests": len(requests), "n_windows": result.n_windows,
        "unattributed_windows": result.unattributed_windows, "clipped_windows": result.clipped_windows,
        "gross_j": result.gross_j, "idle_j": result.idle_j, "net_j": result.net_j,
        "attributed_j": result.attributed_j, "unattributed_j": result.unattributed_j,
        "conservation_error_j": result.conservation_error_j, "conservation_ok": conservation_ok,
        "apportion_ms": apportion_ms, "phase_rows": phase_rows, "phase_bounds": phase_bounds,
        "nvml_handle_ok": handle is not None,
        **counter_cadence(traces["counter"]),
    }
    for source in (counter, ref_counter, instant, average):
        source.close()
    return report


def _phase_timeline(report_md: Path) -> list[tuple[str, float, float]]:
    """The ``Phase timeline`` line of a committed report: ``[(phase, start_s, end_s), ...]``."""
    text = report_md.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("Phase timeline"):
            phases = re.findall(r"([\w-]+) (\d+(?:\.\d+)?)-(\d+(?:\.\d+)?)", line.partition(":")[2])
            if not phases:
                break
            return [(name, float(a), float(b)) for name, a, b in phases]
    raise CheckFailed(f"{report_md}: no 'Phase timeline (s from trace start): name a-b, ...' line to replay.")


def _synthetic_requests(energy, t0_ns: int, phases, tokens_per_phase: dict[str, tuple[float, float, float]]):
    """Request spans over the recorded phases: per phase ``(period_s, duration_s, tokens)``."""
    requests, phase_of = [], {}
    for name, start_s, end_s in phases:
        if name not in tokens_per_phase:
            continue
        period_s, duration_s, tokens = tokens_per_phase[name]
        t = start_s
        while t + duration_s <= end_s:
            rid = f"{name}-{len(requests)}"
            requests.append(energy.RequestSpan(rid, t0_ns + round(t * 1e9), t0_ns + round((t + duration_s) * 1e9),
                                               tokens))
            phase_of[rid] = name
            t += period_s
    return requests, phase_of


# the recorded workload's shape: light = batch 1 x (32 + 32) tokens with 0.25 s gaps, heavy = back-to-back
# batches of 32 x (256 + 64); durations as measured on the H100/H200 runs (about 0.35 s and 0.8 s)
REPLAY_REQUESTS = {"light": (0.6, 0.35, 64.0), "heavy": (0.8, 0.79, 32.0 * (256 + 64))}


def replay_check(samples_csv: Path, report_md: Path) -> dict:
    """The analysis half of :func:`run_check` on a committed counter trace: no GPU, NVML or torch.

    The reference is the counter itself: the samples nearest each 1-s mark (odd sample indices) stand
    for the boundary reader; the traces under test keep every 2nd or every 4th sample (even indices), so
    no reference reading is in them and their window errors are interpolation error at 10 and 5 Hz.
    """
    import numpy as np

    energy = load_energy_package()
    trace = energy.Samples.read_csv(samples_csv)
    t, e = trace.t_ns, trace.energy_j
    t0 = int(t[0])
    n_bounds = int((t[-1] - t0) // 1_000_000_000) + 1
    marks = t0 + np.arange(n_bounds, dtype=np.int64) * 1_000_000_000
    first_after = np.searchsorted(t, marks)
    odd = np.unique(first_after + (first_after % 2 == 0))  # the first odd-indexed sample at or after each mark
    boundaries = [(int(t[i]), float(e[i])) for i in odd[odd < t.size]]
    thinned = {f"counter trace thinned to {trace.sample_hz_target / k:g} Hz (interpolated)":
               energy.Samples.from_arrays(t[::k], e[::k], meter=trace.meter, domain=trace.domain,
                                          sample_hz_target=trace.sample_hz_target / k) for k in (2, 4)}
    window_rows = []
    for label, thin in thinned.items():
        for w in WINDOWS_S:
            row = window_errors(thin, boundaries, w)
            row.update(trace=label, window_s=w)
            window_rows.append(row)

    phases = _phase_timeline(report_md)
    idle_end_s = next((b for name, a, b in phases if name == "idle"), 3.0)
    idle_t = t0 + round(idle_end_s * 1e9)
    idle_w = float(trace.energy_at([idle_t])[0] - e[0]) / idle_end_s
    requests, phase_of = _synthetic_requests(energy, t0, phases, REPLAY_REQUESTS)
    started = time.perf_counter()
    result = energy.apportion(trace, requests, window_s=1.0, idle_w=idle_w)
    apportion_ms = (time.perf_counter() - started) * 1e3
    twin = energy.apportion(trace, requests, window_s=1.0, idle_w=idle_w, engine="python")
    twin_gap = float(np.nanmax(np.abs(result.joules - twin.joules)))
    scale_j = max(1.0, result.net_j)
    phase_rows = []
    for name in ("light", "heavy"):
        idx = [i for i, rid in enumerate(result.request_ids) if phase_of[rid] == name]
        joules = sum(float(result.joules[i]) for i in idx)
        tokens = sum(float(result.tokens[i]) for i in idx)
        phase_rows.append({"phase": name, "n": len(idx), "tokens": tokens, "joules": joules,
                           "j_per_request": joules / len(idx) if idx else math.nan,
                           "mwh_per_1k": joules / 3.6 / tokens * 1e3 if tokens else math.nan,
                           "tok_per_j": tokens / joules if joules > 0 else math.nan})
    na = "n/a (replay)"
    return {
        "gpu_name": f"{trace.domain.split(':', 1)[-1]} trace replayed from {samples_csv.name}", "gpu_index": 0,
        "driver": na, "pynvml_version": na, "torch_version": na, "transformers_version": na,
        "python": platform.python_version(), "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": "not run: synthetic request spans over the recorded phases",
        "phases": ", ".join(f"{name} {b - a:.1f} s" for name, a, b in phases),
        "hz": trace.sample_hz_target, "hz_achieved": trace.sample_hz_achieved,
        "hz_achieved_instant": math.nan, "hz_achieved_average": math.nan,
        "missed_deadlines": na, "read_errors": na, "cpu_us_per_sample": math.nan,
        "us_counter": math.nan, "us_instant": math.nan, "us_average": math.nan, "instant_supported": na,
        "idle_seconds": idle_end_s, "idle_w": idle_w, "window_rows": window_rows,
        "n_requests": len(requests), "n_windows": result.n_windows,
        "unattributed_windows": result.unattributed_windows, "clipped_windows": result.clipped_windows,
        "gross_j": result.gross_j, "idle_j": result.idle_j, "net_j": result.net_j,
        "attributed_j": result.attributed_j, "unattributed_j": result.unattributed_j,
        "conservation_error_j": result.conservation_error_j,
        "conservation_ok": abs(result.conservation_error_j) <= 1e-9 * scale_j and twin_gap <= 1e-9 * scale_j,
        "apportion_ms": apportion_ms, "phase_rows": phase_rows, "phase_bounds": phases,
        "twin_gap_j": twin_gap, "n_boundaries": len(boundaries),
        **counter_cadence(trace),
    }


def quick(out: str | None) -> int:
    """Replay every committed trace that has its report beside it; see :func:`replay_check`."""
    results_dir = REPO / "benchmarks" / "results"
    pairs = [(csv, csv.with_name(csv.name.replace("_samples.csv", ".md")))
             for csv in sorted(results_dir.glob("energy_nvml_*_samples.csv"))]
    pairs = [(csv, md) for csv, md in pairs if md.is_file()]
    if not pairs:
        raise CheckFailed(f"--quick replays energy_nvml_*_samples.csv with its report from {results_dir}; "
                          "none found.")
    texts, broken = [], []
    for csv, md in pairs:
        started = time.monotonic()
        results = replay_check(csv, md)
        text = render_report(results).replace("# Energy meter check on NVML", f"# Energy meter check, replay of "
                                              f"{csv.name} (--quick, no GPU)", 1)
        text += (f"\nReference: the counter's own readings nearest each 1-s mark ({results['n_boundaries']}); "
                 f"apportioning numpy kernel vs plain-Python twin: max |Δ| {results['twin_gap_j']:.2e} J. "
                 f"Replay time {time.monotonic() - started:.2f} s.\n")
        texts.append(text)
        print(text)
        if not results["conservation_ok"]:
            broken.append(csv.name)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("\n".join(texts), encoding="utf-8")
        print(f"report written to {out}")
    if broken:
        print(f"FAILED: apportioning broke conservation (or left its plain twin) on {', '.join(broken)}",
              file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None,
                        help="markdown report (default benchmarks/results/energy_nvml.md; --quick: none)")
    parser.add_argument("--samples", default=None, help="write the counter sampler's raw samples (CSV) here")
    parser.add_argument("--gpu-index", type=int, default=0)
    parser.add_argument("--hz", type=float, default=20.0)
    parser.add_argument("--scale", type=float, default=1.0, help="stretch (>1) or shorten (<1) every phase")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a counter-trace target is missed")
    parser.add_argument("--quick", action="store_true",
                        help="no GPU: replay the committed counter traces through the analysis (seconds; CI)")
    args = parser.parse_args(argv)
    if args.quick:
        return quick(args.out)
    if args.out is None:
        args.out = str(REPO / "benchmarks" / "results" / "energy_nvml.md")
    if args.samples:
        Path(args.samples).parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = run_check(args)
    text = render_report(results)
    text += f"\nTotal runtime of the check: {time.monotonic() - started:.1f} s.\n"
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"report written to {out}" + (f"; samples to {args.samples}" if args.samples else ""))
    if not results["conservation_ok"]:
        print("FAILED: apportioning broke conservation", file=sys.stderr)
        return 1
    missed = [row for row in results["window_rows"] if row["trace"].startswith("counter")
              and not (row["median"] <= TARGET_REL_ERR)]
    if args.strict and missed:
        print(f"FAILED: counter-trace target missed for windows {[r['window_s'] for r in missed]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
