"""Sweep executors: what a point costs beyond its own run, what workers buy on this machine, and whether the
Dask scheduler keeps up with 32 workers.

Every point runs tsglab's real path (:func:`tsglab.sweep.point.run_point`, through
:func:`tsglab.sweep.executors.make_executor`) on the scripted backend; the tasks are built here the way the
sweep driver builds them (a ``spec.yaml`` per point directory), so the figures are the executors' and not the
combined report's.

1. **Overhead per point** for each executor (``seq``, ``pool``, ``dask``) in each mode (``in-process``,
   ``notebook``), one worker, points that do almost nothing (one scripted request, no sleep).
   ``start-up`` is the time to the first finished point less that point's own time (spawning the pool or
   the LocalCluster, imports); ``cycle`` is the median time between consecutive finished points once
   running; ``overhead`` = cycle − the point's own run time (the median in-process ``run_point`` time of
   the sequential executor, warm). In notebook mode the overhead is papermill's: a kernel per point, the
   imports inside it, the executed notebook written.
2. **Speed-up with workers** (1, 2) on this machine, for points that sleep (1 request of ``--sleep-s``, what
   a point waiting on a remote LLM server looks like) and points that use the CPU (many scripted requests,
   no sleep). Speed-up = wall(1 worker) / wall(w workers), start-up excluded.
3. **Simulated 32 workers**: a LocalCluster of ``--sim-workers`` one-thread processes; ``--sim-points``
   points that each sleep ``--sim-sleep-s``. Ideal wall = rounds × the median point time; the rest is the
   scheduler, the executor and the machine. The same cluster also runs as many bare ``time.sleep`` tasks
   (no tsglab) — Dask's own floor — and the workers' resident memory is summed (does the machine hold 32?).

Run: ``python benchmarks/bench_sweep.py`` (several minutes on 2 cores); ``--write`` appends the figures to
``benchmarks/results/sweep.md``. ``--quick`` (CI): the same code paths at tiny sizes (2 points per executor,
notebook mode on ``seq`` only, 2 simulated workers); it never writes the results file.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import itertools
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nbformat

from tsglab.suite import bundled_suite_path
from tsglab.sweep.executors import make_executor
from tsglab.sweep.point import PointOutcome, PointTask

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "sweep.md"

# one arm, one prompt: a point is one request to the enh tier (the baseline sends everything there)
POINT_SPEC = """\
name: bench
suite: {suite}
prompts: {{limit: {limit}, seed: 1}}
arms: {{baseline: {{kind: baseline}}}}
energy: {{meter: none}}
load: {{mode: paced, period_ms: 0, concurrency: 1, timeout_s: 30}}
tiers:
  light: {{backend: scripted}}
  std: {{backend: scripted}}
  enh: {{backend: scripted, options: {{prompt_ms: {ms}, eval_ms_per_token: 0, sleep: {sleep}}}}}
"""

NOTEBOOK_RUN = """\
import tsglab
params = tsglab.notebook_params(spec=spec, runs_dir=runs_dir, run_id=run_id, resume=resume)
result = tsglab.run(params.spec, runs_dir=params.runs_dir, run_id=params.run_id, resume=params.resume,
                    progress=False)
"""


def write_notebook(path: Path) -> Path:
    """The smallest run notebook: the flat parameters of tsglab's run notebooks, then the run."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell('spec = None\nruns_dir = "runs"\nrun_id = None\nresume = None')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(NOTEBOOK_RUN)]
    nbformat.write(nb, path)
    return path


