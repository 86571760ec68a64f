"""The shipped notebooks: flat papermill parameters with a help comment each, checked by notebook_params in the
next cell; executed by papermill from notebooks/ (JupyterLab's kernel cwd) and from the repository root; bad
parameters stop in one line; prompts_limit and resume take effect; the run shows per-request progress.

The scripted-backend notebook runs need no model but a kernel, a run and a report each (tens of seconds on a
shared 2-core machine): they are integration tests, like the real-inference runs at the end."""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from _rundir_helpers import InterruptAt
from conftest import scripted_ladder

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
# a spec of scripted tiers, named as a user names experiments/quickstart.yaml: relative to the project root
SCRIPTED_SPEC = "tests/fixtures/notebooks/scripted.yaml"
SCRIPTED_COMPARISON = "tests/fixtures/notebooks/comparison.yaml"
EXPECTED_PARAMETERS = {
    "quickstart": {"spec", "run_id", "runs_dir", "resume", "prompts_limit", "seed", "overrides"},
    "backends": {"spec", "run_id", "runs_dir", "prompts_limit", "seed", "variants", "overrides"},
    "enforcement": {"spec", "run_id", "runs_dir", "resume", "prompts_limit", "seed", "overrides"},
    "bootstrap": {"run_dir", "arm", "column", "n_resamples", "seed"},
    "sweep": {"sweep_file", "executor", "workers", "dask", "sweeps_dir", "retry_failed"},
    "frontier": {"replay_dir", "n_resamples", "seed", "grid_file"},
}
CWDS = {"notebooks": NOTEBOOKS, "repo-root": REPO}


def _cells(name: str) -> list:
    import nbformat

    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4).cells


# -- the parameters cells (unit) --------------------------------------------------------------------------------


def test_every_notebook_is_listed_here():
    assert {p.stem for p in NOTEBOOKS.glob("*.ipynb")} == set(EXPECTED_PARAMETERS)


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMETERS))
def test_parameters_are_flat_and_each_has_a_help_comment(name):
    from papermill.inspection import inspect_notebook

    found = inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))  # papermill's own parser of the cell
    assert set(found) == EXPECTED_PARAMETERS[name]
    assert all(len(p["help"]) > 15 for p in found.values()), {k: p["help"] for k, p in found.items()}


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMETERS))
def test_the_cell_after_the_parameters_checks_every_parameter(name):
    cells = [c for c in _cells(name) if c.cell_type == "code"]
    assert "parameters" in cells[0].metadata.get("tags", [])
    calls = [node for node in ast.walk(ast.parse(cells[1].source)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "notebook_params"]
    assert len(calls) == 1
    passed = {kw.arg: kw.value for kw in calls[0].keywords if kw.arg != "required"}
    assert set(passed) == EXPECTED_PARAMETERS[name]
    assert all(isinstance(v, ast.Name) and v.id == k for k, v in passed.items())


@pytest.mark.parametrize("path", sorted((REPO / "papermill_params").glob("*.yaml")), ids=lambda p: p.name)
def test_papermill_parameter_files_use_the_flat_names_of_their_notebook(path):
    from papermill.inspection import inspect_notebook

    values = yaml.safe_load(path.read_text(encoding="utf-8"))
    names = set(inspect_notebook(str(NOTEBOOKS / f"{path.stem}.ipynb")))
    assert set(values) <= names
    assert not any(isinstance(v, dict) for v in values.values())  # no nested overrides


# -- executed by papermill (scripted backend) --------------------------------------------------------------------


def _execute(name: str, tmp_path: Path, cwd: Path, **parameters):
    import nbformat
    import papermill

    out = tmp_path / f"{name}-out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out), parameters=parameters, cwd=str(cwd),
                               kernel_name="python3", progress_bar=False)
    return nbformat.read(out, as_version=4)


def _outputs(notebook) -> str:
    return "".join(json.dumps(cell.get("outputs", []), ensure_ascii=False) for cell in notebook.cells)


def _assert_progress_per_request(outputs: str, n: int) -> None:
    """The run monitor's final summary (not a progress bar frozen at its first frame, as tqdm leaves one)."""
    assert re.search(rf"complete, {n}/{n} requests", outputs), "no final N/N summary of the run monitor"
    assert not re.search(r"\b0%\|", outputs), "a tqdm bar frozen at 0 % in the saved notebook"


