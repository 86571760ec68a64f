"""Parallel sweep execution: a local process pool and Dask distributed (a real LocalCluster on 127.0.0.1),
in-process and notebook mode, against a sequential run of the same scripted sweep; a worker killed in the
middle of a point; Ctrl-C of the driver; a scheduler reached by its address from the command line.

The integration tests start real processes (spawned pool workers, Dask nannies and workers, Jupyter
kernels) on 127.0.0.1 only, and every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from _rundir_helpers import REPO, child_env, event_keys, small_suite, write_spec

from tsglab import cli
from tsglab.errors import InvalidArgument
from tsglab.events.lock import is_locked, lock_holder
from tsglab.sweep import driver, load_sweep, run_sweep
from tsglab.sweep.executors import make_executor
from tsglab.sweep.notebook import _cell_error, _socket_dir, run_notebook_point
from tsglab.sweep.parallel import DaskExecutor, PoolExecutor
from tsglab.sweep.point import PointTask
from tsglab.sweep.store import point_states

GRID = """\
name: grid
base: base.yaml
grid:
  arms.tsg.thr_std: [0.3, 0.4]
  tiers.light.max_tokens: [32, 64]
"""

# p001 paces its requests 1.5 s apart (about 9 s for 6 requests): long enough to be killed or interrupted
# in the middle; p000 and p002 finish in a moment
PACED = """\
name: paced
base: base.yaml
grid:
  load.period_ms: [0, 1500, 1]
"""

# the kill test: p001 is killed while p002 (requests 0.6 s apart) runs beside it on the other worker, and
# p003 can only run on the worker that replaced the dead one
KILLED = """\
name: killed
base: base.yaml
grid:
  load.period_ms: [0, 1500, 600, 1]
"""

WAIT_S = 180  # the longest any wait here may take: spawning workers on a busy 2-core machine is slow


@pytest.fixture
def no_results(monkeypatch):
    """The combined results are another module's business (and cost a report per point): not built here."""
    monkeypatch.setattr(driver, "_results_module", lambda: None)


def _sweep_file(folder: Path, body: str = GRID, *, limit: int = 3, name: str = "grid") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_spec(folder, name="base", limit=limit, suite=small_suite(folder))
    path = folder / f"{name}.sweep.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _point_json(root: Path, dirname: str) -> dict:
    return json.loads((root / "points" / dirname / "point.json").read_text(encoding="utf-8"))


def _summary(root: Path, sweep) -> dict:
    """Per point: its status in point.json and how many requests its run recorded per (arm, prompt)."""
    return {p.point_id: (_point_json(root, p.dirname)["status"],
                         sorted(event_keys(root / "points" / p.dirname).items())) for p in sweep.points}


def _wait_until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def _events_in(run_dir: Path) -> int:
    path = run_dir / "events.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


# ---------------------------------------------------------------------------------------------- unit


def test_worker_counts_and_dask_targets_are_checked_in_one_line():
    with pytest.raises(InvalidArgument, match=r"workers must be a whole number >= 1; got 0"):
        PoolExecutor(0)
    with pytest.raises(InvalidArgument, match=r"workers must be a whole number >= 1; got '2'"):
        PoolExecutor("2")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"dask must be a scheduler address such as 'tcp://127.0.0.1:8786'.*"
                                              r"got 'localhost:8786'"):
        DaskExecutor(address_or_client="localhost:8786")


def test_make_executor_builds_the_parallel_kinds_without_starting_anything():
    pool = make_executor("pool", workers=3)
    assert isinstance(pool, PoolExecutor)
    assert (pool.name, pool.workers) == ("pool", 3)
    remote = make_executor("dask", dask="tcp://127.0.0.1:1")  # nothing listens there: nothing is contacted yet
    assert isinstance(remote, DaskExecutor)
    assert remote.name == "dask"
    assert remote.workers == 0
    assert make_executor("dask", workers=2).workers == 2


def test_no_tasks_start_no_workers():
    seen: list = []
    PoolExecutor(2).run([], seen.append, seen.append)
    DaskExecutor(2).run([], seen.append, seen.append)
    assert seen == []


def test_a_notebook_cell_error_is_one_line_naming_the_cell_and_the_exception():
    from papermill.exceptions import PapermillExecutionError

    exc = PapermillExecutionError(cell_index=3, exec_count=4, source="x", ename="ValueError",
                                  evalue="bad\nvalue", traceback=["line 1", "line 2"])
    assert _cell_error(exc) == "notebook cell [4] raised ValueError: bad value"
    assert _cell_error(OSError("disk\nfull")) == "OSError: disk full"


def test_kernel_socket_directories_are_fresh_and_short_enough_for_a_unix_socket(monkeypatch, tmp_path):
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    first, second = _socket_dir(), _socket_dir()
    try:
        assert first != second
        assert len(os.path.join(first, "k-99")) < 100
    finally:
        os.rmdir(first)
        os.rmdir(second)


