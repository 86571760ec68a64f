"""Energy per token of an 8B-shaped transformer on one NVIDIA GPU, against published figures and claims.

Builds a randomly initialised Llama-3-8B-shaped model in code (hidden 4096, 32 layers, 32 heads / 8 KV
heads, intermediate 14336, vocab 128256, bf16; no downloads: random weights cost the same arithmetic,
hence the same energy, as trained ones) and generates exactly ``--new-tokens`` tokens (default 256)
after a ``--prompt-tokens`` prompt (default 128) at several batch sizes, ``--reps`` calls each. Energy
comes from tsglab's meter: the NVML total-energy counter, read directly at each call's start and end,
and sampled at 20 Hz for the apportioned figure (1-s windows, idle subtracted). The idle baseline is
measured with the model loaded, before anything runs.

A compute floor is measured too: dense bf16 matrix products at full speed give the GPU's energy per
FLOP, and a token of this model needs at least 2 FLOP per weight outside the embedding table, so no
serving stack can spend less than ``2 * weights * J/FLOP`` per token on this GPU.

The report compares the measured J per generated token and mWh per 1k tokens with public measurements
of vLLM serving an 8B model on an H100 (0.12-0.2 J per token) and with the claims of 0.3-0.8 mWh per 1k
tokens, and says for each whether the measurement is consistent with it.

    python benchmarks/energy_per_token.py --out benchmarks/results/energy_per_token.md \
        --csv benchmarks/results/energy_per_token.csv

Needs pynvml, torch with CUDA and transformers; exits 2 without them. Takes about 3 minutes on an H200.
``--quick`` needs no GPU (CI runs it): it replays the committed CSV (or a small synthetic one when none
is committed) through the same analysis and report, and writes nothing unless ``--out`` is given.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS_CSV = REPO / "benchmarks" / "results" / "energy_per_token.csv"
J_PER_MWH = 3.6
LLAMA3_8B = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
             "intermediate_size": 14336, "vocab_size": 128256, "max_position_embeddings": 8192,
             "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "tie_word_embeddings": False}
BATCH_SIZES = (1, 8, 32, 128)
# public measurements of vLLM serving an 8B model on an H100, in J per generated token
PUBLISHED_J_PER_TOKEN = (0.12, 0.2)
PUBLISHED_LABEL = "vLLM, 8B model, H100 (public measurements)"
# claimed energy per 1k tokens, mWh, per serving framework (no model, GPU or batch size given)
CLAIMS_MWH_PER_1K = {"TensorRT-LLM": 0.3, "SGLang": 0.4, "LMDeploy": 0.45, "vLLM": 0.5, "Ollama": 0.8}


def _energy_gpu_check():
    """benchmarks/energy_gpu_check.py as a module: its NVML and package loaders are reused here."""
    spec = importlib.util.spec_from_file_location("energy_gpu_check", Path(__file__).with_name("energy_gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def mwh_per_1k(j_per_token: float) -> float:
    return j_per_token / J_PER_MWH * 1e3


# -- the measurement's rows and their summary (no GPU needed) -------------------------------------------

@dataclass(frozen=True)
class Call:
    """One generate call: ``batch`` sequences of ``prompt_tokens`` + exactly ``new_tokens``."""

    batch: int
    rep: int
    prompt_tokens: int
    new_tokens: int
    seconds: float
    gross_j: float          # counter delta between reads at the call's start and end
    apportioned_net_j: float  # the meter's apportioned share (1-s windows, idle subtracted)


@dataclass(frozen=True)
class Measurement:
    gpu: str
    idle_w: float
    flop_per_token: float   # 2 x weights outside the embedding table
    matmul_flop: float
    matmul_seconds: float
    matmul_gross_j: float
    calls: tuple[Call, ...]
    notes: str = ""

    @property
    def matmul_net_j_per_flop(self) -> float:
        return (self.matmul_gross_j - self.idle_w * self.matmul_seconds) / self.matmul_flop

    @property
    def floor_j_per_token(self) -> float:
        """The least energy a token can cost on this GPU: its FLOPs at the measured net J per FLOP of
        full-speed matrix products (attention, memory traffic and idle power all left out)."""
        return self.flop_per_token * self.matmul_net_j_per_flop


CSV_FIELDS = ("batch", "rep", "prompt_tokens", "new_tokens", "seconds", "gross_j", "apportioned_net_j")
META_FIELDS = ("gpu", "idle_w", "flop_per_token", "matmul_flop", "matmul_seconds", "matmul_gross_j", "notes")


def write_csv(m: Measurement, path: Path) -> None:
    meta = "\t".join(f"{key}={str(getattr(m, key)).replace(chr(9), ' ')}" for key in META_FIELDS)
    rows = [",".join(str(getattr(c, f)) for f in CSV_FIELDS) for c in m.calls]
    path.write_text(f"# energy_per_token\t{meta}\n" + ",".join(CSV_FIELDS) + "\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")


def read_csv(path: Path) -> Measurement:
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("# energy_per_token"):
        raise SystemExit(f"{path}, line 1: expected '# energy_per_token<TAB>key=value...'; got {lines[:1]!r}.")
    meta = dict(part.partition("=")[::2] for part in lines[0].split("\t")[1:])
    calls = []
    for lineno, line in enumerate(lines[2:], start=3):
        values = line.split(",")
        if len(values) != len(CSV_FIELDS):
            raise SystemExit(f"{path}, line {lineno}: expected {len(CSV_FIELDS)} fields ({','.join(CSV_FIELDS)}); "
                             f"got {line!r}.")
        calls.append(Call(int(values[0]), int(values[1]), int(values[2]), int(values[3]),
                          *(float(v) for v in values[4:])))
    return Measurement(meta["gpu"], float(meta["idle_w"]), float(meta["flop_per_token"]), float(meta["matmul_flop"]),
                       float(meta["matmul_seconds"]), float(meta["matmul_gross_j"]), tuple(calls),
                       meta.get("notes", ""))


def summarize(m: Measurement) -> list[dict]:
    """One row per batch size: ratios of sums over its calls (energy per generated token, gross and with
    the idle power taken off, and the meter's apportioned net)."""
    rows = []
    for batch in sorted({c.batch for c in m.calls}):
        calls = [c for c in m.calls if c.batch == batch]
        seconds = sum(c.seconds for c in calls)
        gross = sum(c.gross_j for c in calls)
        net = gross - m.idle_w * seconds
        new = sum(c.batch * c.new_tokens for c in calls)
        total = sum(c.batch * (c.prompt_tokens + c.new_tokens) for c in calls)
        apportioned = sum(c.apportioned_net_j for c in calls)
        rows.append({"batch": batch, "calls": len(calls), "new_tokens": new, "seconds": seconds,
                     "tokens_per_s": new / seconds, "power_w": gross / seconds,
                     "j_per_token": gross / new, "net_j_per_token": net / new,
                     "apportioned_net_j_per_token": apportioned / new, "j_per_token_all": gross / total,
                     "mwh_per_1k": mwh_per_1k(gross / new), "net_mwh_per_1k": mwh_per_1k(net / new)})
    return rows


def verdicts(m: Measurement, rows: list[dict]) -> list[dict]:
    """Each published figure or claim against the measurement: where a figure lies below the compute
    floor no serving stack can reach it with this model on this GPU; below the best measured figure it
    needs a more efficient stack than the one measured here; else some batch size measured it."""
    floor = m.floor_j_per_token
    best = min(rows, key=lambda r: r["j_per_token"])
    lo, hi = PUBLISHED_J_PER_TOKEN
    figures = [(PUBLISHED_LABEL, lo, hi)] + [(f"claim: {name}", mwh * J_PER_MWH / 1e3, mwh * J_PER_MWH / 1e3)
                                             for name, mwh in CLAIMS_MWH_PER_1K.items()]
    out = []
    for label, f_lo, f_hi in figures:
        inside = [r["batch"] for r in rows if f_lo <= r["j_per_token"] <= f_hi]
        if f_hi < floor:
            verdict = (f"refuted: {floor / f_hi:.0f}x below the compute floor ({floor:.4f} J/token); impossible "
                       f"for this model shape on this GPU")
        elif inside:
            verdict = f"consistent: measured inside this range at batch {', '.join(map(str, inside))}"
        elif f_hi < best["j_per_token"]:
            verdict = (f"not reached here: best measured {best['j_per_token']:.4f} J/token (batch {best['batch']}), "
                       f"{best['j_per_token'] / f_hi:.1f}x higher; above the floor, so a faster stack could")
        else:
            below = [r["batch"] for r in rows if r["j_per_token"] < f_lo]
            verdict = (f"consistent: larger batches measured below it (batch {', '.join(map(str, below))}), "
                       f"smaller ones above")
        out.append({"figure": label, "j_lo": f_lo, "j_hi": f_hi, "verdict": verdict})
    return out


def _range(lo: float, hi: float, fmt: str) -> str:
    return format(lo, fmt) if lo == hi else f"{format(lo, fmt)}-{format(hi, fmt)}"


def render(m: Measurement, header: list[str]) -> str:
    rows = summarize(m)
    floor = m.floor_j_per_token
    matmul_tflops = m.matmul_flop / m.matmul_seconds / 1e12
    lines = ["# Energy per token, Llama-3-8B shape (random weights, bf16)", "", *header,
             f"- GPU: {m.gpu}; idle power with the model loaded: {m.idle_w:.1f} W (counter, before any call)",
             (f"- compute floor: dense bf16 matrix products ran at {matmul_tflops:.0f} TFLOP/s drawing "
              f"{m.matmul_gross_j / m.matmul_seconds:.0f} W, {m.matmul_net_j_per_flop * 1e12:.3f} pJ per FLOP above "
              f"idle; {m.flop_per_token / 1e9:.2f} GFLOP per token (2 x weights outside the embedding) -> at least "
              f"{floor:.4f} J per token = {mwh_per_1k(floor):.2f} mWh per 1k tokens"),
             *([f"- {m.notes}"] if m.notes else []),
             "",
             "## Measured (NVML counter read at each call's start and end; ratios of sums over the calls)",
             "",
             ("| batch | calls | generated tokens | tokens/s | mean power W | J per generated token "
              "| mWh per 1k tokens | net of idle: J/token | mWh per 1k | apportioned by the meter: J/token "
              "| J per token, prompt + generated |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [(f"| {r['batch']} | {r['calls']} | {r['new_tokens']} | {r['tokens_per_s']:.0f} | {r['power_w']:.0f} | "
               f"{r['j_per_token']:.4f} | {r['mwh_per_1k']:.2f} | {r['net_j_per_token']:.4f} | "
               f"{r['net_mwh_per_1k']:.2f} | {r['apportioned_net_j_per_token']:.4f} | "
               f"{r['j_per_token_all']:.4f} |") for r in rows]
    lines += ["", "## Published figures and claims against the measurement", "",
              "| figure | J per token | mWh per 1k tokens | verdict |", "|---|---|---|---|"]
    for v in verdicts(m, rows):
        lines.append(f"| {v['figure']} | {_range(v['j_lo'], v['j_hi'], '.4f')} | "
                     f"{_range(mwh_per_1k(v['j_lo']), mwh_per_1k(v['j_hi']), '.2f')} | {v['verdict']} |")
    lines += ["", ("Gross figures include the GPU's idle power, as a provider's meter does; the floor leaves it "
                   "out and assumes every FLOP at full matrix-unit speed, so it is generous to the claims. "
                   "Transformers' eager generate is far from a serving engine (no CUDA graphs, no continuous "
                   "batching): its figures bound a serving stack from above at the same batch size.")]
    return "\n".join(lines) + "\n"


# -- the GPU run ----------------------------------------------------------------------------------------

def build_model(torch, transformers, device: str):
    """Llama-3-8B-shaped, random weights, created directly on the GPU in bf16."""
    config = transformers.LlamaConfig(**LLAMA3_8B)
    torch.manual_seed(0)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = transformers.LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    weights = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return model.eval(), weights, embedding


def matmul_energy(torch, counter, device: str, seconds: float) -> tuple[float, float, float]:
    """(FLOP, seconds, gross J) of back-to-back 8192^3 bf16 products for about ``seconds``."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(5):
        a @ b
    torch.cuda.synchronize()
    t0, e0 = counter.read()
    count = 0
    while True:
        for _ in range(20):
            a @ b
        count += 20
        torch.cuda.synchronize()
        t1, e1 = counter.read()
        if (t1 - t0) / 1e9 >= seconds:
            return 2.0 * n**3 * count, (t1 - t0) / 1e9, e1 - e0


def run(args) -> tuple[Measurement, list[str]]:
    check = _energy_gpu_check()
    check.require_pynvml()
    energy = check.load_energy_package()
    try:
        counter = energy.NvmlCounter.open(args.gpu_index)
        call_counter = energy.NvmlCounter.open(args.gpu_index)
    except energy.MeterUnavailable as exc:
        raise check.CheckFailed(f"NVML energy counter unavailable: {exc.reason}") from None
    torch, transformers = check._gpu_stack()
    device = f"cuda:{args.gpu_index}"
    started = time.monotonic()
    model, weights, embedding = build_model(torch, transformers, device)
    vocab = LLAMA3_8B["vocab_size"]

    def generate(batch: int, new: int) -> None:
        ids = torch.randint(0, vocab, (batch, args.prompt_tokens), device=device)
        with torch.inference_mode():
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new,
                           do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()

    # warm up each shape with a full-length call: a short warm-up left the first measured call at a batch
    # 2-3x slower than the others (its KV-cache sizes and kernels were not seen yet)
    for batch in args.batch_sizes:
        generate(batch, args.new_tokens)
    build_s = time.monotonic() - started
    idle_w = energy.Sampler(counter, sample_hz=20).measure_idle(args.idle_seconds)
    matmul_flop, matmul_s, matmul_j = matmul_energy(torch, call_counter, device, args.matmul_seconds)
    time.sleep(2.0)  # let the clocks settle after the products before the calls start

    sampler = energy.Sampler(counter, sample_hz=20).start()
    spans, raw = [], []
    for batch in args.batch_sizes:
        for rep in range(args.reps):
            t0, e0 = call_counter.read()
            generate(batch, args.new_tokens)
            t1, e1 = call_counter.read()
            rid = f"b{batch}-r{rep}"
            spans.append(energy.RequestSpan(rid, t0, t1, batch * (args.prompt_tokens + args.new_tokens)))
            raw.append((batch, rep, (t1 - t0) / 1e9, e1 - e0))
            print(f"batch {batch} rep {rep}: {(t1 - t0) / 1e9:.2f} s, {e1 - e0:.1f} J", flush=True)
    trace = sampler.stop()
    shares = energy.apportion(trace, spans, window_s=1.0, idle_w=idle_w)
    calls = tuple(Call(batch, rep, args.prompt_tokens, args.new_tokens, seconds, joules,
                       float(shares.joules[shares.index(f"b{batch}-r{rep}")]))
                  for batch, rep, seconds, joules in raw)
    for source in (counter, call_counter):
        source.close()
    measurement = Measurement(
        gpu=counter.domain.split(":", 1)[1], idle_w=idle_w, flop_per_token=2.0 * (weights - embedding),
        matmul_flop=matmul_flop, matmul_seconds=matmul_s, matmul_gross_j=matmul_j, calls=calls,
        notes=(f"model: {weights / 1e9:.2f} B weights ({embedding / 1e9:.2f} B in the input embedding), "
               f"prompt {args.prompt_tokens} + exactly {args.new_tokens} generated tokens per sequence, "
               f"greedy, transformers generate (eager, sdpa attention)"))
    header = [(f"- date {time.strftime('%Y-%m-%d %H:%M')}; torch {torch.__version__}, transformers "
               f"{transformers.__version__}, python {platform.python_version()}; model built and warmed up in "
               f"{build_s:.0f} s; meter: {len(trace)} counter samples at {trace.sample_hz_achieved:.1f} Hz, "
               f"apportioning conservation error {shares.conservation_error_j:.2e} J")]
    return measurement, header


def synthetic_measurement() -> Measurement:
    """A small stand-in for --quick when no CSV is committed: round numbers of a plausible shape."""
    calls = tuple(Call(b, r, 128, 256, 6.0 + 0.01 * b, 6.0 * (300 + 2 * b), 6.0 * (170 + 2 * b))
                  for b in BATCH_SIZES for r in range(2))
    return Measurement("synthetic (no committed CSV)", 120.0, 2 * 7.5e9, 2 * 8192**3 * 1000, 1.4, 1.4 * 700,
                       calls, "synthetic rows: exercises the analysis only")


def quick(out: str | None) -> int:
    measurement = read_csv(RESULTS_CSV) if RESULTS_CSV.is_file() else synthetic_measurement()
    source = RESULTS_CSV.name if RESULTS_CSV.is_file() else "synthetic rows"
    text = render(measurement, [f"- replay of {source} (--quick, no GPU)"])
    print(text)
    floor = measurement.floor_j_per_token
    rows = summarize(measurement)
    problems = []
    if not (math.isfinite(floor) and 0 < floor < min(r["j_per_token"] for r in rows)):
        problems.append(f"the compute floor {floor!r} J/token is not positive and below every measured figure")
    if statistics.fmean(r["apportioned_net_j_per_token"] for r in rows) <= 0:
        problems.append("the apportioned energy per token is not positive")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text, encoding="utf-8")
        print(f"report written to {out}")
    if problems:
        print("FAILED: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="markdown report (default benchmarks/results/energy_per_token.md)")
    parser.add_argument("--csv", default=None, help="write the per-call rows here")
    parser.add_argument("--gpu-index", type=int, default=0)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--prompt-tokens", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--matmul-seconds", type=float, default=6.0)
    parser.add_argument("--quick", action="store_true", help="no GPU: replay the committed CSV through the report")
    args = parser.parse_args(argv)
    if args.quick:
        return quick(args.out)
    measurement, header = run(args)
    text = render(measurement, header)
    out = Path(args.out or REPO / "benchmarks" / "results" / "energy_per_token.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    if args.csv:
        write_csv(measurement, Path(args.csv))
    print(text)
    print(f"report written to {out}" + (f"; rows to {args.csv}" if args.csv else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
