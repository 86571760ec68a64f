"""The live run monitor: its incremental reader, its figures, its throttle, its thread's end, and what an
executed notebook keeps of it (papermill/nbclient)."""

from __future__ import annotations

import json
import math
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter

import numpy as np
import pytest
from _rundir_helpers import InterruptAt, answer, write_spec

from tsglab.events import EVENTS_FILE, synthetic_event
from tsglab.jupyter.monitor import MIN_N, EventTail, RunMonitor


def _line(event) -> bytes:
    return (json.dumps(event.to_json()) + "\n").encode()


def _events(n: int, *, arm: str = "tsg", seed: int = 0, errors_every: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        raw = float(rng.lognormal(3.0, 0.6))
        kind = "timeout" if errors_every and i % errors_every == errors_every - 1 else ""
        out.append(synthetic_event(f"p{i}", raw_ms=raw, co_ms=raw + float(rng.exponential(5.0)), arm=arm, seq=i,
                                   quality=float(rng.integers(0, 2)), cost_ms=2 * raw, timeout=kind == "timeout"))
    return out


def _monitor_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tsglab-monitor")]


# -- the incremental reader ----------------------------------------------------------------------------


def test_tail_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / EVENTS_FILE
    tail = EventTail(path)
    assert tail.read_new() == []  # no log yet: nothing, no error
    events = _events(4)
    torn = _line(events[3])
    path.write_bytes(b"".join(_line(e) for e in events[:3]) + torn[:25])  # a writer mid-line
    assert [e.prompt_id for e in tail.read_new()] == ["p0", "p1", "p2"]
    assert tail.read_new() == []  # the torn tail is left for later, not decoded or counted
    with path.open("ab") as handle:
        handle.write(torn[25:])
    assert [e.prompt_id for e in tail.read_new()] == ["p3"]
    with path.open("ab") as handle:
        handle.write(b'{"not": "an event"}\n' + _line(_events(1, arm="other")[0]))
    assert [e.arm for e in tail.read_new()] == ["other"]  # the bad line skipped and counted
    assert tail.unreadable == 1


def test_monitor_adds_an_arm_that_appears_in_the_log(tmp_path):
    path = tmp_path / EVENTS_FILE
    monitor = RunMonitor(path, arms=["baseline"], planned_per_arm=3, show=False)
    path.write_bytes(b"".join(_line(e) for e in _events(2, arm="baseline")))
    monitor._refresh()
    assert list(monitor.arms) == ["baseline"]
    assert monitor.progress_text() == "2/3 requests"
    with path.open("ab") as handle:
        handle.write(b"".join(_line(e) for e in _events(1, arm="tsg")))
    monitor._refresh()
    assert list(monitor.arms) == ["baseline", "tsg"]
    assert monitor.arms["tsg"].progress_text() == "1/3 requests"
    assert monitor.progress_text() == "3/6 requests"


# -- the figures -----------------------------------------------------------------------------------------


def test_figures_match_a_direct_computation(tmp_path):
    events = _events(150, errors_every=7)
    path = tmp_path / EVENTS_FILE
    path.write_bytes(b"".join(_line(e) for e in events))
    monitor = RunMonitor(path, arms=["tsg"], planned_per_arm=200, show=False)
    monitor._refresh()
    got = monitor.arms["tsg"].summary()
    answered = [e for e in events if e.error is None]
    raw = np.array([e.latency.raw_ms for e in answered])
    co = np.array([e.latency.co_ms for e in answered])
    lag = np.array([e.latency.dispatch_lag_ms for e in events])
    assert got["done"] == 150
    assert got["answered"] == len(answered) < 150
    for key, values, q in (("raw_p50_ms", raw, 0.5), ("raw_p95_ms", raw, 0.95), ("co_p50_ms", co, 0.5),
                           ("co_p95_ms", co, 0.95), ("lag_p50_ms", lag, 0.5), ("lag_p99_ms", lag, 0.99)):
        assert got[key] == pytest.approx(np.quantile(values, q), rel=1e-12), key
    assert got["avg_eval_ms"] == pytest.approx(np.mean([e.latency.cost_ms for e in events]))
    assert got["mean_quality"] == pytest.approx(np.mean([e.quality.score for e in events]))
    assert got["errors"] == dict(Counter(e.error.kind for e in events if e.error is not None))


def test_small_samples_say_n_below_k(tmp_path):
    path = tmp_path / EVENTS_FILE
    path.write_bytes(b"".join(_line(e) for e in _events(MIN_N[0.95] - 1)))
    monitor = RunMonitor(path, arms=["tsg"], planned_per_arm=40, run_id="r", show=False)
    monitor._refresh()
    summary = monitor.arms["tsg"].summary()
    assert summary["raw_p95_ms"] is None
    assert summary["raw_p50_ms"] is not None
    text = monitor.to_text()
    assert f"raw P50 / P95 {summary['raw_p50_ms']:.1f} ms / n < {MIN_N[0.95]}" in text
    assert f"{MIN_N[0.95] - 1}/40 requests" in text
    assert 'class="tsglab-monitor-progress"' in monitor.to_html()


# -- what is shown: one table row per arm -----------------------------------------------------------------


def _table(monitor: RunMonitor) -> ET.Element:
    """The monitor's HTML parsed strictly (it must be well-formed: the live widget and the saved output show it)."""
    return ET.fromstring(monitor.to_html())


def test_html_is_one_row_per_arm_with_a_cell_per_heading(tmp_path):
    path = tmp_path / EVENTS_FILE
    events = _events(30, arm="tsg") + _events(6, arm="a<b>&c", seed=1)
    path.write_bytes(b"".join(_line(e) for e in events))
    monitor = RunMonitor(path, arms=["tsg", "a<b>&c"], planned_per_arm=30, run_id="r1", show=False)
    monitor._refresh()
    root = _table(monitor)
    assert root.get("class") == "tsglab-monitor"
    headings = ["".join(th.itertext()) for th in root.iter("th") if th.get("style", "").find("border-bottom") >= 0]
    rows = [tr for tr in root.iter("tr") if tr.get("class") == "tsglab-monitor-arm"]
    assert [row.find("th").text for row in rows] == ["tsg", "a<b>&c"]  # escaped in the HTML, intact as text
    for row, done in zip(rows, (30, 6), strict=True):
        assert len(row) == len(headings)  # arm, progress and a cell per figure: nothing spills over
        assert row.find(".//span[@class='tsglab-monitor-progress']").text == f"{done}/30 requests"
        fill = row.find(".//td/span/span")  # the bar's filled part
        assert f"width: {100 * done / 30:.1f}%" in fill.get("style")
    full = monitor.arms["tsg"].summary()
    cells = {h: "".join(td.itertext()) for h, td in zip(headings[2:], rows[0].findall("td")[1:], strict=True)}
    assert cells["raw P50 / P95"] == f"{full['raw_p50_ms']:.1f} / {full['raw_p95_ms']:.1f} ms"
    assert cells["lag P50 / P99"] == f"{full['lag_p50_ms']:.1f} ms / n < {MIN_N[0.99]}"
    short = dict(zip(headings[2:], ["".join(td.itertext()) for td in rows[1].findall("td")[1:]], strict=True))
    assert short["CO P50 / P95"].endswith(f"/ n < {MIN_N[0.95]}")


def test_caption_says_running_then_final(tmp_path):
    path = tmp_path / EVENTS_FILE
    path.write_bytes(b"".join(_line(e) for e in _events(3)))
    monitor = RunMonitor(path, arms=["tsg"], planned_per_arm=3, show=False).start()
    assert "running figures so far" in monitor.to_html()
    monitor.close()
    assert monitor.status == "complete"
    for shown in (monitor.to_html(), monitor.to_text()):
        assert "final figures (the report gives CIs)" in shown
        assert "running figures" not in shown


# -- the throttle and the thread ----------------------------------------------------------------------


def test_updates_are_throttled(tmp_path):
    path = tmp_path / EVENTS_FILE
    interval = 0.1
    monitor = RunMonitor(path, arms=["tsg"], planned_per_arm=300, show=False, interval_s=interval,
                         text_interval_s=interval).start()
    started = time.monotonic()
    with path.open("ab") as handle:
        for event in _events(300):  # 300 events in ~0.6 s: far more events than updates allowed
            handle.write(_line(event))
            handle.flush()
            time.sleep(0.002)
    monitor.close()
    elapsed = time.monotonic() - started
    assert monitor.arms["tsg"].done == 300
    assert monitor.status == "complete"
    assert monitor.renders <= math.floor(elapsed / interval) + 1  # + 1: the final update
    assert monitor.renders >= 2  # intermediate updates happened, and the final one


def test_thread_stops_on_completion_exception_and_interrupt(tmp_path):
    statuses = []
    for raised in (None, RuntimeError("backend exploded"), KeyboardInterrupt()):
        monitor = RunMonitor(tmp_path / EVENTS_FILE, arms=["tsg"], planned_per_arm=1, show=False).start()
        assert monitor._thread is not None
        assert monitor._thread.is_alive()
        try:
            if raised is not None:
                raise raised
        except BaseException:  # noqa: BLE001 (the session closes its display while the exception is handled)
            monitor.close()
        else:
            monitor.close()
        statuses.append(monitor.status)
        assert not monitor._thread.is_alive()
        assert monitor.error is None
    assert statuses == ["complete", "failed: RuntimeError: backend exploded", "interrupted"]
    assert _monitor_threads() == []


def test_run_with_the_monitor_ctrl_c_still_reaches_the_caller(tmp_path, make_ladder):
    """A real run through the session: Ctrl-C marks the monitor interrupted, ends its thread, and the
    KeyboardInterrupt goes on to the caller (the magic turns it into its one line)."""
    from tsglab.config import load_spec
    from tsglab.load.runner import run_experiment

    spec = load_spec(write_spec(tmp_path, limit=5))
    made = []

    def factory(run_dir, total, initial):
        made.append(RunMonitor(run_dir.path / EVENTS_FILE, arms=run_dir.manifest["arms"], planned_per_arm=total // 2,
                               run_id=run_dir.run_id, show=False).start())
        return made[-1]

    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, runs_dir=tmp_path / "runs", ladder=make_ladder(InterruptAt(4)), progress=factory)
    assert made[0].status == "interrupted"
    assert made[0].done == 3
    assert made[0].planned == 10
    assert _monitor_threads() == []
    done = run_experiment(spec, runs_dir=tmp_path / "runs", run_id="whole", ladder=make_ladder(answer),
                          progress=factory)
    assert made[1].status == "complete"
    assert made[1].done == done.n_events == 10
    assert _monitor_threads() == []