def write_suite(folder: Path, n_items: int) -> Path:
    """Bundled items without a JSON Schema: checking the bundled suite's 100+ schemas costs seconds in every
    fresh worker and kernel, a cost of the suite and not of the executor."""
    lines = [line for line in bundled_suite_path().read_text(encoding="utf-8").splitlines()
             if line.startswith("{") and '"json_schema"' not in line][:n_items]
    path = folder / "suite.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_tasks(folder: Path, n: int, *, mode: str = "in-process", notebook: Path | None = None, limit: int = 1,
               ms: float = 0.0, sleep: bool = False) -> list[PointTask]:
    """``n`` points, each a folder ``points/pNNN-bench`` holding its ``spec.yaml``, as the driver lays them out."""
    points = folder / "points"
    suite = write_suite(folder, limit)
    tasks = []
    for index in range(n):
        dirname = f"p{index:03d}-bench"
        (points / dirname).mkdir(parents=True)
        spec = points / dirname / "spec.yaml"
        spec.write_text(POINT_SPEC.format(suite=suite, limit=limit, ms=ms, sleep=str(sleep).lower()), encoding="utf-8")
        tasks.append(PointTask(point_id=f"p{index:03d}", dirname=dirname, points_dir=str(points),
                               spec_path=str(spec), resume=False, mode=mode,
                               notebook=str(notebook) if notebook else None, project_root=str(REPO)))
    return tasks


