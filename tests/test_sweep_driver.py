"""The sweep driver on the scripted backend: points run once and are skipped after, an interrupted point
resumes without repeating a request, a failed point is reported and retried on request, a second sweep on
the same directory is refused, and the command line's exit codes and one-line errors."""

from __future__ import annotations

import json
import re
import types

import pytest
from _rundir_helpers import InterruptAt, event_keys, small_suite, write_spec

from tsglab import cli
from tsglab.backends import scripted
from tsglab.backends.scripted import ScriptedBackend
from tsglab.errors import BackendError, RunError, RunInterrupted
from tsglab.sweep import driver, load_sweep, run_sweep
from tsglab.sweep.store import SweepStore, point_states

GRID = """\
name: grid
base: base.yaml
grid:
  arms.tsg.thr_std: [0.3, 0.4]
  tiers.light.max_tokens: [32, 64]
"""


@pytest.fixture
def written(monkeypatch):
    """The results module replaced by a recorder: these tests are about the driver, not the statistics."""
    calls: list = []
    fake = types.SimpleNamespace(write_sweep_results=calls.append,
                                 SweepResult=types.SimpleNamespace(open=lambda root: ("result", root)))
    monkeypatch.setattr(driver, "_results_module", lambda: fake)
    return calls


def _sweep_file(tmp_path, body=GRID, limit=3):
    write_spec(tmp_path, name="base", limit=limit, suite=small_suite(tmp_path))
    path = tmp_path / "grid.sweep.yaml"
    path.write_text(body, encoding="utf-8")
    return path


def _point_json(root, point):
    return json.loads((root / "points" / point.dirname / "point.json").read_text())


def test_a_2x2_sweep_runs_4_points_and_a_rerun_sends_nothing(tmp_path, written, capsys):
    path = _sweep_file(tmp_path)
    result = run_sweep(path, sweeps_dir=tmp_path / "sweeps")
    root = tmp_path / "sweeps" / "grid"
    assert result == ("result", root)
    assert written == [root]
    sweep = load_sweep(path)
    assert point_states(root) == {p.point_id: "done" for p in sweep.points}
    counts = {}
    for point in sweep.points:
        run_dir = root / "points" / point.dirname
        assert _point_json(root, point)["status"] == "complete"
        assert _point_json(root, point)["attempts"] == 1
        counts[point.point_id] = event_keys(run_dir)
        assert sum(counts[point.point_id].values()) == 2 * 3  # two arms, three prompts, each once
    meta = json.loads((root / "sweep.json").read_text())
    assert [e["point_id"] for e in meta["points"]] == ["p000", "p001", "p002", "p003"]
    assert meta["status"] == "complete"
    assert meta["varied"] == list(sweep.varied)
    err = capsys.readouterr().err
    assert "[1/4] p000 complete in " in err
    assert "— arms.tsg.thr_std=0.3 tiers.light.max_tokens=32" in err
    assert "[4/4] p003 complete" in err
    assert "sweep grid: 4/4 points done (4 run now)" in err

    run_sweep(path, sweeps_dir=tmp_path / "sweeps")
    err = capsys.readouterr().err
    assert "4 done (skipped)" in err
    assert "[1/4]" not in err
    for point in sweep.points:
        assert event_keys(root / "points" / point.dirname) == counts[point.point_id]
        assert _point_json(root, point)["attempts"] == 1


def test_ctrl_c_inside_a_point_keeps_the_finished_ones_and_the_rerun_resumes_without_repeats(
        tmp_path, written, monkeypatch):
    path = _sweep_file(tmp_path)
    original = ScriptedBackend.complete
    interrupt = InterruptAt(6 + 3)  # a backend call inside the second point (each point makes at least 6)

    def complete(self, request):
        interrupt(request)
        return original(self, request)

    monkeypatch.setattr(ScriptedBackend, "complete", complete)
    with pytest.raises(RunInterrupted, match=r"sweep grid interrupted; 1/4 points done and kept in .*Run the same"):
        run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)
    root = tmp_path / "sweeps" / "grid"
    assert written == [root]  # the results of what finished are written after Ctrl-C too
    states = point_states(root)
    assert states == {"p000": "done", "p001": "incomplete", "p002": "pending", "p003": "pending"}
    sweep = load_sweep(path)
    assert _point_json(root, sweep.points[1])["status"] == "incomplete"
    assert 0 < sum(event_keys(root / "points" / sweep.points[1].dirname).values()) < 6
    first = event_keys(root / "points" / sweep.points[0].dirname)

    monkeypatch.setattr(ScriptedBackend, "complete", original)
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)
    assert set(point_states(root).values()) == {"done"}
    assert event_keys(root / "points" / sweep.points[0].dirname) == first  # not run again
    resumed = event_keys(root / "points" / sweep.points[1].dirname)
    assert sum(resumed.values()) == 6
    assert set(resumed.values()) == {1}
    assert _point_json(root, sweep.points[1])["attempts"] == 2


