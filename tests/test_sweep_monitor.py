"""The live sweep monitor against a sweep directory that grows (sweep.json and each point's point.json
written here, as the driver writes them): its counts, running and failed points, results table, throttle,
the end of its thread, and what an executed notebook keeps of it (papermill/nbclient)."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tsglab.events import EVENTS_FILE, synthetic_event
from tsglab.jupyter.sweep_monitor import SweepMonitor, read_points

PARAMS = [{"arms.tsg.thr_std": t, "tiers.light.max_tokens": m} for t in (0.3, 0.4) for m in (32, 64)]


def _atomic_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


class SweepDir:
    """A sweep directory the test grows by hand: the plan in sweep.json, then one point at a time."""

    def __init__(self, root: Path, params: list[dict] = PARAMS) -> None:
        self.root = root
        self.plan = [{"point_id": f"p{i:03d}", "dirname": f"p{i:03d}-{i:010x}", "key": f"{i:064x}", "params": p,
                      "replicate": 0, "seed": 0, "report": {}} for i, p in enumerate(params)]
        _atomic_json(root / "sweep.json", {"name": "thresholds", "points": self.plan, "executor": "seq"})

    def run_dir(self, i: int) -> Path:
        return self.root / "points" / self.plan[i]["dirname"]

    def state(self, i: int, status: str, **extra) -> None:
        _atomic_json(self.run_dir(i) / "point.json", {"status": status, "worker": "host:1", **extra})

    def running(self, i: int, started: float | None = None) -> None:
        self.state(i, "running", started=time.time() if started is None else started)

    def complete(self, i: int, n: int = 6) -> list:
        events = [synthetic_event(f"q{k}", raw_ms=10.0 * (i + 1) + k, co_ms=12.0 * (i + 1) + k, arm=arm, seq=k,
                                  quality=float(k % 2), cost_ms=3.0 * (k + 1), timeout=arm == "tsg" and k == 0)
                  for arm in ("baseline", "tsg") for k in range(n)]
        self.run_dir(i).mkdir(parents=True, exist_ok=True)
        (self.run_dir(i) / EVENTS_FILE).write_text("".join(json.dumps(e.to_json()) + "\n" for e in events))
        self.state(i, "complete", seconds=1.5)
        return events

    def fail(self, i: int, error: str) -> None:
        self.state(i, "failed", error=error)


def _sweep_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tsglab-sweep")]


def _wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


# -- reading the directory ------------------------------------------------------------------------------------


def test_states_come_from_point_json_and_a_finished_run_without_one(tmp_path):
    sweep = SweepDir(tmp_path)
    assert [p.status for p in read_points(tmp_path)] == ["pending"] * 4
    sweep.running(0)
    sweep.fail(1, "RunError: boom")
    sweep.run_dir(2).mkdir(parents=True)
    (sweep.run_dir(2) / "run.json").write_text(json.dumps({"status": "complete"}))  # finished by an earlier sweep
    sweep.state(3, "incomplete")
    points = read_points(tmp_path)
    assert [p.status for p in points] == ["running", "failed", "complete", "incomplete"]
    assert points[1].error == "RunError: boom"
    assert points[0].params == PARAMS[0]
    assert read_points(tmp_path / "nothing-yet") == []  # no sweep.json yet: no points, no error
    assert [p.point_id for p in read_points(tmp_path, sweep.plan[:2])] == ["p000", "p001"]  # the driver's plan


def test_counts_and_table_follow_a_growing_directory(tmp_path):
    sweep = SweepDir(tmp_path)
    monitor = SweepMonitor(show=False, table_interval_s=0)
    monitor.start(tmp_path, sweep.plan)
    try:
        assert monitor.progress_text() == "0/4 points"
        sweep.running(0, started=time.time() - 75)
        monitor._refresh()
        assert monitor.counts() == {"complete": 0, "running": 1, "failed": 0, "incomplete": 0, "pending": 3}
        text = monitor.to_text()
        assert "running p000 (arms.tsg.thr_std=0.3, tiers.light.max_tokens=32) for 1:1" in text  # 1:15 or 1:16
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
    monitor = SweepMonitor(show=False, interval_s=0.05, text_interval_s=0.05, table_interval_s=0).start(tmp_path)
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
    params = [{"seed": s} for s in range(20)]
    sweep = SweepDir(tmp_path, params)
    interval = 0.3
    monitor = SweepMonitor(show=False, interval_s=0.02, text_interval_s=0.02, table_interval_s=interval)
    monitor.start(tmp_path)
    time.sleep(0.3)  # ~15 ticks with nothing finished
    assert monitor.table_builds == 0
    started = time.monotonic()
    for i in range(len(params)):  # a point finishes every ~0.05 s: far more often than the table may be rebuilt
        sweep.complete(i, n=2)
        monitor.point_done()
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    monitor.close("complete")
    assert monitor.renders > monitor.table_builds
    assert 2 <= monitor.table_builds <= math.floor(elapsed / interval) + 2  # + 1: the first, + 1: the final
    assert len(monitor.to_frame()) == 2 * len(params)


def test_thread_stops_on_completion_exception_and_interrupt(tmp_path):
    SweepDir(tmp_path)
    statuses = []
    for raised in (None, RuntimeError("scheduler lost"), KeyboardInterrupt()):
        monitor = SweepMonitor(show=False).start(tmp_path)
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
def test_executed_notebook_keeps_the_final_summary(tmp_path):
    """The monitor in a real kernel under nbclient (papermill's executor), the directory growing while the
    cell runs: the saved notebook holds the final "N/N points" summary as static HTML and text, no widget
    view, and the display was updated in place on the way."""
    import nbformat
    from nbclient import NotebookClient

    sweep = SweepDir(tmp_path)
    grow = f"""
import json, os, time
from pathlib import Path
from tsglab.events import synthetic_event
from tsglab.jupyter.sweep_monitor import SweepMonitor
root = Path({str(tmp_path)!r})
plan = json.loads((root / "sweep.json").read_text())["points"]
monitor = SweepMonitor(interval_s=0.1, text_interval_s=0.2, table_interval_s=0.2).start(root, plan)
for entry in plan:
    run_dir = root / "points" / entry["dirname"]
    run_dir.mkdir(parents=True)
    (run_dir / "point.json").write_text(json.dumps({{"status": "running", "started": time.time()}}))
    time.sleep(0.4)
    events = [synthetic_event(f"q{{k}}", raw_ms=20.0 + k, arm=arm, seq=k)
              for arm in ("baseline", "tsg") for k in range(3)]
    (run_dir / "events.jsonl").write_text("".join(json.dumps(e.to_json()) + "\\n" for e in events))
    (run_dir / "point.tmp").write_text(json.dumps({{"status": "complete", "seconds": 0.4}}))
    os.replace(run_dir / "point.tmp", run_dir / "point.json")
    monitor.point_done()
monitor.close("complete")
"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(grow)]
    updates: list[str] = []

    class Recording(NotebookClient):
        def process_message(self, msg, cell, cell_index):
            if msg["header"]["msg_type"] == "update_display_data":
                updates.append(msg["content"]["data"]["text/plain"])
            return super().process_message(msg, cell, cell_index)

    Recording(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    path = tmp_path / "executed.ipynb"
    nbformat.write(nb, path)
    saved = path.read_text(encoding="utf-8")
    displays = [o for o in nb.cells[0].outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1, nb.cells[0].outputs
    data = displays[0]["data"]
    assert set(data) == {"text/plain", "text/html"}  # the widget view was replaced by the static summary
    assert f"complete, {len(sweep.plan)}/{len(sweep.plan)} points" in data["text/plain"]
    assert 'class="tsglab-sweep-status">complete<' in data["text/html"]
    assert 'class="tsglab-sweep-table"' in data["text/html"]
    assert data["text/html"].count("<tr>") == 1 + 2 * len(sweep.plan)  # heading + a row per point x arm
    assert "application/vnd.jupyter.widget-view+json" not in saved
    assert any("running" in u and "running p0" in u for u in updates)  # a running point was shown on the way
