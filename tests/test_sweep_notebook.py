"""notebooks/sweep.ipynb: flat papermill parameters with a help comment each, checked by notebook_params in the
next cell; executed by papermill on a small scripted sweep (no model): the plan, the live monitor's final
summary, the combined table, the comparison across points and a figure; a bad parameter stops in one line.

The executed runs need a kernel, a few runs and their reports (tens of seconds on a shared 2-core machine):
integration tests, like tests/test_notebook.py's."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "sweep.ipynb"
PARAMETERS = {"sweep_file", "executor", "workers", "dask", "sweeps_dir", "retry_failed"}
SCRIPTED_SPEC = REPO / "tests" / "fixtures" / "notebooks" / "scripted.yaml"  # scripted tiers: no model


def _code_cells() -> list:
    import nbformat

    return [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]


def test_parameters_are_flat_and_each_has_a_help_comment():
    from papermill.inspection import inspect_notebook

    found = inspect_notebook(str(NOTEBOOK))  # papermill's own parser of the cell
    assert set(found) == PARAMETERS
    assert all(len(p["help"]) > 15 for p in found.values()), {k: p["help"] for k, p in found.items()}


def test_the_cell_after_the_parameters_checks_every_parameter():
    cells = _code_cells()
    assert "parameters" in cells[0].metadata.get("tags", [])
    calls = [node for node in ast.walk(ast.parse(cells[1].source)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "notebook_params"]
    assert len(calls) == 1
    passed = {kw.arg: kw.value for kw in calls[0].keywords}
    assert set(passed) == PARAMETERS
    assert all(isinstance(v, ast.Name) and v.id == k for k, v in passed.items())


def test_the_defaults_pass_the_checks_except_a_missing_sweep_file(tmp_path):
    """The parameters cell's defaults are valid values (the default sweep file aside, which this checkout may
    not hold yet)."""
    import tsglab

    defaults = {}
    exec(_code_cells()[0].source, {}, defaults)  # the notebook's own parameters cell
    sweep_file = tmp_path / "any.sweep.yaml"
    sweep_file.write_text("name: any\n", encoding="utf-8")
    params = tsglab.notebook_params(**{**defaults, "sweep_file": str(sweep_file)})
    assert params.executor == "seq"
    assert params.retry_failed is False


def _sweep_file(folder: Path, name: str = "nbsweep") -> Path:
    path = folder / f"{name}.sweep.yaml"
    path.write_text(f"name: {name}\nbase: {SCRIPTED_SPEC}\noverrides: {{prompts.limit: 3}}\n"
                    "grid:\n  arms.tsg.thr_std: [0.3, 0.5]\n", encoding="utf-8")
    return path


def _execute(tmp_path: Path, **parameters):
    import nbformat
    import papermill

    out = tmp_path / "sweep-out.ipynb"
    papermill.execute_notebook(str(NOTEBOOK), str(out), parameters=parameters, cwd=str(REPO / "notebooks"),
                               kernel_name="python3", progress_bar=False)
    return nbformat.read(out, as_version=4)


@pytest.mark.integration
def test_the_notebook_runs_a_scripted_sweep(tmp_path):
    notebook = _execute(tmp_path, sweep_file=str(_sweep_file(tmp_path)), sweeps_dir=str(tmp_path / "sweeps"))
    root = tmp_path / "sweeps" / "nbsweep"
    points = json.loads((root / "sweep.json").read_text(encoding="utf-8"))["points"]
    assert len(points) == 2
    for point in points:
        assert json.loads((root / "points" / point["run_dirname"] / "run.json").read_text())["status"] == "complete"
    assert (root / "results.csv").is_file()
    plan, run, table, comparison, figure = (_outputs_of(notebook, source) for source in
                                            ("plan = load_sweep", "run_sweep(", "result.to_frame()",
                                             "result.comparison", "result.plot("))
    assert "sweep nbsweep: 2 points" in plan
    assert "arms.tsg.thr_std" in plan
    assert "tsglab sweep nbsweep: complete, 2/2 points" in run  # the monitor's final summary
    assert "tsglab-sweep-table" in run
    assert "application/vnd.jupyter.widget-view+json" not in run
    assert "[4 rows x" in table  # 2 points x 2 arms
    assert "arms.tsg.thr_std" in table
    assert "p001" in comparison
    assert "image/" in figure


def _outputs_of(notebook, source: str) -> str:
    """The outputs of the one code cell whose source holds ``source`` (papermill inserts a cell of its own)."""
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and source in c.source]
    return json.dumps(cell.get("outputs", []), ensure_ascii=False)


@pytest.mark.integration
def test_a_bad_parameter_stops_the_notebook_with_one_line(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        _execute(tmp_path, sweep_file=str(_sweep_file(tmp_path)), sweeps_dir=str(tmp_path / "sweeps"),
                 executor="threads")
    assert info.value.ename == "InvalidArgument"
    assert info.value.evalue == "executor must be one of seq, pool, dask; got 'threads' (papermill -p executor pool)"
    assert not (tmp_path / "sweeps").exists()  # stopped before a sweep directory was made