def test_a_failing_point_is_reported_skipped_and_retried_only_when_asked(tmp_path, written, monkeypatch, capsys):
    path = _sweep_file(tmp_path, GRID.replace("[0.3, 0.4]", "[0.3]"))
    original = scripted.from_tier_spec

    def broken_for_64(spec):
        if spec.max_tokens == 64:
            raise BackendError("scripted server refused to start (port 1 in use)")
        return original(spec)

    monkeypatch.setattr(scripted, "from_tier_spec", broken_for_64)
    run_sweep(path, sweeps_dir=tmp_path / "sweeps")
    root = tmp_path / "sweeps" / "grid"
    good, bad = load_sweep(path).points
    assert point_states(root) == {good.point_id: "done", bad.point_id: "failed"}
    state = _point_json(root, bad)
    assert state["status"] == "failed"
    assert state["error"] == "scripted server refused to start (port 1 in use)"
    err = capsys.readouterr().err
    assert "p001 failed in " in err
    assert ": scripted server refused to start" in err
    assert "failed: p001 (errors in point.json; retry with --retry-failed)" in err

    # not retried without asking; the command line says so and exits 1 while a point has failed (the result
    # here is the driver's own status object: the fixture's fake results module has no statuses)
    monkeypatch.setattr(driver, "_results_module", lambda: None)
    assert cli.main(["sweep", str(path), "--sweeps-dir", str(tmp_path / "sweeps")]) == 1
    assert "1 failed (skipped; retry with --retry-failed)" in capsys.readouterr().err
    assert _point_json(root, bad)["attempts"] == 1

    monkeypatch.setattr(scripted, "from_tier_spec", original)  # the cause fixed: the same point, the same key
    assert cli.main(["sweep", str(path), "--sweeps-dir", str(tmp_path / "sweeps"), "--retry-failed"]) == 0
    assert point_states(root) == {good.point_id: "done", bad.point_id: "done"}
    assert _point_json(root, bad) | {"attempts": 2, "status": "complete", "error": ""} == _point_json(root, bad)
    assert _point_json(root, good)["attempts"] == 1


def test_a_second_sweep_on_the_same_directory_is_refused_in_one_line(tmp_path, written):
    path = _sweep_file(tmp_path)
    root = tmp_path / "sweeps" / "grid"
    holder = SweepStore.open(root, purpose="tsglab sweep grid")
    try:
        with pytest.raises(RunError, match=r"grid is in use by another sweep: pid \d+ on .*; a sweep directory "
                                           r"belongs to one process at a time") as caught:
            run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)
        assert "\n" not in str(caught.value)
        assert not list((root / "points").iterdir())  # nothing was written
    finally:
        holder.release()
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)  # free again once the holder is gone
    assert set(point_states(root).values()) == {"done"}


def test_a_changed_value_runs_a_new_point_and_report_only_points_share_a_run(tmp_path, written):
    path = _sweep_file(tmp_path, "base: base.yaml\npoints: [{}, {report.co_correction: false}, "
                                 "{arms.tsg.thr_std: 0.3}]\n")
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)
    root = tmp_path / "sweeps" / "grid"
    _, no_co, changed = load_sweep(path).points
    assert not (root / "points" / no_co.dirname).exists()  # it reads the run of p000
    assert point_states(root) == {"p000": "done", "p001": "done", "p002": "done"}
    path.write_text(path.read_text().replace("0.3", "0.35"))
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)
    moved = load_sweep(path).points[2]
    assert moved.dirname != changed.dirname
    assert (root / "points" / changed.dirname / "run.json").is_file()  # the old run is kept, not reused
    assert json.loads((root / "points" / moved.dirname / "run.json").read_text())["status"] == "complete"
    assert sum(event_keys(root / "points" / moved.dirname).values()) == 6
    assert not (root / "points" / load_sweep(path).points[1].dirname).exists()  # still shares p000's run


