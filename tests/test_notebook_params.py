"""notebook_params: flat papermill parameters checked in one line each, paths from the project root,
flat names mapped onto the API's spec overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
from _rundir_helpers import write_spec

import tsglab
from tsglab.errors import InvalidArgument
from tsglab.paths import PROJECT_ROOT_ENV

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def in_notebooks_dir(monkeypatch):
    """The kernel's cwd when JupyterLab opens a notebook from the file browser."""
    monkeypatch.delenv(PROJECT_ROOT_ENV, raising=False)
    monkeypatch.chdir(REPO / "notebooks")


@pytest.fixture
def run_dir(tmp_path):
    """A finished scripted run (arms baseline and tsg)."""
    result = tsglab.run(write_spec(tmp_path, limit=2), runs_dir=tmp_path / "runs", run_id="r", progress=False)
    return Path(result.run_dir)


def test_relative_paths_resolve_against_the_project_root_not_the_cwd(in_notebooks_dir):
    params = tsglab.notebook_params(spec="experiments/quickstart.yaml", runs_dir="runs", run_id=None, resume=None,
                                    prompts_limit=None, seed=None)
    assert params.spec == REPO / "experiments" / "quickstart.yaml"
    assert params.runs_dir == REPO / "runs"
    assert params.resume is None
    assert params.run_id is None
    assert params.overrides == {}


def test_flat_parameters_become_the_spec_overrides(in_notebooks_dir, tmp_path):
    params = tsglab.notebook_params(spec="experiments/quickstart.yaml", runs_dir=tmp_path, prompts_limit=4, seed=3,
                                    overrides={"load.period_ms": 0})
    assert params.overrides == {"load.period_ms": 0, "prompts.limit": 4, "seed": 3}
    assert params.runs_dir == tmp_path  # absolute: unchanged
    spec = tsglab.load_spec(params.spec, params.overrides)
    assert (spec.prompts.limit, spec.seed, spec.load.period_ms) == (4, 3, 0)
    assert "prompts_limit = 4" in repr(params)
    assert "overrides = " in repr(params)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("prompts_limit", "abc",
     r"^prompts_limit must be a positive integer or None; got 'abc' \(papermill -p prompts_limit 8\)$"),
    ("prompts_limit", 0, r"^prompts_limit must be a positive integer or None; got 0 "),
    ("prompts_limit", True, r"^prompts_limit must be a positive integer or None; got True "),
    ("seed", -1, r"^seed must be a non-negative integer; got -1 \(papermill -p seed 0\)$"),
    ("seed", 1.5, r"^seed must be a non-negative integer; got 1.5 "),
    ("spec", "experiments/nope.yaml",
     (r"^spec must be an existing YAML file \(relative paths are read from the project root; .*nope.yaml is not a "
     r"file\); got 'experiments/nope.yaml' \(papermill -p spec experiments/quickstart.yaml\)$")),
    ("spec", 3, r"^spec must be a path \(text\); got 3 "),
    ("run_id", "a/b", r"^run_id must be a plain name \(.*contains '/'.*\); got 'a/b' \(papermill -p run_id my-run\)$"),
    ("run_id", 7, r"^run_id must be a plain name \(text\) or None; got 7 "),
    ("resume", "runs/not-a-run",
     (r"^resume must be a run directory holding run.json \(.*not-a-run holds none\); got 'runs/not-a-run' "
     r"\(papermill -p resume runs/<run_id>\)$")),
    ("overrides", {1: 2},
     r"^overrides must be a mapping of dotted spec keys to values; got "),
    ("variants", "embedded-llama.cpp",
     (r"^variants must be a non-empty list of variant names or None; got 'embedded-llama.cpp' "
     r"\(papermill -y '\{variants: \[embedded-llama.cpp\]\}'\)$")),
    ("column", "p95", r"^column must be one of raw_ms, co_ms; got 'p95' \(papermill -p column co_ms\)$"),
    ("n_resamples", 10, r"^n_resamples must be an integer ≥ 100; got 10 \(papermill -p n_resamples 2000\)$"),
    ("run_dir", None, r"^run_dir must be a path \(text\); got None \(papermill -p run_dir runs/<run_id>\)$"),
])
def test_a_bad_value_is_one_line_with_the_name_the_value_and_the_fix(in_notebooks_dir, name, value, message):
    with pytest.raises(InvalidArgument, match=message) as info:
        tsglab.notebook_params(**{name: value})
    assert "\n" not in str(info.value)


def test_a_required_parameter_left_none_says_so(in_notebooks_dir):
    with pytest.raises(InvalidArgument, match=r"^seed must be given \(this notebook has no default for it\); got None "
                                              r"\(papermill -p seed 0\)$"):
        tsglab.notebook_params(seed=None, required=("seed",))


def test_an_unknown_parameter_is_refused_with_the_known_names(in_notebooks_dir):
    with pytest.raises(InvalidArgument, match=r"^unknown notebook parameter\(s\) \['prompt_limit'\]; known: .*"
                                              r"'prompts_limit'"):
        tsglab.notebook_params(prompt_limit=3)


def test_a_flat_parameter_and_the_same_override_cannot_both_be_given(in_notebooks_dir):
    with pytest.raises(InvalidArgument, match=r"^overrides sets 'prompts.limit' and prompts_limit is given too"):
        tsglab.notebook_params(prompts_limit=3, overrides={"prompts.limit": 5})


def test_resume_and_run_dir_accept_a_run_directory_and_arm_must_be_one_of_its_arms(in_notebooks_dir, run_dir):
    params = tsglab.notebook_params(resume=str(run_dir), run_dir=run_dir, arm="tsg", column="raw_ms",
                                    n_resamples=200, seed=0)
    assert params.resume == params.run_dir == run_dir
    assert (params.arm, params.column, params.n_resamples, params.seed) == ("tsg", "raw_ms", 200, 0)
    with pytest.raises(InvalidArgument, match=r"^arm must be one of the run's arms \['baseline', 'tsg'\]; got 'gw' "
                                              r"\(papermill -p arm baseline\)$"):
        tsglab.notebook_params(run_dir=run_dir, arm="gw")


def test_import_tsglab_leaves_the_jupyter_layer_unloaded():
    """notebook_params is exported lazily: the jupyter package registers the run monitor when imported."""
    import subprocess
    import sys

    code = "import sys, tsglab; print(sorted(m for m in ('tsglab.jupyter', 'numpy') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    assert callable(tsglab.notebook_params)