def test_notebook_mode_without_a_notebook_fails_the_point_in_one_line(tmp_path):
    task = PointTask("p000", "p000-x", str(tmp_path), str(tmp_path / "spec.yaml"), False, "notebook", None,
                     str(REPO))
    outcome = run_notebook_point(task)
    assert outcome.status == "failed"
    assert "\n" not in outcome.error
    assert "notebook mode needs the sweep's `notebook:` path" in outcome.error


# ---------------------------------------------------------------------------------------------- in-process


@pytest.mark.integration
def test_pool_and_local_cluster_match_a_sequential_run(tmp_path, no_results):
    path = _sweep_file(tmp_path)
    sweep = load_sweep(path)
    summaries = {}
    for executor in ("seq", "pool", "dask"):
        sweeps_dir = tmp_path / executor
        run_sweep(path, sweeps_dir=sweeps_dir, executor=executor, workers=None if executor == "seq" else 2,
                  progress=False)
        root = sweeps_dir / "grid"
        summaries[executor] = _summary(root, sweep)
        assert point_states(root) == {p.point_id: "done" for p in sweep.points}, executor
        workers = {_point_json(root, p.dirname)["worker"] for p in sweep.points}
        if executor != "seq":
            assert all(str(os.getpid()) not in w for w in workers), f"{executor} ran a point in the driver"
    assert summaries["seq"] == summaries["pool"] == summaries["dask"]
    assert all(status == "complete" and counts and all(n == 1 for _, n in counts)
               for status, counts in summaries["seq"].values())


def _kill_mid_run(root: Path, slow_dirname: str, beside_dirname: str) -> int:
    """SIGKILL the process running ``slow_dirname`` once it has recorded a request and ``beside_dirname`` is
    running on another worker."""
    run_dir = root / "points" / slow_dirname
    _wait_until(lambda: _events_in(run_dir) >= 1 and is_locked(root / "points" / beside_dirname),
                f"{slow_dirname} recorded a request while {beside_dirname} runs")
    holder = lock_holder(run_dir)
    assert holder is not None
    assert holder["pid"] != os.getpid()
    os.kill(holder["pid"], signal.SIGKILL)
    return holder["pid"]


@pytest.mark.integration
@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_a_killed_worker_fails_its_point_only_and_a_retry_finishes_it(tmp_path, no_results, executor):
    import threading

    path = _sweep_file(tmp_path, KILLED, name="killed")
    sweep = load_sweep(path)
    slow, beside = sweep.points[1], sweep.points[2]
    root = tmp_path / "sweeps" / "killed"
    killed: list[int] = []
    killer = threading.Thread(target=lambda: killed.append(_kill_mid_run(root, slow.dirname, beside.dirname)),
                              daemon=True)
    killer.start()
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", executor=executor, workers=2, progress=False)
    killer.join(timeout=5)
    assert killed, "the slow point's worker was never killed"

    states = {p.point_id: _point_json(root, p.dirname) for p in sweep.points}
    assert states[slow.point_id]["status"] == "failed"
    assert "died" in states[slow.point_id]["error"]
    assert "\n" not in states[slow.point_id]["error"]
    assert [states[p.point_id]["status"] for p in sweep.points if p is not slow] == ["complete"] * 3
    assert _events_in(root / "points" / slow.dirname) < 6  # it really was stopped in the middle
    assert states[beside.point_id]["worker"].rsplit(":", 1)[1] != str(killed[0])  # it ran beside, not after

    run_sweep(path, sweeps_dir=tmp_path / "sweeps", executor="seq", progress=False)  # failed: skipped
    assert _point_json(root, slow.dirname)["status"] == "failed"
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", executor="seq", retry_failed=True, progress=False)
    assert point_states(root) == {p.point_id: "done" for p in sweep.points}
    keys = event_keys(root / "points" / slow.dirname)
    assert sum(keys.values()) == 6
    assert set(keys.values()) == {1}


# spawned workers import the main module again: a script that starts a sweep keeps it under __main__
DRIVER = """\
import sys
from tsglab.sweep import driver, run_sweep

if __name__ == "__main__":
    driver._results_module = lambda: None
    try:
        run_sweep({path!r}, sweeps_dir={sweeps!r}, executor={executor!r}, workers=2, progress=False)
    except KeyboardInterrupt:
        sys.exit(130)
"""


