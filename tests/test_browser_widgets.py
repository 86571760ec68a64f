"""tsglab's widgets rendered by a real JupyterLab in Debian's chromium (Playwright), asserted on the DOM.

One JupyterLab server and one browser serve the whole module; each test writes its notebook into the
server's root folder, opens it in a fresh browser context and runs it with JupyterLab's own
``notebook:run-all-cells`` command. Screenshots go to ``$TSGLAB_SCREENSHOTS`` (a temporary folder
when unset); a failing test leaves ``failed-<test>.png`` and the server log there too.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from _jupyterlab import CHROMIUM, CHROMIUM_ARGS, JupyterLab, NotebookPage, start_jupyterlab, write_notebook
from _rundir_helpers import write_spec

from tsglab.jupyter.monitor import MIN_N

pytestmark = pytest.mark.browser

# the monitor's run: 2 arms x MONITOR_PROMPTS requests of MONITOR_PROMPT_MS each, one at a time (~8 s)
MONITOR_PROMPTS = 8
MONITOR_PROMPT_MS = 400
RUN_TIMEOUT_S = 90.0
WIDGET_TIMEOUT_S = 45.0
# console errors that mean a widget did not render (the widget manager's own messages)
WIDGET_ERRORS = re.compile(r"Could not create (a )?(model|view)|widget manager|Class \S+ not found|"
                           r"Module \S+ not found|Failed to (create|render)|Error: .*widget", re.IGNORECASE)
PROGRESS = re.compile(r"(\d+)\s*/\s*(\d+)")

SMOKE_CELL = dedent("""\
    import ipywidgets as w
    from IPython.display import display
    choice = w.Dropdown(options=['alpha', 'beta'], value='alpha')
    choice.add_class('smoke-choice')
    echo = w.Label('picked alpha')
    echo.add_class('smoke-echo')
    choice.observe(lambda change: setattr(echo, 'value', 'picked ' + change['new']), names='value')
    display(w.VBox([w.IntProgress(value=3, max=10), choice, echo]))