class Timeline:
    """When each point finished (monotonic, from the call to ``run``) and its own time in the worker."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done: list[tuple[float, PointOutcome]] = []

    def on_done(self, outcome: PointOutcome) -> None:
        if outcome.status != "complete":
            raise SystemExit(f"bench_sweep: point {outcome.point_id} {outcome.status}: {outcome.error}")
        self.done.append((time.monotonic() - self.started, outcome))

    @property
    def wall(self) -> float:
        return self.done[-1][0]

    @property
    def startup(self) -> float:
        first_at, first = self.done[0]
        return max(0.0, first_at - first.seconds)

    @property
    def cycle(self) -> float:
        """Median time between consecutive finished points (one worker: a point's full cost, once running)."""
        times = [at for at, _ in self.done]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return statistics.median(gaps) if gaps else math.nan

    def median_point(self, *, skip_first: bool = False) -> float:
        seconds = [o.seconds for _, o in self.done[1 if skip_first and len(self.done) > 1 else 0:]]
        return statistics.median(seconds)


def run_points(kind: str, tasks: list[PointTask], workers: int | None, *, dask=None) -> Timeline:
    executor = make_executor(kind, workers=workers, dask=dask)
    timeline = Timeline()
    executor.run(tasks, timeline.on_done)
    return timeline


def overhead_section(say: Callable[[str], None], scratch: Path, *, kinds: list[str], notebook_kinds: list[str],
                     n_points: int, notebook_points: int) -> None:
    say(f"### 1. Overhead per point (1 worker, points of one scripted request; load average "
        f"{os.getloadavg()[0]:.1f})")
    say("")
    say("| executor | mode | points | start-up s | cycle ms | point's own run ms | overhead ms/point |")
    say("|---|---|---:|---:|---:|---:|---:|")
    notebook = write_notebook(scratch / "run.ipynb")
    own_ms = math.nan
    for mode, mode_kinds in (("in-process", kinds), ("notebook", notebook_kinds)):
        for kind in mode_kinds:
            folder = Path(tempfile.mkdtemp(prefix=f"{kind}-{mode}-", dir=scratch))
            n = (n_points if mode == "in-process" else notebook_points) + (1 if kind == "seq" else 0)
            # seq: one point more, the first warms this process up (the pool and Dask count it as start-up)
            tasks = make_tasks(folder, n, mode=mode, notebook=notebook if mode == "notebook" else None)
            timeline = run_points(kind, tasks, None if kind == "seq" else 1)
            if kind == "seq" and mode == "in-process":
                own_ms = timeline.median_point(skip_first=True) * 1e3
            cycle_ms = timeline.cycle * 1e3
            say(f"| {kind} | {mode} | {n} | {timeline.startup:.2f} | {cycle_ms:.0f} | {own_ms:.0f} | "
                f"{cycle_ms - own_ms:.0f} |")
    say("")


def speedup_section(say: Callable[[str], None], scratch: Path, *, kinds: list[str], workers: list[int],
                    n_points: int, sleep_s: float, cpu_requests: int | None) -> None:
    say(f"### 2. Speed-up with workers ({os.cpu_count()} CPU cores here; load average {os.getloadavg()[0]:.1f})")
    say("")
    say("| executor | points | workers | wall s | start-up s | wall − start-up s | speed-up |")
    say("|---|---|---:|---:|---:|---:|---:|")
    shapes: dict[str, dict] = {f"{n_points} × sleep {sleep_s:g} s": {"limit": 1, "ms": sleep_s * 1e3, "sleep": True}}
    if cpu_requests:
        shapes[f"{n_points} × {cpu_requests} CPU-bound requests"] = {"limit": cpu_requests, "ms": 0.0, "sleep": False}
    for kind in kinds:
        for shape, options in shapes.items():
            base = math.nan
            for count in workers:
                folder = Path(tempfile.mkdtemp(prefix=f"speed-{kind}-", dir=scratch))
                timeline = run_points(kind, make_tasks(folder, n_points, **options), count)
                net = timeline.wall - timeline.startup
                if count == workers[0]:
                    base = net
                say(f"| {kind} | {shape} | {count} | {timeline.wall:.2f} | {timeline.startup:.2f} | {net:.2f} | "
                    f"{base / net:.2f} |")
    say("")


def _uss_mb(pids: list[int]) -> float:
    """Memory the processes hold of their own (USS: resident memory that is not shared, so not counted twice)."""
    import psutil

    total = 0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += psutil.Process(pid).memory_full_info().uss
    return total / 2**20


def _cpu_s(pids: list[int]) -> float:
    import psutil

    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def _available_mb() -> float:
    import psutil

    return psutil.virtual_memory().available / 2**20


def simulated_section(say: Callable[[str], None], scratch: Path, *, n_workers: int, n_points: int,
                      sleep_s: float) -> None:
    import importlib
    import logging

    import dask
    from distributed import Client, LocalCluster

    from tsglab.sweep.parallel import LOCAL_CLUSTER_CONFIG

    say(f"### 3. Simulated cluster: LocalCluster of {n_workers} one-thread worker processes (load average "
        f"{os.getloadavg()[0]:.1f})")
    say("")
    available_before = _available_mb()
    started = time.monotonic()
    # the cluster the dask executor would start (its settings), made here to measure it while it is up
    with dask.config.set(LOCAL_CLUSTER_CONFIG), \
            LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                         dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        client.wait_for_workers(n_workers, timeout=900)
        # spawned workers import this script's modules (tsglab among them) while they start: counted in `up`
        client.run(importlib.import_module, "tsglab.load.runner")
        up = time.monotonic() - started
        # a LocalCluster's nannies live in this process; each worker is a process of its own
        pids = sorted(set(client.run(os.getpid).values()) - {os.getpid()})
        own = _uss_mb(pids)
        say(f"- cluster up in {up:.1f} s ({len(pids)} worker processes on {os.cpu_count()} cores, the scheduler and "
            f"the nannies in this process); the workers' own memory (USS) {own:.0f} MiB ({own / len(pids):.0f} MiB "
            f"per worker), this process {_uss_mb([os.getpid()]):.0f} MiB; memory available "
            f"{available_before:.0f} MiB before, {_available_mb():.0f} MiB with the cluster up")

        idle_before, t_idle = _cpu_s(pids), time.monotonic()
        time.sleep(3.0)
        idle = (_cpu_s(pids) - idle_before) / (time.monotonic() - t_idle)
        say(f"- idle, the {len(pids)} workers use {idle:.2f} cores of {os.cpu_count()} between them (heartbeats, "
            f"memory monitor, event loops)")

        rounds = math.ceil(n_points / n_workers)
        t0 = time.monotonic()
        client.gather(client.map(time.sleep, [sleep_s] * n_points, pure=False))
        bare = time.monotonic() - t0

        # one quick point per worker first: a worker's first run loads the suite and warms its caches
        run_points("dask", make_tasks(Path(tempfile.mkdtemp(prefix="warm-", dir=scratch)), n_workers), None,
                   dask=client)
        folder = Path(tempfile.mkdtemp(prefix="sim-", dir=scratch))
        tasks = make_tasks(folder, n_points, ms=sleep_s * 1e3, sleep=True)
        cpu_before, driver_before = _cpu_s(pids), time.process_time()
        timeline = run_points("dask", tasks, None, dask=client)
        cpu = _cpu_s(pids) - cpu_before
        driver_cpu = time.process_time() - driver_before
        point = timeline.median_point()
        ideal = rounds * point
        cpu_floor = (cpu + driver_cpu) / (os.cpu_count() or 1)
        say(f"- bare Dask, {n_points} × time.sleep({sleep_s:g}): wall {bare:.2f} s, ideal {rounds * sleep_s:.2f} s "
            f"(ratio {bare / (rounds * sleep_s):.2f})")
        say(f"- tsglab points, {n_points} × one request sleeping {sleep_s:g} s: wall {timeline.wall:.2f} s; median "
            f"point {point:.2f} s in its worker, so ideal {rounds} × {point:.2f} = {ideal:.2f} s (ratio "
            f"{timeline.wall / ideal:.2f})")
        say(f"- CPU during those points: workers {cpu:.1f} s ({cpu / n_points * 1e3:.0f} ms per point), "
            f"so {os.cpu_count()} cores need at least {cpu_floor:.2f} s; this process (client, executor, scheduler, "
            f"nannies) {driver_cpu:.2f} s. Wall {timeline.wall:.2f} s against max(ideal, CPU floor) = "
            f"{max(ideal, cpu_floor):.2f} s")
    say("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=6, help="in-process points per executor (overhead table)")
    parser.add_argument("--notebook-points", type=int, default=3, help="notebook points per executor (overhead)")
    parser.add_argument("--speed-points", type=int, default=8, help="points per speed-up run")
    parser.add_argument("--sleep-s", type=float, default=1.0, help="how long a sleeping point waits")
    parser.add_argument("--cpu-requests", type=int, default=160, help="scripted requests of a CPU-bound point")
    parser.add_argument("--sim-workers", type=int, default=32)
    parser.add_argument("--sim-points", type=int, default=64)
    parser.add_argument("--sim-sleep-s", type=float, default=1.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["overhead", "speedup", "simulated"])
    parser.add_argument("--write", action="store_true", help=f"append the figures to {RESULTS}")
    parser.add_argument("--quick", action="store_true",
                        help="the same code paths at tiny sizes, notebook mode on seq only (CI); never writes")
    args = parser.parse_args(argv)
    if args.quick and args.write:
        parser.error(f"--quick never writes {RESULTS}; drop --write")
    kinds = ["seq", "pool", "dask"]
    if args.quick:
        args.points, args.notebook_points, args.speed_points, args.sleep_s, args.cpu_requests = 2, 2, 2, 0.2, 4
        args.sim_workers, args.sim_points, args.sim_sleep_s = 2, 4, 0.2

    out = io.StringIO()

    def say(line: str) -> None:
        print(line, flush=True)
        out.write(line + "\n")

    say(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.1f} at the start")
    say("")
    # the kernels of notebook mode and the Dask workers write nothing outside this folder
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as scratch_name:
        scratch = Path(scratch_name)
        if "overhead" not in args.skip:
            overhead_section(say, scratch, kinds=kinds, notebook_kinds=["seq"] if args.quick else kinds,
                             n_points=args.points, notebook_points=args.notebook_points)
        if "speedup" not in args.skip:
            speedup_section(say, scratch, kinds=["pool"] if args.quick else ["pool", "dask"], workers=[1, 2],
                            n_points=args.speed_points, sleep_s=args.sleep_s,
                            cpu_requests=None if args.quick else args.cpu_requests)
        if "simulated" not in args.skip:
            simulated_section(say, scratch, n_workers=args.sim_workers, n_points=args.sim_points,
                              sleep_s=args.sim_sleep_s)
    if args.write:
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        command = " ".join(["python benchmarks/bench_sweep.py", *(argv if argv is not None else sys.argv[1:])])
        with RESULTS.open("a", encoding="utf-8") as handle:
            handle.write(f"\n## {stamp} — `{command}`\n\n{out.getvalue()}")
        print(f"appended to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