@pytest.mark.integration
@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_ctrl_c_keeps_finished_points_and_the_rest_resume(tmp_path, executor):
    path = _sweep_file(tmp_path, PACED, name="paced")
    sweep = load_sweep(path)
    fast, slow = sweep.points[0], sweep.points[1]
    root = tmp_path / "sweeps" / "paced"
    script = tmp_path / "drive.py"
    script.write_text(DRIVER.format(path=str(path), sweeps=str(tmp_path / "sweeps"), executor=executor),
                      encoding="utf-8")
    child = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=child_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        fast_done = root / "points" / fast.dirname / "point.json"
        _wait_until(lambda: fast_done.exists() and json.loads(fast_done.read_text())["status"] == "complete",
                    f"{fast.point_id} complete")
        _wait_until(lambda: _events_in(root / "points" / slow.dirname) >= 1, f"{slow.point_id} started")
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, err[-3000:]
    assert _point_json(root, fast.dirname)["status"] == "complete"
    assert _point_json(root, slow.dirname)["status"] == "incomplete"
    states = point_states(root)
    assert states[fast.point_id] == "done"
    assert states[slow.point_id] == "incomplete"
    if executor == "pool":  # the pool stops its workers: the runner marked the run incomplete itself
        manifest = json.loads((root / "points" / slow.dirname / "run.json").read_text())
        assert manifest["status"] == "incomplete"

    run_sweep(path, sweeps_dir=tmp_path / "sweeps", executor="seq", progress=False)
    assert point_states(root) == {p.point_id: "done" for p in sweep.points}
    keys = event_keys(root / "points" / slow.dirname)
    assert sum(keys.values()) == 6
    assert set(keys.values()) == {1}


@pytest.mark.integration
def test_the_command_line_reaches_a_running_scheduler_and_a_passed_client_stays_open(tmp_path, no_results):
    from distributed import Client, LocalCluster

    path = _sweep_file(tmp_path)
    sweep = load_sweep(path)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        assert cli.main(["sweep", str(path), "--executor", "dask", "--dask", address,
                         "--sweeps-dir", str(tmp_path / "cli"), "--quiet"]) == 0
        root = tmp_path / "cli" / "grid"
        assert point_states(root) == {p.point_id: "done" for p in sweep.points}
        with Client(cluster) as client:
            worker_pids = {str(pid) for pid in client.run(os.getpid).values()}
            assert {_point_json(root, p.dirname)["worker"].rsplit(":", 1)[1] for p in sweep.points} <= worker_pids
            run_sweep(path, sweeps_dir=tmp_path / "api", executor="dask", dask=client, progress=False)
            assert client.status == "running"  # ours to close, not the sweep's
            assert client.submit(sum, [1, 2]).result(timeout=30) == 3
        assert point_states(tmp_path / "api" / "grid") == {p.point_id: "done" for p in sweep.points}


# ---------------------------------------------------------------------------------------------- notebook mode

NOTEBOOK_SOURCE = """\
import os
import tsglab
from ipykernel.connect import get_connection_info

params = tsglab.notebook_params(spec=spec, runs_dir=runs_dir, run_id=run_id, resume=resume)
result = tsglab.run(params.spec, runs_dir=params.runs_dir, run_id=params.run_id, resume=params.resume,
                    progress=False)
print("transport", get_connection_info(unpack=True)["transport"])
print("cwd", os.getcwd())
print("root", os.environ.get("TSGLAB_PROJECT_ROOT"))
"""


def _notebook(path: Path) -> Path:
    """The smallest run notebook: the flat parameters every tsglab run notebook has, and the run."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell('spec = None\nruns_dir = "runs"\nrun_id = None\nresume = None')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(NOTEBOOK_SOURCE)]
    nbformat.write(nb, path)
    return path


def _printed(notebook: Path) -> dict[str, str]:
    nb = nbformat.read(notebook, as_version=4)
    text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []))
    return dict(line.split(" ", 1) for line in text.splitlines() if " " in line)


@pytest.mark.integration
@pytest.mark.parametrize("executor", ["pool", "dask"])
def test_four_notebook_points_on_two_workers_each_keep_their_notebook_and_run(tmp_path, no_results, executor):
    _notebook(tmp_path / "run.ipynb")
    path = _sweep_file(tmp_path, GRID + "mode: notebook\nnotebook: run.ipynb\n", limit=2)
    sweep = load_sweep(path)
    cwd = os.getcwd()
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", executor=executor, workers=2, progress=False)
    assert os.getcwd() == cwd
    root = tmp_path / "sweeps" / "grid"
    assert point_states(root) == {p.point_id: "done" for p in sweep.points}
    for point in sweep.points:
        run_dir = root / "points" / point.dirname
        printed = _printed(run_dir / "notebook.ipynb")
        assert printed["transport"] == "ipc"  # no TCP port to race for
        assert Path(printed["cwd"]) == run_dir.resolve()  # the kernel's own directory, not a chdir
        assert printed["root"] == str(REPO)
        assert sum(event_keys(run_dir).values()) == 2 * 2