def test_default_progress_outside_a_kernel_is_tqdm():
    import tsglab.jupyter  # noqa: F401  (registers the monitor)
    from tsglab.load import session

    assert session.default_progress() is session._tqdm_bar  # a terminal or test process has no kernel


# -- papermill / nbclient -------------------------------------------------------------------------------


@pytest.mark.integration
def test_executed_notebook_keeps_the_final_summary(tmp_path):
    """``%tsg run`` in a real kernel under nbclient (papermill's executor): the saved notebook holds the final
    "N/N requests" summary as static HTML and text, no widget view and no 0 % bar, and the display was
    updated in place while the run went."""
    import nbformat
    from nbclient import NotebookClient

    spec = write_spec(tmp_path, limit=8, ms=150, sleep=True)  # 16 requests of ~150 ms: a few seconds
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("%load_ext tsglab"),
                nbformat.v4.new_code_cell(f"%tsg run {spec} --runs-dir {tmp_path / 'runs'}")]
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
    displays = [o for o in nb.cells[1].outputs if o["output_type"] == "display_data"]
    assert len(displays) == 1
    data = displays[0]["data"]
    assert set(data) == {"text/plain", "text/html"}  # the widget view was replaced by the static summary
    assert "complete, 16/16 requests" in data["text/plain"]
    assert 'class="tsglab-monitor-status">complete<' in data["text/html"]
    assert "8/8 requests" in data["text/html"]
    assert "width: 0.0%" not in saved  # no bar frozen at its start
    assert data["text/html"].count("width: 100.0%") == 2  # both arms' bars full
    assert "application/vnd.jupyter.widget-view+json" not in saved
    assert len(updates) >= 2
    assert "running" in updates[0]
    assert "/16 requests" in updates[0]