""")


def _require_browser() -> None:
    """Skip when chromium or Playwright is absent; in CI (CI=true) that is a failure, not a skip."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"{CHROMIUM} (Debian package chromium; make setup installs it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package (make setup installs it)")
    if not missing:
        return
    reason = "browser tests need " + " and ".join(missing)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}; in CI they must run, not skip", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("TSGLAB_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Debian's chromium only: Playwright must never fetch a browser of its own
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lab(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    root = tmp_path_factory.mktemp("lab-root")
    server = start_jupyterlab(root, tmp_path_factory.mktemp("lab-state"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def open_notebook(lab: JupyterLab, browser: Any, screenshots: Path,
                  request: pytest.FixtureRequest) -> Iterator[Callable[[str, list[str]], NotebookPage]]:
    """``open_notebook(name, cells)``: writes the notebook, opens it in a fresh page, waits for its kernel."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(30_000)
    pages: list[NotebookPage] = []
    failed_before = request.session.testsfailed

    def _open(name: str, cells: list[str]) -> NotebookPage:
        write_notebook(lab.root / name, cells)
        notebook = NotebookPage(context.new_page(), lab, name)
        pages.append(notebook)
        return notebook.open()

    yield _open
    if request.session.testsfailed > failed_before:  # this test failed: keep what the page and server showed
        for notebook in pages:
            try:
                notebook.screenshot(screenshots, f"failed-{request.node.name}.png")
            except Exception as exc:  # noqa: BLE001 - a dead page must not hide the test's own failure
                print(f"no failure screenshot: {exc}", file=sys.stderr)
        shutil.copyfile(lab.log_path, screenshots / f"failed-{request.node.name}-jupyterlab.log")
    for notebook in pages:
        try:
            notebook.shutdown_kernel()
        except Exception as exc:  # noqa: BLE001 - the server stops every kernel at the end anyway
            print(f"kernel of {notebook.name} not shut down: {exc}", file=sys.stderr)
    context.close()


def _widget_errors(notebook: NotebookPage) -> list[str]:
    return [e for e in notebook.console_errors if WIDGET_ERRORS.search(e) or e.startswith("pageerror")]


def _plain(text: str) -> str:
    """Text with the browser's no-break spaces and runs of white space as single spaces."""
    return " ".join(text.replace("\xa0", " ").split())


def _progress(text: str) -> tuple[int, int]:
    found = PROGRESS.search(text)
    assert found, f"no 'done/total' in the monitor's progress text {text!r}"
    return int(found.group(1)), int(found.group(2))


def test_page_loads_widgets_render_without_console_errors(open_notebook):
    """The harness itself: the venv's kernel runs the cells and plain ipywidgets render and react to the DOM."""
    notebook = open_notebook("smoke.ipynb", ["import sys\nprint('kernel python:', sys.executable)", SMOKE_CELL])
    notebook.run_all()
    notebook.wait_idle()
    outputs = notebook.outputs_text()
    assert f"kernel python: {sys.executable}" in outputs, notebook.explain("the kernel is not this venv's python")
    notebook.wait_for(".smoke-echo", "the plain ipywidgets Label", WIDGET_TIMEOUT_S)
    notebook.page.locator(".smoke-choice select").select_option("beta")
    notebook.wait_until(lambda: "picked beta" in notebook.page.locator(".smoke-echo").inner_text(),
                        "the Label to follow the Dropdown chosen in the page", WIDGET_TIMEOUT_S)
    assert not _widget_errors(notebook), notebook.explain("widget errors in the browser console")


def test_monitor_shows_progress_mid_run_then_complete(open_notebook, lab, screenshots):
    spec = write_spec(lab.root, name="monitor", limit=MONITOR_PROMPTS, ms=MONITOR_PROMPT_MS, sleep=True)
    notebook = open_notebook("monitor.ipynb", [
        # --no-report: the report after the run is not what this test watches, and takes 20-30 s here
        "%load_ext tsglab", f"%tsg run {spec} --runs-dir {lab.root / 'runs-monitor'} --no-report"])
    notebook.run_all()

    progress = notebook.page.locator(".tsglab-monitor-progress")

    def mid_run() -> bool:
        done, total = map(sum, zip(*map(_progress, progress.all_inner_texts()), strict=True))
        return 0 < done < total

    notebook.wait_until(mid_run, "the monitor's progress to show 0 < done < total", RUN_TIMEOUT_S,
                        extra=lambda: f"progress texts: {progress.all_inner_texts()}")
    notebook.screenshot(screenshots, "monitor-midrun.png")
    shots = {"rich": False}  # retaken once some P50 shows (a figure rather than "n < 5"), if that moment is seen

    # the kernel's status as JupyterLab shows it, sampled whenever the monitor shows 0 < done < total: the
    # cell runs, so it must say busy (the server lists the subshell control messages as untracked, see
    # _jupyterlab.SUBSHELL_CONTROL_MESSAGES; anything else that turns it idle is the monitor's doing)
    statuses: list[tuple[str, str]] = []
    status = notebook.page.locator(".tsglab-monitor .tsglab-monitor-status").first

    def complete() -> bool:
        if mid_run():
            texts = progress.all_inner_texts()
            statuses.append((notebook.kernel_status(), " | ".join(texts)))
            if not shots["rich"] and max(_progress(text)[0] for text in texts) >= MIN_N[0.5]:
                notebook.screenshot(screenshots, "monitor-midrun.png")
                shots["rich"] = True
        return status.inner_text().strip() == "complete"

    notebook.wait_until(complete, "the monitor's status 'complete'", RUN_TIMEOUT_S,
                        extra=lambda: f"status: {status.inner_text()!r}")
    assert statuses, notebook.explain("the run was never seen between its first and last request")
    not_busy = [(kernel, shown) for kernel, shown in statuses if kernel != "busy"]
    assert not not_busy, notebook.explain(f"JupyterLab showed the kernel not busy while the monitor's cell ran "
                                          f"({len(not_busy)} of {len(statuses)} samples): {not_busy[:5]}")
    rows = notebook.page.locator(".tsglab-monitor .tsglab-monitor-arm")
    arm_texts = rows.all_inner_texts()
    assert len(arm_texts) == 2, notebook.explain(f"expected one row per arm (baseline, tsg); got {arm_texts}")
    for arm, row_text in zip(("baseline", "tsg"), arm_texts, strict=True):
        assert arm in row_text, notebook.explain(f"arm row {row_text!r} does not name arm {arm!r}")
    for row_progress in rows.locator(".tsglab-monitor-progress").all_inner_texts():
        assert _progress(row_progress) == (MONITOR_PROMPTS, MONITOR_PROMPTS), notebook.explain(
            f"a complete arm shows {row_progress!r}, not {MONITOR_PROMPTS}/{MONITOR_PROMPTS}")
    notebook.screenshot(screenshots, "monitor-complete.png")
    notebook.wait_idle()
    assert not _widget_errors(notebook), notebook.explain("widget errors in the browser console")


# the elements whose content is cut (wider than their box): a truncated label ("Latency vi…") or a banner
# that runs out of its cell
_CUT_JS = """(elements) => elements.filter((e) => e.scrollWidth > e.clientWidth + 1)
    .map((e) => e.textContent.trim().slice(0, 80) + ' (' + e.scrollWidth + ' > ' + e.clientWidth + ' px)')"""


def _choose_another(notebook: NotebookPage, dropdown_class: str, output: Any, what: str) -> tuple[str, str]:
    """Pick, as a user would, another option (the one the output names least); wait until the output names
    it more often than before (a table caption, a settings line). Returns the labels selected before and after.
    """
    select = notebook.page.locator(f".{dropdown_class} select, select.{dropdown_class}").first
    notebook.wait_until(select.is_visible, f"the {what} dropdown (.{dropdown_class})", WIDGET_TIMEOUT_S)
    labels = [_plain(label) for label in select.locator("option").all_inner_texts()]
    current = _plain(select.evaluate("(s) => s.options[s.selectedIndex].text"))
    before = _plain(output.inner_text())
    others = sorted((label for label in labels if label != current), key=before.count)
    assert others, notebook.explain(f"the {what} dropdown offers only {labels}: nothing to change to")
    chosen = others[0]
    select.select_option(index=labels.index(chosen))
    notebook.wait_until(lambda: _plain(output.inner_text()).count(chosen) > before.count(chosen),
                        f"the output to name {what} {chosen!r} more often once chosen (was {current!r}; "
                        f"{before.count(chosen)} mention(s) before)", WIDGET_TIMEOUT_S,
                        extra=lambda: f"output text: {_plain(output.inner_text())[:2000]}")
    return current, chosen


def test_explorer_recomputes_when_the_user_changes_view_and_resampling(open_notebook, lab, screenshots):
    import tsglab

    spec = write_spec(lab.root, name="explore", limit=12)
    run_dir = tsglab.run(spec, runs_dir=lab.root / "runs-explorer", progress=False).run_dir
    notebook = open_notebook("explorer.ipynb", ["import tsglab.jupyter", f"tsglab.jupyter.explore(r'{run_dir}')"])
    notebook.run_all()
    output = notebook.wait_for(".tsglab-explorer .tsglab-explorer-output", "the explorer's output area",
                               RUN_TIMEOUT_S)
    verdict = notebook.wait_for(".tsglab-explorer .tsglab-verdict", "the explorer's verdict banner", RUN_TIMEOUT_S)
    assert verdict.inner_text().strip(), notebook.explain("the verdict banner is empty")
    labels = notebook.page.locator(".tsglab-explorer .widget-label")
    assert labels.count() >= 7, notebook.explain(f"expected a label per control; found {labels.all_inner_texts()}")
    cut = labels.evaluate_all(_CUT_JS) + notebook.page.locator(".tsglab-explorer .tsglab-verdict").evaluate_all(_CUT_JS)
    assert not cut, notebook.explain(f"cut off in the explorer: {cut}")

    before = _plain(output.inner_text())
    previous, view = _choose_another(notebook, "tsglab-explorer-view", output, "view")
    shown = _plain(output.inner_text())
    assert shown.count(previous) < before.count(previous), notebook.explain(
        f"view {view!r} chosen, but the output names the previous view {previous!r} as often as before",
        extra=f"output text: {shown[:2000]}")
    _choose_another(notebook, "tsglab-explorer-resampling", output, "resampling")
    shown = output.inner_text()
    assert "Traceback" not in shown, notebook.explain("the output shows a traceback")
    notebook.screenshot(screenshots, "explorer.png")
    assert not _widget_errors(notebook), notebook.explain("widget errors in the browser console")


def test_missing_chromium_skips_locally_and_fails_in_ci(monkeypatch, tmp_path):
    monkeypatch.setitem(globals(), "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no-chromium"):
        _require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="in CI they must run, not skip"):
        _require_browser()