def _run_lines(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.integration
@pytest.mark.parametrize("cwd", sorted(CWDS))
def test_quickstart_runs_from_either_folder_with_prompts_limit(tmp_path, cwd, monkeypatch):
    monkeypatch.delenv("TSGLAB_PROJECT_ROOT", raising=False)
    notebook = _execute("quickstart", tmp_path, CWDS[cwd], spec=SCRIPTED_SPEC, runs_dir=str(tmp_path), run_id="nb",
                        prompts_limit=3)
    run_dir = tmp_path / "nb"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    events = _run_lines(run_dir)
    assert Counter(e["arm"] for e in events) == {"baseline": 3, "tsg": 3}  # prompts_limit 3 (the spec says 6)
    outputs = _outputs(notebook)
    _assert_progress_per_request(outputs, 6)
    assert "Headline: baseline vs TSG" in outputs  # the report and the %tsg magic rendered
    assert "image/png" in outputs  # the ECDF figure


@pytest.mark.integration
def test_a_bad_parameter_stops_the_notebook_with_one_line(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        _execute("quickstart", tmp_path, NOTEBOOKS, spec=SCRIPTED_SPEC, runs_dir=str(tmp_path), prompts_limit="abc")
    assert info.value.ename == "InvalidArgument"
    assert info.value.evalue == ("prompts_limit must be a positive integer or None; got 'abc' "
                                 "(papermill -p prompts_limit 8)")
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []  # stopped before a run directory was made


@pytest.mark.integration
def test_resume_continues_an_interrupted_run(tmp_path):
    from tsglab.config import load_spec
    from tsglab.events import read_manifest
    from tsglab.load.runner import run_experiment

    overrides = {"prompts.limit": 4}
    spec = load_spec(REPO / SCRIPTED_SPEC, overrides)
    with pytest.raises(KeyboardInterrupt):  # a Ctrl-C after 3 requests of 8
        run_experiment(spec, runs_dir=tmp_path, run_id="cut", ladder=scripted_ladder(InterruptAt(4)), progress=False,
                       overrides=overrides)
    run_dir = tmp_path / "cut"
    assert read_manifest(run_dir)["status"] == "incomplete"
    before = len(_run_lines(run_dir))
    assert 0 < before < 8
    notebook = _execute("quickstart", tmp_path, NOTEBOOKS, spec=SCRIPTED_SPEC, runs_dir=str(tmp_path), prompts_limit=4,
                        resume=str(run_dir))
    assert read_manifest(run_dir)["status"] == "complete"
    keys = Counter((e["arm"], e["prompt_id"]) for e in _run_lines(run_dir))
    assert len(keys) == 8
    assert set(keys.values()) == {1}  # nothing finished before was sent again
    _assert_progress_per_request(_outputs(notebook), 8)


@pytest.mark.integration
@pytest.mark.parametrize("cwd", sorted(CWDS))
def test_backends_notebook_compares_scripted_variants_from_either_folder(tmp_path, cwd, monkeypatch):
    monkeypatch.delenv("TSGLAB_PROJECT_ROOT", raising=False)
    notebook = _execute("backends", tmp_path, CWDS[cwd], spec=SCRIPTED_COMPARISON, runs_dir=str(tmp_path),
                        run_id="cmp", prompts_limit=2)
    table = (tmp_path / "cmp" / "comparison.csv").read_text()
    for variant in ("scripted-a", "scripted-b"):
        assert variant in table
        assert len(_run_lines(tmp_path / "cmp" / variant)) == 4  # 2 prompts x 2 arms
    outputs = _outputs(notebook)
    _assert_progress_per_request(outputs, 4)
    assert "image/png" in outputs
    assert "comparison.md" in outputs


@pytest.mark.integration
@pytest.mark.parametrize("cwd", sorted(CWDS))
def test_bootstrap_notebook_analyses_an_existing_run(tmp_path, cwd):
    import tsglab

    result = tsglab.run(REPO / SCRIPTED_SPEC, runs_dir=tmp_path, run_id="src", overrides={"prompts.limit": 30},
                        progress=False)
    notebook = _execute("bootstrap", tmp_path, CWDS[cwd], run_dir=str(result.run_dir), arm="tsg", column="raw_ms",
                        n_resamples=200, seed=3)
    outputs = _outputs(notebook)
    assert "30 answered requests" in outputs
    assert "ljung-box" in outputs
    for method in ("iid", "stationary", "moving-block"):
        assert method in outputs
    for interval in ("percentile (iid", "basic (iid", "bca (iid", "quantile_ci: harrell-davis"):
        assert interval in outputs
    assert outputs.count("image/png") == 4  # series, block-length sweep, schemes, methods


@pytest.mark.integration
def test_bootstrap_notebook_without_run_dir_says_what_to_pass(tmp_path):
    from papermill.exceptions import PapermillExecutionError

    with pytest.raises(PapermillExecutionError) as info:
        _execute("bootstrap", tmp_path, NOTEBOOKS)
    assert info.value.evalue == ("run_dir must be given (this notebook has no default for it); got None "
                                 "(papermill -p run_dir runs/<run_id>)")


# -- real inference (llama.cpp) ---------------------------------------------------------------------------------

FAST_LOAD = {"load.period_ms": 0, "load.warmup_count": 0}


@pytest.mark.integration
def test_quickstart_notebook_runs_its_own_spec_with_real_inference(tmp_path):
    pytest.importorskip("llama_cpp", reason="the embedded runtime is installed by `make setup`")
    notebook = _execute("quickstart", tmp_path, NOTEBOOKS, run_id="nb", runs_dir=str(tmp_path), prompts_limit=2,
                        overrides=FAST_LOAD)
    run_dir = tmp_path / "nb"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert len(_run_lines(run_dir)) == 4
    outputs = _outputs(notebook)
    _assert_progress_per_request(outputs, 4)
    assert "Headline: baseline vs TSG" in outputs


@pytest.mark.integration
def test_backends_notebook_compares_the_three_serving_paths(tmp_path):
    pytest.importorskip("llama_cpp", reason="the embedded runtime is installed by `make setup`")
    notebook = _execute("backends", tmp_path, REPO, run_id="cmp", runs_dir=str(tmp_path), prompts_limit=2,
                        overrides=FAST_LOAD)
    table = (tmp_path / "cmp" / "comparison.csv").read_text()
    for variant in ("embedded-llama.cpp", "llama.cpp-server", "ollama-api"):
        assert variant in table
        assert Counter(e["arm"] for e in _run_lines(tmp_path / "cmp" / variant)) == {
            "tsg": 2, "enforcement": 2, "routing_enforcement": 2}  # 2 prompts x the file's 3 arms
    outputs = _outputs(notebook)
    assert "image/png" in outputs
    assert "comparison.md" in outputs
