"""Names never escape the runs dir: run ids, spec names and comparison variant names are validated, and every
path the runner writes must resolve inside the runs dir (or, on resume, inside the run directory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _rundir_helpers import write_spec
from conftest import scripted_ladder

from tsglab.cli import main
from tsglab.comparison import load_comparison, run_comparison
from tsglab.config import load_spec, spec_from_dict
from tsglab.errors import RunError, SpecError
from tsglab.load.runner import run_experiment

BAD_NAMES = [
    ("../../../x", "'..'"),
    ("a/b", "'/'"),
    ("a\\b", "'\\\\'"),
    ("/abs/path", "'/'"),
    ("", "empty"),
    (".hidden", "start with a letter or digit"),
    ("-rf", "start with a letter or digit"),
    ("tab\there", "control character"),
    ("new\nline", "control character"),
    ("nul\x00", "control character"),
    ("x" * 200, "at most 100 characters"),
    ("..", "'..'"),
    ("v1..2", "'..'"),
]


def answer(request):
    return "The answer is 42 and it is positive."


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_check_name_refuses_path_like_names_naming_the_key(name, why):
    from tsglab.config.names import check_name

    with pytest.raises(SpecError, match=rf"where: run_id {__import__('re').escape(repr(name))}.*{why}"):
        check_name(name, key="run_id", where="where")


@pytest.mark.parametrize("name", ["quickstart", "ablation_F", "run-2026.11.30", "Ω-test"])
def test_check_name_accepts_ordinary_names(name):
    from tsglab.config.names import check_name

    assert check_name(name, key="name", where="w") == name


@pytest.mark.parametrize(("name", "_why"), BAD_NAMES[:4])
def test_a_spec_name_that_is_a_path_is_refused_before_anything_is_written(tmp_path, name, _why):
    with pytest.raises(SpecError, match=r"spec.yaml: name .*; choose a plain name"):
        spec_from_dict({"name": name, "tiers": {"light": {}}}, where="spec.yaml")


def test_a_yaml_date_or_number_as_name_says_to_quote_it(tmp_path):
    with pytest.raises(SpecError, match=r"s.yaml: name must be text; got a date \(2024-01-01\).*quote it"):
        spec_from_dict({"name": __import__("datetime").date(2024, 1, 1), "tiers": {"light": {}}}, where="s.yaml")
    with pytest.raises(SpecError, match=r"name must be text; got int.*quote it"):
        spec_from_dict({"name": 7, "tiers": {"light": {}}}, where="s.yaml")


@pytest.mark.parametrize("run_id", ["../../x", "../escape", "/tmp/tsglab-abs-run", "sub/dir", ".."])
def test_a_run_id_that_leaves_the_runs_dir_is_refused_and_nothing_is_written(tmp_path, run_id):
    spec = load_spec(write_spec(tmp_path))
    (tmp_path / "runs").mkdir()
    before = tree(tmp_path)
    with pytest.raises(SpecError, match=r"run_id .*choose a plain name"):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id=run_id, ladder=scripted_ladder(answer),
                       progress=False)
    assert tree(tmp_path) == before
    assert not Path("/tmp/tsglab-abs-run").exists()


def test_an_api_built_spec_with_a_path_name_is_refused(tmp_path):
    import dataclasses

    spec = load_spec(write_spec(tmp_path))
    with pytest.raises(SpecError, match=r"name '\.\./\.\./evil'"):
        dataclasses.replace(spec, name="../../evil")


def test_a_symlinked_run_dir_pointing_outside_is_refused(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "runs").mkdir()
    os.symlink(outside, tmp_path / "runs" / "link")
    with pytest.raises(RunError, match=r"resolves to .*outside, outside the runs dir"):
        run_experiment(spec, runs_dir=tmp_path / "runs", run_id="link", ladder=scripted_ladder(answer),
                       progress=False)
    assert list(outside.iterdir()) == []


def test_resume_refuses_a_run_json_symlinked_outside_the_run_dir(tmp_path):
    spec = load_spec(write_spec(tmp_path))
    result = run_experiment(spec, runs_dir=tmp_path / "runs", run_id="r", ladder=scripted_ladder(answer),
                            progress=False)
    victim = tmp_path / "victim.json"
    victim.write_text((result.run_dir / "run.json").read_text())
    (result.run_dir / "run.json").unlink()
    os.symlink(victim, result.run_dir / "run.json")
    before = victim.read_text()
    with pytest.raises(RunError, match=r"run.json resolves to .*victim.json, outside the run directory"):
        run_experiment(spec, resume=result.run_dir, ladder=scripted_ladder(answer), progress=False)
    assert victim.read_text() == before


def test_cli_run_id_escape_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec_path = write_spec(tmp_path)
    assert main(["run", str(spec_path), "--run-id", "../../x", "--quiet", "--no-report"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "run_id '../../x'" in err
    assert not (tmp_path / "runs").exists() or list((tmp_path / "runs").iterdir()) == []


COMPARISON = """
name: cmp
spec:
  prompts: {limit: 2, seed: 1}
  arms: {tsg: {}}
  energy: {meter: none}
  tiers:
    light: {backend: scripted}
  load: {mode: paced, period_ms: 0, timeout_s: 5}
variants:
  VARIANT: {backend: scripted}
"""


@pytest.mark.parametrize("variant", ["../../x", "'/abs/x'", "'a/b'", "'..'", "'.dot'"])
def test_a_comparison_variant_that_is_a_path_is_refused(tmp_path, variant):
    path = tmp_path / "cmp.yaml"
    path.write_text(COMPARISON.replace("VARIANT", variant))
    with pytest.raises(SpecError, match=r"cmp.yaml: variants key .*choose a plain name"):
        load_comparison(path)


def test_a_comparison_name_or_id_that_is_a_path_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "cmp.yaml"
    path.write_text(COMPARISON.replace("VARIANT", "ok").replace("name: cmp", "name: ../../cmp"))
    with pytest.raises(SpecError, match=r"cmp.yaml: name '../../cmp'"):
        load_comparison(path)
    path.write_text(COMPARISON.replace("VARIANT", "ok"))
    before = tree(tmp_path)
    with pytest.raises(SpecError, match=r"comparison_id '../out'"):
        run_comparison(path, runs_dir=tmp_path / "runs", comparison_id="../out", progress=False)
    assert tree(tmp_path) == before
