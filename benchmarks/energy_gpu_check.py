"""Check tsglab's energy meter against NVML's total-energy counter on one NVIDIA GPU.

Runs a randomly initialised GPT-2-shaped model (no downloads) through phases of different intensity
(idle, light, heavy, idle) while

- three samplers run at ``--hz`` (default 20): the NVML energy counter, power integration of the
  instantaneous power field, and power integration of ``nvmlDeviceGetPowerUsage`` (1-s average on
  Ampere-and-newer),
- a separate thread reads the NVML energy counter directly about once a second, each read at a
  random offset (seeded, uniform in the middle half of a sampling period) from the counter sampler's
  own reads, and
- the main thread reads the counter directly at each request's start and end.

Two comparisons follow. Per-window energy (1, 2 and 5 s windows) from each sampled trace, interpolated
at the reference reads' times, against the counter's own delta between those reads; and each
request's apportioned energy (1-s windows, idle subtracted) against the counter read at its start and
end. Errors are shown next to the counter's step (the smallest non-zero change between samples; NVML
refreshes the counter every 100 ms), so a reader sees whether an error is below the counter's
resolution. A reference read that coincides with a sample (closer than ``COINCIDE_NS``) would make the
comparison measure nothing (the trace holds that very reading): such rows are flagged and the live
check exits 1. Output: a markdown report (``--out``) and optionally the raw counter samples
(``--samples``).

    python benchmarks/energy_gpu_check.py --out benchmarks/results/energy_nvml_h200.md \
        --samples benchmarks/results/energy_nvml_h200_samples.csv

Needs numpy, pynvml (the nvidia-ml-py wheel), torch with CUDA and transformers. Exits 2 when NVML or
the GPU stack is unavailable, 1 when apportioning breaks conservation, a reference read coincides with
a sample, or the self-test fails (or, with ``--strict``, when a target is missed), 0 otherwise. Total
runtime is about 1.5-2 minutes.

``--quick`` needs no GPU (CI runs it): it replays the committed counter traces
(``benchmarks/results/energy_nvml_*_samples.csv``) through the same analysis - the trace thinned to
10 and 5 Hz against held-out counter readings picked at random (seeded) inside each thinned sampling
period, apportioning (numpy kernel checked against its plain-Python twin) of synthetic requests whose
bounds are held-out readings, and the report - and writes nothing unless ``--out`` is given. Both the
live check and ``--quick`` run a self-test: the trace compared with its own samples must give zero
error and be flagged, or the check fails.
"""

from __future__ import annotations

import argparse
import bisect
import importlib
import itertools
import math
import platform
import random
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
SEED = 20261122
# A reference read closer than this to a sample of the trace under test "coincides" with it: one NVML
# counter read takes ~3.4 ms and two reads that close see the same counter value, so the trace then
# holds the reference itself. Live reads are placed at least GUARD_FRACTION of a period away.
COINCIDE_NS = 5_000_000
GUARD_FRACTION = 0.25
COINCIDES = "reference coincides with samples: this comparison measures nothing"
# NVML's counter value moves only every 100 ms, and on the H200 run only at every 2nd read of a 20 Hz
# sampler: a read in the 100 ms after the sampler's refreshing read returns that very value. So the
# reference's period is drawn at random among the sampler periods of one refresh interval, not always
# the same one (which gave exactly zero error on every window, by value rather than by time).
REFRESH_NS = 100_000_000
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


# -- where the reference reads go ----------------------------------------------------------------------

def random_offsets(n: int, period_ns: int, rng: random.Random, guard_fraction: float = GUARD_FRACTION) -> list[int]:
    """``n`` offsets into a sampling period of ``period_ns``, uniform on [guard, period - guard] with
    guard = ``guard_fraction`` x period: a read placed there never lands on the sampler's own read."""
    if not 0 < guard_fraction < 0.5:
        raise ValueError(f"`guard_fraction` must be in (0, 0.5); got {guard_fraction!r}.")
    guard = math.ceil(guard_fraction * period_ns)
    offsets = [round(rng.uniform(guard, period_ns - guard)) for _ in range(n)]
    assert all(guard <= off <= period_ns - guard for off in offsets), "an offset left the guarded band"
    return offsets


