"""Relative paths mean the same file wherever the process runs: the project root decides, not the cwd."""

from __future__ import annotations

from pathlib import Path

import pytest

from tsglab.errors import InvalidArgument
from tsglab.paths import PROJECT_ROOT_ENV, project_root, resolve_path

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_root_env(monkeypatch):
    monkeypatch.delenv(PROJECT_ROOT_ENV, raising=False)


@pytest.mark.parametrize("start", [".", "notebooks", "tsglab/jupyter"])
def test_the_root_is_found_by_walking_up_from_the_working_directory(no_root_env, monkeypatch, start):
    monkeypatch.chdir(REPO / start)
    assert project_root() == REPO
    assert resolve_path("experiments/quickstart.yaml") == REPO / "experiments" / "quickstart.yaml"
    assert resolve_path("experiments/quickstart.yaml").is_file()


def test_the_environment_variable_wins_from_an_unrelated_directory(monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(REPO))
    assert project_root() == REPO
    assert resolve_path("experiments/quickstart.yaml").is_file()
    # it wins over a checkout that encloses the working directory, too
    monkeypatch.chdir(REPO / "notebooks")
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(tmp_path))
    assert resolve_path("runs") == tmp_path.resolve() / "runs"


def test_absolute_paths_and_home_pass_through_without_a_root(no_root_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no checkout above a tmp dir: only relative paths need one
    assert resolve_path(tmp_path / "a.yaml") == tmp_path / "a.yaml"
    assert resolve_path("~/x.yaml") == Path.home() / "x.yaml"


def test_no_root_is_one_line_naming_the_variable(no_root_env, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    expected = rf"^no tsglab project root at or above .*set {PROJECT_ROOT_ENV}="
    with pytest.raises(InvalidArgument, match=expected) as info:
        resolve_path("experiments/quickstart.yaml")
    assert "\n" not in str(info.value)


def test_a_folder_with_experiments_and_another_projects_pyproject_is_not_the_root(no_root_env, monkeypatch,
                                                                                 tmp_path):
    (tmp_path / "experiments").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgument, match="no tsglab project root"):
        project_root()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "tsglab"\n', encoding="utf-8")
    assert project_root() == tmp_path.resolve()


def test_an_environment_variable_naming_no_directory_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(PROJECT_ROOT_ENV, str(tmp_path / "missing"))
    with pytest.raises(InvalidArgument, match=rf"^{PROJECT_ROOT_ENV}=.*missing' is not a directory; .* or unset it"):
        project_root()
