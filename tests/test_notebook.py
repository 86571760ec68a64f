"""The quickstart notebook runs under papermill with injected parameters (real inference, 2 prompts)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration
pytest.importorskip("llama_cpp", reason="the embedded runtime is installed by `make setup`")


def test_quickstart_notebook_executes_with_papermill_parameters(tmp_path):
    import nbformat
    import papermill

    papermill.execute_notebook(
        "notebooks/quickstart.ipynb",
        str(tmp_path / "out.ipynb"),
        parameters={"run_id": "nb", "runs_dir": str(tmp_path),
                    "overrides": {"prompts.limit": 2, "load.period_ms": 0, "load.warmup_count": 0}},
        cwd=".",
        kernel_name="python3",
        progress_bar=False,
    )
    run_dir = tmp_path / "nb"
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"
    assert len((run_dir / "events.jsonl").read_text().splitlines()) == 4
    notebook = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = "".join(json.dumps(cell.get("outputs", [])) for cell in notebook.cells)
    assert "Headline: baseline vs TSG" in outputs  # the report and the %tsg magic rendered
    assert "image/png" in outputs  # the ECDF figure


def test_backends_notebook_compares_the_three_serving_paths(tmp_path):
    import nbformat
    import papermill

    papermill.execute_notebook(
        "notebooks/backends.ipynb",
        str(tmp_path / "out.ipynb"),
        parameters={"comparison_id": "cmp", "runs_dir": str(tmp_path),
                    "overrides": {"prompts.limit": 2, "load.period_ms": 0, "load.warmup_count": 0}},
        cwd=".",
        kernel_name="python3",
        progress_bar=False,
    )
    out = tmp_path / "cmp"
    table = (out / "comparison.csv").read_text()
    for variant in ("embedded-llama.cpp", "llama.cpp-server", "ollama-api"):
        assert variant in table
        assert len((out / variant / "events.jsonl").read_text().splitlines()) == 2
    notebook = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    outputs = "".join(json.dumps(cell.get("outputs", [])) for cell in notebook.cells)
    assert "image/png" in outputs
    assert "comparison.md" in outputs