def nearest_gaps_ns(times_ns, sample_t_ns) -> list[int]:
    """Distance from each time to the nearest of the (sorted) sample times."""
    samples = [int(s) for s in sample_t_ns]
    gaps = []
    for t in times_ns:
        i = bisect.bisect_left(samples, int(t))
        near = [abs(int(t) - samples[j]) for j in (i - 1, i) if 0 <= j < len(samples)]
        gaps.append(min(near) if near else math.inf)
    return gaps


class RandomOffsetReader(threading.Thread):
    """Reads the NVML counter directly about every ``every_s``, each read at a random offset (seeded)
    inside one of the counter sampler's periods: the reference the sampled traces are compared with.

    The sampler reads at absolute deadlines ``start + k * period``, so its first sample's stamp fixes its
    grid; a read placed at grid + offset with the offset in the middle of the period stays clear of the
    sampler's reads for the whole run (checked afterwards with :func:`nearest_gaps_ns`). Which period of
    a counter refresh interval (``REFRESH_NS``) it lands in is random too."""

    def __init__(self, read, sampler, every_s: float = 1.0, seed: int = SEED) -> None:
        super().__init__(name="random-offset-reader", daemon=True)
        self._read = read
        self._sampler = sampler
        self._every_ns = round(every_s * 1e9)
        self._rng = random.Random(seed)
        self._stop_event = threading.Event()
        self.points: list[tuple[int, float]] = []
        self.skipped = 0

    def run(self) -> None:
        while self._sampler.n_samples == 0:
            if self._stop_event.wait(0.002):
                return
        origin = int(self._sampler.samples().t_ns[0])
        period_ns = round(1e9 / self._sampler.sample_hz)
        periods_per_read = max(1, round(self._every_ns / period_ns))
        periods_per_refresh = max(1, round(REFRESH_NS / period_ns))
        k = 0
        while True:
            k += 1
            period = k * periods_per_read + self._rng.randrange(periods_per_refresh)
            target = origin + period * period_ns + random_offsets(1, period_ns, self._rng)[0]
            wait_s = (target - time.monotonic_ns()) / 1e9
            if wait_s < 0:  # fell behind (a stall): skip the slot rather than read at an unplanned time
                self.skipped += 1
                continue
            if self._stop_event.wait(wait_s):
                return
            self.points.append(self._read())

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def own_samples_reference(trace, every_ns: int = 1_000_000_000) -> list[tuple[int, float]]:
    """The trace's own samples nearest each ``every_ns`` mark: a reference that coincides with the
    samples, for the self-test (the comparison must then show zero error and be flagged)."""
    t, e = trace.t_ns.tolist(), trace.energy_j.tolist()
    picked: list[tuple[int, float]] = []
    mark = t[0]
    while mark <= t[-1]:
        i = min(bisect.bisect_left(t, mark), len(t) - 1)
        if not picked or picked[-1][0] != t[i]:
            picked.append((t[i], e[i]))
        mark += every_ns
    return picked


def heldout_reference(trace, k: int, rng: random.Random, every_ns: int = 1_000_000_000) -> list[tuple[int, float]]:
    """For each ``every_ns`` mark, one counter reading left out of the trace thinned to every ``k``-th
    sample: drawn uniformly among the ``k - 1`` readings inside the thinned sampling period that holds
    the mark. The replay's stand-in for :class:`RandomOffsetReader`."""
    if k < 2:
        raise ValueError(f"`k` must be >= 2 so that readings are held out of the thinned trace; got {k}.")
    t, e = trace.t_ns.tolist(), trace.energy_j.tolist()
    picked: list[tuple[int, float]] = []
    mark = t[0]
    while True:
        period = (bisect.bisect_right(t, mark) - 1) // k
        if (period + 1) * k >= len(t):
            break
        i = period * k + rng.randint(1, k - 1)
        assert i % k != 0, "a held-out reading is in the thinned trace"
        picked.append((t[i], e[i]))
        mark += every_ns
    return picked


# -- the comparisons -----------------------------------------------------------------------------------

def distribution(values: list[float]) -> dict:
    """Median, P95 (nearest rank) and max of ``values``; NaN when empty."""
    if not values:
        return {"median": math.nan, "p95": math.nan, "max": math.nan}
    ordered = sorted(values)
    return {"median": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1,
                                                                     math.ceil(0.95 * len(ordered)) - 1)],
            "max": ordered[-1]}


