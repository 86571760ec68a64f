"""The live sweep monitor against a sweep directory that grows (the plan and each point's state written
here with the sweep store, as the driver writes them): its counts, running and failed points, results
table, throttle, the end of its thread, and what an executed notebook keeps of it (papermill/nbclient)."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from _rundir_helpers import write_spec

from tsglab.events import EVENTS_FILE, synthetic_event, write_manifest
from tsglab.jupyter.sweep_monitor import SweepMonitor, read_points
from tsglab.load.rundir import now_iso
from tsglab.sweep import load_sweep
from tsglab.sweep.store import SweepStore

GRID = {"arms.tsg.thr_std": [0.3, 0.4], "tiers.light.max_tokens": [32, 64]}


def write_sweep_file(folder: Path, grid: dict = GRID, *, name: str = "thresholds", limit: int = 2) -> Path:
    """A sweep file over a scripted base spec (no model needed)."""
    write_spec(folder, name="base", limit=limit)
    lines = [f"name: {name}", "base: base.yaml", "grid:"] + [f"  {key}: {values}" for key, values in grid.items()]
    path = folder / f"{name}.sweep.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class SweepDir:
    """A sweep directory the test grows by hand, with the store's own writers: the plan in sweep.json, then
    one point's state at a time. ``locked``: hold the sweep's lock as a driver does."""

    def __init__(self, folder: Path, grid: dict = GRID, *, locked: bool = False) -> None:
        self.plan = load_sweep(write_sweep_file(folder, grid))
        self.root = folder / "sweeps" / self.plan.name
        self.store = SweepStore.open(self.root, purpose="test")
        self.store.write_sweep(self.plan, executor="seq", workers=1, started=now_iso(), finished=None,
                               status="running")
        for point in self.plan.points:
            self.store.write_spec(point)
        if not locked:
            self.store.release()

    def run_dir(self, i: int) -> Path:
        return self.store.point_dir(self.plan.points[i].dirname)

    def running(self, i: int, started: str | None = None) -> None:
        self.store.write_point(self.plan.points[i].dirname, status="running", started=started or now_iso(),
                               worker="host:1")

    def complete(self, i: int, n: int = 6) -> list:
        events = [synthetic_event(f"q{k}", raw_ms=10.0 * (i + 1) + k, co_ms=12.0 * (i + 1) + k, arm=arm, seq=k,
                                  quality=float(k % 2), cost_ms=3.0 * (k + 1), timeout=arm == "tsg" and k == 0)
                  for arm in ("baseline", "tsg") for k in range(n)]
        self.run_dir(i).mkdir(parents=True, exist_ok=True)
        (self.run_dir(i) / EVENTS_FILE).write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
        write_manifest(self.run_dir(i), {"status": "complete"})
        self.store.write_point(self.plan.points[i].dirname, status="complete", seconds=1.5)
        return events

    def fail(self, i: int, error: str) -> None:
        self.store.write_point(self.plan.points[i].dirname, status="failed", error=error)

    def interrupted(self, i: int) -> None:
        write_manifest(self.run_dir(i), {"status": "incomplete"})
        self.store.write_point(self.plan.points[i].dirname, status="incomplete", error="interrupted (Ctrl-C)")


def _sweep_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tsglab-sweep")]


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- reading the directory ------------------------------------------------------------------------------------


def test_states_come_from_the_store_and_running_from_point_json(tmp_path):
    sweep = SweepDir(tmp_path)
    assert [p.status for p in read_points(sweep.root)] == ["pending"] * 4
    sweep.running(0)
    sweep.fail(1, "RunError: boom")
    sweep.complete(2)
    sweep.interrupted(3)
    points = read_points(sweep.root)
    assert [p.status for p in points] == ["running", "failed", "done", "incomplete"]
    assert points[1].error == "RunError: boom"
    assert points[3].error == "interrupted (Ctrl-C)"
    assert points[0].params == {"arms.tsg.thr_std": 0.3, "tiers.light.max_tokens": 32}
    assert read_points(tmp_path / "nothing-yet") == []  # no sweep.json yet: no points, no error


def test_a_point_left_running_by_an_earlier_sweep_is_incomplete(tmp_path):
    sweep = SweepDir(tmp_path)
    sweep.running(0, started="2020-01-01T00:00:00+00:00")  # before this sweep's start: its driver was killed
    assert read_points(sweep.root)[0].status == "incomplete"


def test_counts_and_table_follow_a_growing_directory(tmp_path):
    sweep = SweepDir(tmp_path)
    monitor = SweepMonitor(show=False, table_interval_s=0)
    monitor.start(sweep.root, sweep.plan.points)
    try:
        assert monitor.progress_text() == "0/4 points"
        sweep.running(0)
        monitor._refresh()
        assert monitor.counts() == {"done": 0, "running": 1, "failed": 0, "incomplete": 0, "pending": 3}
        later = monitor._clock() + 75
        monitor._clock = lambda: later  # 75 s on
        assert "running p000 (arms.tsg.thr_std=0.3, tiers.light.max_tokens=32) for 1:1" in monitor.to_text()
        monitor._clock = time.time
        events = sweep.complete(0)
        sweep.fail(1, "BackendUnavailable: light tier at 127.0.0.1:9 refused the connection")
        sweep.running(2)
        monitor._refresh()
        monitor._build_table(force=False)
        assert monitor.progress_text() == "1/4 points"
        assert monitor.status_text() == "1 done, 1 running, 1 failed, 1 pending"
        page = monitor.to_html()
        assert 'class="tsglab-sweep-progress">1/4 points<' in page
        assert "refused the connection" in page
        assert "refused the connection" in monitor.to_text()
        table = monitor.to_frame()
        assert list(table["arm"]) == ["baseline", "tsg"]
        assert set(table["point_id"]) == {"p000"}
        assert (table["arms.tsg.thr_std"] == 0.3).all()
        assert (table["tiers.light.max_tokens"] == 32).all()
        tsg = [e for e in events if e.arm == "tsg"]
        row = table[table["arm"] == "tsg"].iloc[0]
        assert row["n"] == len(tsg)
        assert row["errors"] == 1
        answered = [e.latency.raw_ms for e in tsg if e.error is None]
        assert row["raw P50 ms"] == pytest.approx(np.quantile(answered, 0.5))
        assert row["eval ms/req"] == pytest.approx(np.mean([e.latency.cost_ms for e in tsg]))
        assert row["quality"] == pytest.approx(np.mean([e.quality.score for e in tsg]))
        assert 'class="tsglab-sweep-table"' in page
        sweep.complete(2)
        sweep.complete(3)
        monitor._refresh()
        monitor._build_table(force=False)
        assert monitor.progress_text() == "3/4 points"
        assert list(monitor.to_frame()["point_id"]) == ["p000", "p000", "p002", "p002", "p003", "p003"]
    finally:
        monitor.close("interrupted")
    assert monitor.status == "interrupted"
    assert 'class="tsglab-sweep-status">interrupted<' in monitor.to_html()


def test_the_owner_thread_shows_a_finished_point_without_being_asked(tmp_path):
    sweep = SweepDir(tmp_path)
    monitor = SweepMonitor(show=False, interval_s=0.05, text_interval_s=0.05, table_interval_s=0).start(sweep.root)
    sweep.complete(0)
    monitor.point_done()
    _wait_for(lambda: len(monitor.to_frame()) == 2)
    for i in (1, 2, 3):
        sweep.complete(i)
    monitor.close("complete")
    assert monitor.progress_text() == "4/4 points"
    assert len(monitor.to_frame()) == 8  # the final read and table build see the last points
    assert monitor.error is None


# -- the throttle and the thread --------------------------------------------------------------------------------


def test_the_table_is_rebuilt_only_when_a_point_finished_and_at_most_every_interval(tmp_path):
    sweep = SweepDir(tmp_path, {"seed": list(range(20))})
    interval = 0.3
    monitor = SweepMonitor(show=False, interval_s=0.02, text_interval_s=0.02, table_interval_s=interval)
    monitor.start(sweep.root)
    time.sleep(0.3)  # ~15 ticks with nothing finished
    assert monitor.table_builds == 0
    sweep.complete(0, n=2)
    _wait_for(lambda: monitor.table_builds == 1)  # the first build also pays the statistics' first import
    started = time.monotonic()
    for i in range(1, 20):  # a point finishes every ~0.05 s: far more often than the table may be rebuilt
        sweep.complete(i, n=2)
        monitor.point_done()
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    monitor.close("complete")
    assert monitor.renders > monitor.table_builds
    during = monitor.table_builds - 1  # after the first build
    assert 2 <= during <= math.floor(elapsed / interval) + 2  # + 1: one at the window's start, + 1: the final
    assert len(monitor.to_frame()) == 2 * 20


def test_the_thread_ends_by_itself_when_the_driver_lets_go_of_the_sweep(tmp_path):
    """A driver that ends without close() (an error between its start and its end) releases the sweep's
    lock all the same; the owner sees it and ends, so no thread writes into later cells."""
    sweep = SweepDir(tmp_path, locked=True)
    monitor = SweepMonitor(show=False, interval_s=0.05).start(sweep.root)
    time.sleep(0.2)
    assert monitor._thread is not None
    assert monitor._thread.is_alive()
    sweep.store.release()
    _wait_for(lambda: not monitor._thread.is_alive(), timeout_s=5)
    assert monitor.status == "stopped"
    assert _sweep_threads() == []


def test_thread_stops_on_completion_exception_and_interrupt(tmp_path):
    sweep = SweepDir(tmp_path)
    statuses = []
    for raised in (None, RuntimeError("scheduler lost"), KeyboardInterrupt()):
        monitor = SweepMonitor(show=False).start(sweep.root)
        assert monitor._thread is not None
        assert monitor._thread.is_alive()
        try:
            if raised is not None:
                raise raised
        except BaseException:  # noqa: BLE001 (the driver closes its display while the exception is handled)
            monitor.close()
        else:
            monitor.close()
        statuses.append(monitor.status)
        assert not monitor._thread.is_alive()
        assert monitor.error is None
    assert statuses == ["complete", "failed: RuntimeError: scheduler lost", "interrupted"]
    assert _sweep_threads() == []


def test_bad_intervals_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"interval_s must be > 0.*Use e.g. 0.5, 1.0 and 2.0"):
        SweepMonitor(interval_s=0)
    with pytest.raises(ValueError, match=r"table must be 'running' or 'report'; got 'fancy'"):
        SweepMonitor(table="fancy")  # type: ignore[arg-type]


# -- papermill / nbclient ----------------------------------------------------------------------------------------


@pytest.mark.integration
def test_tsg_sweep_in_an_executed_notebook_keeps_the_final_summary(tmp_path):
    """``%tsg sweep FILE`` in a real kernel under nbclient (papermill's executor), with the scripted backend:
    the sweep shows the monitor by default; the saved notebook holds the final "N/N points" summary with a
    row per point x arm as static HTML and text, no widget view, and the display was updated on the way."""
    import nbformat
    from nbclient import NotebookClient

    sweep_file = write_sweep_file(tmp_path, {"arms.tsg.thr_std": [0.3, 0.4, 0.5]}, limit=3)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext tsglab"),
                nbformat.v4.new_code_cell(f"%tsg sweep {sweep_file} --sweeps-dir {tmp_path / 'sweeps'}")]
    updates: list[str] = []

    class Recording(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            if msg["header"]["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"]["text/plain"])
            return super().process_message(msg, cell, cell_index)

    Recording(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text(encoding="utf-8")
    displays = [o for o in nb.cells[1].outputs if o["output_type"] == "display_data"
                and "tsglab sweep" in o["data"].get("text/plain", "")]
    assert len(displays) == 1, nb.cells[1].outputs
    data = displays[0]["data"]
    assert set(data) == {"text/plain", "text/html"}  # the widget view was replaced by the static summary
    assert "tsglab sweep thresholds: complete, 3/3 points" in data["text/plain"]
    assert 'class="tsglab-sweep-status">complete<' in data["text/html"]
    table = data["text/html"].split('class="tsglab-sweep-table"')[1]
    assert table.count("<tr>") == 1 + 3 * 2  # the heading, then a row per point x arm
    assert "application/vnd.jupyter.widget-view+json" not in saved
    assert updates, "the display was never updated while the sweep ran"
    assert any("running" in u for u in updates)