def test_the_progress_display_hears_the_plan_each_outcome_and_the_end(tmp_path, written):
    heard: list = []

    class Display:
        def start(self, root, points):
            heard.append(("start", [p.point_id for p in points]))

        def point_done(self, outcome):
            heard.append(("done", outcome.point_id, outcome.status))

        def close(self, status):
            heard.append(("close", status))

    path = _sweep_file(tmp_path, GRID.replace("[0.3, 0.4]", "[0.3]"))
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=Display)
    assert heard == [("start", ["p000", "p001"]), ("done", "p000", "complete"), ("done", "p001", "complete"),
                     ("close", "complete")]


def test_an_executor_that_fails_closes_the_display_and_leaves_started_points_resumable(tmp_path, written,
                                                                                      monkeypatch):
    heard: list = []

    class Display:
        def start(self, root, points):
            heard.append("start")

        def point_done(self, outcome):
            heard.append(outcome.point_id)

        def close(self, status):
            heard.append(status)

    class Broken:
        name, workers = "broken", 1

        def run(self, tasks, on_done, on_start=None):
            on_start(tasks[0].point_id)  # a point starts, then the scheduler is gone
            raise ConnectionError("scheduler at tcp://127.0.0.1:1 went away")

    real = driver.make_executor
    monkeypatch.setattr(driver, "make_executor", lambda *a, **k: Broken())
    path = _sweep_file(tmp_path, GRID.replace("[0.3, 0.4]", "[0.3]"))
    with pytest.raises(ConnectionError):
        run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=Display)
    assert heard[0] == "start"
    assert heard[-1].startswith("failed: ConnectionError: scheduler")
    root = tmp_path / "sweeps" / load_sweep(path).name
    states = json.loads((root / "sweep.json").read_text())
    assert states["status"] == "failed"
    first = load_sweep(path).points[0]
    assert _point_json(root, first)["status"] == "incomplete"
    monkeypatch.setattr(driver, "make_executor", real)
    run_sweep(path, sweeps_dir=tmp_path / "sweeps", progress=False)  # the lock was released: it runs again
    assert set(point_states(root).values()) == {"done"}


def test_without_the_results_module_the_sweep_returns_its_states(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(driver, "_results_module", lambda: None)
    path = _sweep_file(tmp_path, GRID.replace("[0.3, 0.4]", "[0.3]").replace("[32, 64]", "[32]"))
    result = run_sweep(path, sweeps_dir=tmp_path / "sweeps")
    assert result.statuses == {"p000": "done"}
    assert repr(result).endswith("1 points (1 done)>")
    assert "results table not written (tsglab.sweep.results is not installed)" in capsys.readouterr().err


def test_the_command_line_exit_codes_and_one_line_errors(tmp_path, written, monkeypatch, capsys):
    path = _sweep_file(tmp_path, GRID.replace("[0.3, 0.4]", "[0.3]").replace("[32, 64]", "[32]"))
    sweeps = str(tmp_path / "sweeps")
    bad = tmp_path / "bad.sweep.yaml"
    bad.write_text("base: base.yaml\ngrid: {arms.tgs.thr_std: [0.3]}\n")
    cases = [
        (["sweep", str(bad), "--sweeps-dir", sweeps],
         r"tsglab: error: .*bad.sweep.yaml: grid: arms.tgs.thr_std: no arm"),
        (["sweep", str(path), "extra"], r"takes one sweep file; got a second argument 'extra'"),
        (["sweep", "report"], r"`tsglab sweep report` needs the sweep directory"),
        (["sweep", "report", str(tmp_path)], r"no sweep.json; is this a sweep directory"),
        (["sweep", str(path), "--workers", "2"], r"workers=2 needs a parallel executor"),
    ]
    for argv, pattern in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert "\n" not in err, err
        assert re.search(pattern, err), (pattern, err)

    assert cli.main(["sweep", str(path), "--sweeps-dir", sweeps, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet: no line per point
    assert "result" in captured.out
    assert cli.main(["sweep", "report", f"{sweeps}/grid"]) == 0
    assert written[-1] == tmp_path / "sweeps" / "grid"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ScriptedBackend, "complete", interrupted)
    path.write_text(path.read_text().replace("[32]", "[48]"))
    assert cli.main(["sweep", str(path), "--sweeps-dir", sweeps, "--quiet"]) == 130
    # one line; the plan is the file's now: the old point (another value) is not counted as done
    assert capsys.readouterr().err.strip().startswith("tsglab: sweep grid interrupted; 0/1 points done")