def window_errors(trace, boundaries: list[tuple[int, float]], every: int, *, sample_t_ns=None) -> dict:
    """Relative error of the trace's interpolated energy over non-overlapping windows of ``every``
    reference steps, against the reference counter deltas. Only windows inside the trace are used.

    With ``sample_t_ns`` (the times of the samples the trace holds), each reference read used is checked
    for coinciding with a sample (closer than ``COINCIDE_NS``): ``n_coincident`` of ``n_refs``."""
    t_lo, t_hi = int(trace.t_ns[0]), int(trace.t_ns[-1])
    inside = [(t, e) for t, e in boundaries if t_lo <= t <= t_hi]
    errors, signed, energies, used, exact = [], [], [], set(), 0
    for i in range(0, len(inside) - every, every):
        (ta, ea), (tb, eb) = inside[i], inside[i + every]
        reference = eb - ea
        if reference <= 0:
            continue
        estimate = float(trace.energy_at([tb])[0] - trace.energy_at([ta])[0])
        signed.append((estimate - reference) / reference)
        errors.append(abs(signed[-1]))
        exact += estimate == reference
        energies.append(reference)
        used.update((ta, tb))
    row = {"n": len(errors), **distribution(errors), "bias": statistics.fmean(signed) if signed else math.nan,
           "window_j": statistics.median(energies) if energies else math.nan,
           "n_refs": len(used), "n_coincident": None, "min_gap_ms": math.nan, "n_exact": exact}
    if sample_t_ns is not None and used:
        gaps = nearest_gaps_ns(sorted(used), sample_t_ns)
        row.update(n_coincident=sum(1 for g in gaps if g < COINCIDE_NS), min_gap_ms=min(gaps) / 1e6)
    return row


def coincides(row: dict) -> bool:
    """Whether a window row's reference coincides with the trace under test: in time (a read closer than
    ``COINCIDE_NS`` to a sample) or in value (every window exactly equal, so the reference reads returned
    what the trace already held)."""
    if row.get("n_coincident") is None:
        return False
    return bool(row["n_coincident"]) or (row["n"] > 0 and row["n_exact"] == row["n"])


def reference_note(row: dict) -> str:
    n, bad = row.get("n_refs", 0), row.get("n_coincident")
    if bad is None:
        return "n/a (another quantity)"
    if n and bad == n:
        return COINCIDES
    if bad:
        return f"{bad} of {n} reads coincide with samples: INVALID"
    if coincides(row):
        return (f"reference equals the trace in every window (exactly zero error, reads >= {row['min_gap_ms']:.1f} "
                "ms from samples returned the samples' values): this comparison measures nothing")
    return f"random offsets, >= {row['min_gap_ms']:.1f} ms from samples"


def selftest(trace, label: str) -> tuple[dict, bool]:
    """Compare ``trace`` with its own samples: the error must be exactly zero and the row flagged as
    coinciding, or the check cannot tell a real comparison from a vacuous one."""
    row = window_errors(trace, own_samples_reference(trace), 1, sample_t_ns=trace.t_ns)
    row.update(trace=f"self-test: {label} vs its own samples", window_s=1)
    passed = row["n"] > 0 and row["max"] == 0.0 and reference_note(row) == COINCIDES
    return row, passed


def counter_cadence(trace) -> dict:
    """How often the counter's value actually changes in the trace (NVML refreshes it in steps), and the
    step itself: the smallest (and median) non-zero change between successive samples."""
    steps = [(t, e1 - e0) for t, e0, e1 in zip(trace.t_ns[1:].tolist(), trace.energy_j[:-1].tolist(),
                                               trace.energy_j[1:].tolist(), strict=True)]
    change_t = [t for t, de in steps if de > 0]
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(change_t)]
    nonzero = [de for _, de in steps if de > 0]
    return {"unchanged_fraction": sum(1 for _, de in steps if de == 0) / len(steps) if steps else math.nan,
            "update_ms": statistics.median(gaps_ms) if gaps_ms else math.nan,
            "step_j": min(nonzero) if nonzero else math.nan,
            "step_median_j": statistics.median(nonzero) if nonzero else math.nan}


def equal_to_preceding_sample(boundaries: list[tuple[int, float]], trace) -> tuple[int, int]:
    """How many reference reads returned exactly the value of the trace's last sample before them (of how
    many inside the trace): all of them means the counter moved only on the sampler's own reads."""
    t, e = trace.t_ns.tolist(), trace.energy_j.tolist()
    hits = inside = 0
    for t_ref, e_ref in boundaries:
        i = bisect.bisect_left(t, t_ref) - 1
        if 0 <= i < len(t) - 1:
            inside += 1
            hits += e_ref == e[i]
    return hits, inside


def step_during(trace, spans: list[tuple[int, int]]) -> float:
    """Median non-zero counter change between successive samples inside the given spans."""
    t, e = trace.t_ns.tolist(), trace.energy_j.tolist()
    steps = []
    for a, b in spans:
        lo, hi = bisect.bisect_left(t, a), bisect.bisect_right(t, b)
        steps += [y - x for x, y in itertools.pairwise(e[lo:hi]) if y > x]
    return statistics.median(steps) if steps else math.nan


def request_boundary_rows(result, reads: dict, phase_of: dict, idle_w: float, trace) -> list[dict]:
    """Each request's apportioned energy against the counter read at its start and end, per phase.

    ``reads[request_id] = ((t_start, e_start), (t_end, e_end))``; the direct net energy is
    ``e_end - e_start - idle_w * duration``. Errors are in joules and relative to the request's direct
    gross energy (net can be near zero); ``within_step`` is the share of requests off by less than one
    counter step of that phase (its median non-zero change between samples, from ``trace``), and
    ``total_err`` the phase's summed apportioned energy against its summed direct net."""
    rows = []
    for phase in dict.fromkeys(phase_of.values()):
        abs_j, rel, signed, appo_sum, direct_sum, gross = [], [], [], 0.0, 0.0, []
        for i, rid in enumerate(result.request_ids):
            if phase_of.get(rid) != phase or rid not in reads or not math.isfinite(float(result.joules[i])):
                continue
            (t0, e0), (t1, e1) = reads[rid]
            direct_gross = e1 - e0
            direct_net = direct_gross - idle_w * (t1 - t0) / 1e9
            err = float(result.joules[i]) - direct_net
            abs_j.append(abs(err))
            signed.append(err)
            gross.append(direct_gross)
            if direct_gross > 0:
                rel.append(abs(err) / direct_gross)
            appo_sum += float(result.joules[i])
            direct_sum += direct_net
        if not abs_j:
            continue
        step_j = step_during(trace, [(reads[r][0][0], reads[r][1][0]) for r, p in phase_of.items()
                                     if p == phase and r in reads])
        rows.append({"phase": phase, "n": len(abs_j), "gross_median_j": statistics.median(gross), "step_j": step_j,
                     "abs_j": distribution(abs_j), "rel": distribution(rel), "bias_j": statistics.fmean(signed),
                     "within_step": sum(1 for a in abs_j if a < step_j) / len(abs_j) if step_j > 0 else math.nan,
                     "apportioned_j": appo_sum, "direct_net_j": direct_sum,
                     "total_err": (appo_sum - direct_sum) / direct_sum if direct_sum > 0 else math.nan})
    return rows


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


def _target(row: dict) -> str:
    if coincides(row):
        return "INVALID"
    return "met" if math.isfinite(row["median"]) and row["median"] <= TARGET_REL_ERR else "MISSED"


def _phase_rows(result, phase_of: dict) -> list[dict]:
    rows = []
    for name in ("light", "heavy"):
        idx = [i for i, rid in enumerate(result.request_ids) if phase_of[rid] == name]
        joules = sum(float(result.joules[i]) for i in idx)
        tokens = sum(float(result.tokens[i]) for i in idx)
        rows.append({"phase": name, "n": len(idx), "tokens": tokens, "joules": joules,
                     "j_per_request": joules / len(idx) if idx else math.nan,
                     "mwh_per_1k": joules / 3.6 / tokens * 1e3 if tokens else math.nan,
                     "tok_per_j": tokens / joules if joules > 0 else math.nan})
    return rows


def render_report(r: dict) -> str:
    """Markdown for the results dict ``run_check`` builds (kept separate so it can be tested)."""
    step_j = r["step_j"]
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
         f"{_pct(r['unchanged_fraction'])} of successive samples saw no change; counter step (the smallest "
         f"non-zero change between samples) {_num(step_j)} J, median step {_num(r['step_median_j'])} J"),
        f"- reference: {r['reference']}",
        "",
        "## Per-window energy vs the NVML counter read directly at the window bounds",
        "",
        (f"Target: median relative error within {_pct(TARGET_REL_ERR)} for windows >= 1 s. The counter step "
         "column is the smallest counter change as a share of the median window's energy: an error below it "
         "is below the counter's resolution. A row whose reference reads coincide with the trace's samples "
         "compares the trace with itself and is INVALID."),
        "",
        ("| trace | window | n | median rel. err | p95 | max | mean signed err | counter step, % of window "
        "| reference reads | target |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["window_rows"]:
        step_pct = step_j / row["window_j"] if row["window_j"] else math.nan
        lines.append(f"| {row['trace']} | {row['window_s']} s | {row['n']} | {_pct(row['median'])} | "
                     f"{_pct(row['p95'])} | {_pct(row['max'])} | {_pct(row['bias'])} | {_pct(step_pct)} | "
                     f"{reference_note(row)} | {_target(row)} |")
    lines += [
        "",
        "## Per-request energy vs the counter read at each request's start and end",
        "",
        ("Apportioned (1-s windows, idle subtracted, shared by tokens in flight) minus direct (counter delta "
         "over the request less idle power x duration); relative errors are of the request's direct gross "
         "energy; 'within one step' counts requests off by less than the phase's median counter step."),
        "",
        ("| phase | requests | direct gross J (median) | counter step J | abs. err J: median | p95 | max "
         "| rel. err: median | p95 | max | mean signed err J | within one step "
         "| phase total: apportioned vs direct net |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["request_rows"]:
        lines.append(
            f"| {row['phase']} | {row['n']} | {_num(row['gross_median_j'])} | {_num(row['step_j'])} | "
            f"{_num(row['abs_j']['median'])} | "
            f"{_num(row['abs_j']['p95'])} | {_num(row['abs_j']['max'])} | {_pct(row['rel']['median'])} | "
            f"{_pct(row['rel']['p95'])} | {_pct(row['rel']['max'])} | {_num(row['bias_j'])} | "
            f"{_pct(row['within_step'])} | {_num(row['apportioned_j'])} J vs {_num(row['direct_net_j'])} J "
            f"({_pct(row['total_err'])}) |")
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


def verdict_problems(r: dict) -> list[str]:
    """Why a results dict must fail the check: broken conservation, a failed self-test, or a real
    comparison whose reference reads coincide with the samples."""
    problems = []
    if not r["conservation_ok"]:
        problems.append("apportioning broke conservation (or left its plain twin)")
    if not r["selftest_passed"]:
        problems.append("self-test failed: the trace compared with its own samples was not flagged as "
                        f"'{COINCIDES}' with zero error")
    bad = [f"{row['trace']} {row['window_s']} s" for row in r["window_rows"]
           if not row["trace"].startswith("self-test") and coincides(row)]
    if bad:
        problems.append(f"reference reads coincide with samples in: {', '.join(bad)}")
    return problems


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
        request_counter = energy.NvmlCounter.open(args.gpu_index)
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
    reader = RandomOffsetReader(ref_counter.read, samplers["counter"], 1.0, seed=args.seed)
    for sampler in samplers.values():
        sampler.start()
    reader.start()
    requests, phase_of, phase_bounds, reads = [], {}, [], {}
    t_start = time.monotonic_ns()

    def phase(name: str, seconds: float, batch: int = 0, prompt: int = 0, new: int = 0, gap_s: float = 0.0):
        begin = time.monotonic_ns()
        end = begin + round(seconds * scale * 1e9)
        while time.monotonic_ns() < end:
            if batch == 0:
                time.sleep(max(0.0, (end - time.monotonic_ns()) / 1e9))
                break
            first = request_counter.read()
            tokens = generate(batch, prompt, new)
            last = request_counter.read()
            rid = f"{name}-{len(requests)}"
            requests.append(energy.RequestSpan(rid, first[0], last[0], tokens))
            phase_of[rid] = name
            reads[rid] = (first, last)
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

    cadence = counter_cadence(traces["counter"])
    window_rows = []
    labels = {"counter": "counter trace (interpolated)", "instant": "instant-power integration",
              "average": "1-s-average power integration"}
    for name, trace in traces.items():
        for w in WINDOWS_S:
            # coincidence matters where the trace holds the reference's own quantity: the counter
            row = window_errors(trace, reader.points, w, sample_t_ns=trace.t_ns if name == "counter" else None)
            row.update(trace=labels[name], window_s=w)
            window_rows.append(row)
    self_row, self_ok = selftest(traces["counter"], "counter trace")
    window_rows.append(self_row)

    t0 = time.perf_counter()
    result = energy.apportion(traces["counter"], requests, window_s=1.0, idle_w=idle_w)
    apportion_ms = (time.perf_counter() - t0) * 1e3
    scale_j = max(1.0, result.net_j)
    conservation_ok = abs(result.conservation_error_j) <= 1e-9 * scale_j
    request_reads_t = [t for first, last in reads.values() for t in (first[0], last[0])]
    request_gaps = nearest_gaps_ns(request_reads_t, traces["counter"].t_ns)
    stale = equal_to_preceding_sample(reader.points, traces["counter"])

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
        "reference": (f"{len(reader.points)} direct counter reads about 1 s apart, each at a random offset "
                      f"(seed {args.seed}) in the middle half of a counter-sampler period "
                      f"({reader.skipped} slots skipped after stalls); request bounds: {2 * len(reads)} direct "
                      f"reads, {sum(1 for g in request_gaps if g < COINCIDE_NS)} of them within "
                      f"{COINCIDE_NS / 1e6:g} ms of a sample; {stale[0]} of {stale[1]} reference reads returned "
                      "exactly the value of the counter sampler's preceding read"),
        "request_rows": request_boundary_rows(result, reads, phase_of, idle_w, traces["counter"]),
        "selftest_passed": self_ok,
        "n_requests": len(requests), "n_windows": result.n_windows,
        "unattributed_windows": result.unattributed_windows, "clipped_windows": result.clipped_windows,
        "gross_j": result.gross_j, "idle_j": result.idle_j, "net_j": result.net_j,
        "attributed_j": result.attributed_j, "unattributed_j": result.unattributed_j,
        "conservation_error_j": result.conservation_error_j, "conservation_ok": conservation_ok,
        "apportion_ms": apportion_ms, "phase_rows": _phase_rows(result, phase_of), "phase_bounds": phase_bounds,
        "nvml_handle_ok": handle is not None,
        **cadence,
    }
    for source in (counter, ref_counter, request_counter, instant, average):
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


def _synthetic_requests(energy, trace, phases, tokens_per_phase: dict[str, tuple[float, float, float]]):
    """Request spans over the recorded phases (per phase ``(period_s, duration_s, tokens)``) whose start
    and end are counter readings held out of the trace thinned to every 2nd sample (odd indices): those
    readings are the request-boundary reference. Returns requests, their phases and their reads."""
    t, e = trace.t_ns.tolist(), trace.energy_j.tolist()
    t0 = t[0]

    def held_out(t_ns: int) -> int:
        i = min(bisect.bisect_left(t, t_ns), len(t) - 1)
        return i if i % 2 else (i + 1 if i + 1 < len(t) else i - 1)

    requests, phase_of, reads = [], {}, {}
    for name, start_s, end_s in phases:
        if name not in tokens_per_phase:
            continue
        period_s, duration_s, tokens = tokens_per_phase[name]
        s = start_s
        while s + duration_s <= end_s:
            a, b = held_out(t0 + round(s * 1e9)), held_out(t0 + round((s + duration_s) * 1e9))
            if b > a:
                rid = f"{name}-{len(requests)}"
                requests.append(energy.RequestSpan(rid, t[a], t[b], tokens))
                phase_of[rid] = name
                reads[rid] = ((t[a], e[a]), (t[b], e[b]))
            s += period_s
    return requests, phase_of, reads


# the recorded workload's shape: light = batch 1 x (32 + 32) tokens with 0.25 s gaps, heavy = back-to-back
# batches of 32 x (256 + 64); durations as measured on the H100/H200 runs (about 0.35 s and 0.8 s)
REPLAY_REQUESTS = {"light": (0.6, 0.35, 64.0), "heavy": (0.8, 0.79, 32.0 * (256 + 64))}


def replay_check(samples_csv: Path, report_md: Path, seed: int = SEED) -> dict:
    """The analysis half of :func:`run_check` on a committed counter trace: no GPU, NVML or torch.

    The traces under test are the counter trace thinned to every 2nd and every 4th sample (10 and 5 Hz
    at 20 Hz); the reference for each 1-s mark is a reading held out of the thinned trace, drawn at
    random (seeded) inside the thinned period holding the mark, so no reference reading is in the trace
    and the window errors are interpolation error against real counter reads. Synthetic requests over
    the recorded phases have held-out readings as their bounds and are apportioned over the 10 Hz trace.
    """
    import numpy as np

    energy = load_energy_package()
    trace = energy.Samples.read_csv(samples_csv)
    t, e = trace.t_ns, trace.energy_j
    t0 = int(t[0])
    rng = random.Random(seed)
    thinned = {k: energy.Samples.from_arrays(t[::k], e[::k], meter=trace.meter, domain=trace.domain,
                                             sample_hz_target=trace.sample_hz_target / k) for k in (2, 4)}
    window_rows, n_refs = [], 0
    for k, thin in thinned.items():
        reference = heldout_reference(trace, k, rng)
        n_refs += len(reference)
        for w in WINDOWS_S:
            row = window_errors(thin, reference, w, sample_t_ns=thin.t_ns)
            row.update(trace=f"counter trace thinned to {trace.sample_hz_target / k:g} Hz (interpolated)",
                       window_s=w)
            window_rows.append(row)
    self_row, self_ok = selftest(thinned[2], f"trace thinned to {trace.sample_hz_target / 2:g} Hz")
    window_rows.append(self_row)

    phases = _phase_timeline(report_md)
    idle_end_s = next((b for name, a, b in phases if name == "idle"), 3.0)
    idle_t = t0 + round(idle_end_s * 1e9)
    idle_w = float(trace.energy_at([idle_t])[0] - e[0]) / idle_end_s
    requests, phase_of, reads = _synthetic_requests(energy, trace, phases, REPLAY_REQUESTS)
    started = time.perf_counter()
    result = energy.apportion(thinned[2], requests, window_s=1.0, idle_w=idle_w)
    apportion_ms = (time.perf_counter() - started) * 1e3
    twin = energy.apportion(thinned[2], requests, window_s=1.0, idle_w=idle_w, engine="python")
    twin_gap = float(np.nanmax(np.abs(result.joules - twin.joules)))
    scale_j = max(1.0, result.net_j)
    cadence = counter_cadence(trace)
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
        "reference": (f"{n_refs} counter readings held out of the thinned traces, one drawn at random (seed "
                      f"{seed}) inside the thinned period holding each 1-s mark; request bounds: "
                      f"{2 * len(reads)} held-out readings (apportioned over the 10 Hz trace)"),
        "request_rows": request_boundary_rows(result, reads, phase_of, idle_w, trace),
        "selftest_passed": self_ok,
        "n_requests": len(requests), "n_windows": result.n_windows,
        "unattributed_windows": result.unattributed_windows, "clipped_windows": result.clipped_windows,
        "gross_j": result.gross_j, "idle_j": result.idle_j, "net_j": result.net_j,
        "attributed_j": result.attributed_j, "unattributed_j": result.unattributed_j,
        "conservation_error_j": result.conservation_error_j,
        "conservation_ok": abs(result.conservation_error_j) <= 1e-9 * scale_j and twin_gap <= 1e-9 * scale_j,
        "apportion_ms": apportion_ms, "phase_rows": _phase_rows(result, phase_of), "phase_bounds": phases,
        "twin_gap_j": twin_gap,
        **cadence,
    }


def quick(out: str | None, seed: int = SEED) -> int:
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
        results = replay_check(csv, md, seed)
        text = render_report(results).replace("# Energy meter check on NVML", f"# Energy meter check, replay of "
                                              f"{csv.name} (--quick, no GPU)", 1)
        text += (f"\nApportioning numpy kernel vs plain-Python twin: max |Δ| {results['twin_gap_j']:.2e} J. "
                 f"Replay time {time.monotonic() - started:.2f} s.\n")
        texts.append(text)
        print(text)
        broken += [f"{csv.name}: {problem}" for problem in verdict_problems(results)]
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text("\n".join(texts), encoding="utf-8")
        print(f"report written to {out}")
    if broken:
        print("FAILED: " + "; ".join(broken), file=sys.stderr)
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
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the reference reads' random offsets")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a counter-trace target is missed")
    parser.add_argument("--quick", action="store_true",
                        help="no GPU: replay the committed counter traces through the analysis (seconds; CI)")
    args = parser.parse_args(argv)
    if args.quick:
        return quick(args.out, args.seed)
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
    problems = verdict_problems(results)
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    missed = [row for row in results["window_rows"] if row["trace"].startswith("counter")
              and not (row["median"] <= TARGET_REL_ERR)]
    if args.strict and missed:
        print(f"FAILED: counter-trace target missed for windows {[r['window_s'] for r in missed]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
