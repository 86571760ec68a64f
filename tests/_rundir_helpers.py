"""Shared pieces of the run-directory tests (lock, containment, resume checks, disk errors, SIGTERM):
a scripted spec that needs no model, and ways to run the CLI in a child process, bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from tsglab.events import read_events

REPO = Path(__file__).resolve().parents[1]

SCRIPTED_SPEC = """\
name: {name}
prompts: {{limit: {limit}, seed: 1}}
arms: {{baseline: {{kind: baseline}}, tsg: {{}}}}
energy: {{meter: none}}
load: {{mode: {mode}, period_ms: 0, rate_per_s: 50, concurrency: 2, timeout_s: 5}}
tiers:
  light: {{backend: scripted, options: {{reply: "{reply}", prompt_ms: {ms}, sleep: {sleep}}}}}
  std: {{backend: scripted, options: {{reply: "{reply}", prompt_ms: {ms}, sleep: {sleep}}}}}
  enh: {{backend: scripted, options: {{reply: "{reply}", prompt_ms: {ms}, sleep: {sleep}}}}}
"""


def answer(request):
    """The scripted tiers' reply: passes no check in particular, fails none by shape."""
    return "The answer is 42 and it is positive."


class InterruptAt:
    """Answers normally, then raises KeyboardInterrupt on call number ``at`` (a user's Ctrl-C)."""

    def __init__(self, at):
        self.at, self.calls = at, 0

    def __call__(self, request):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return answer(request)


def write_spec(directory: Path, *, name: str = "rd", limit: int = 6, mode: str = "paced", ms: float = 0,
               sleep: bool = False, suite: Path | None = None) -> Path:
    text = SCRIPTED_SPEC.format(name=name, limit=limit, mode=mode, ms=ms, sleep=str(sleep).lower(),
                              reply="The answer is 42 and it is positive.")
    if suite is not None:
        text += f"suite: {suite}\n"
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tsglab_cli(*args: str, cwd: Path) -> subprocess.Popen:
    """``python -m tsglab ARGS`` in a child process (stdout and stderr piped)."""
    return subprocess.Popen([sys.executable, "-m", "tsglab", *args], cwd=cwd, env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_events(run_dir: Path, n: int, *, timeout_s: float = 60.0) -> None:
    """Wait until ``run_dir/events.jsonl`` holds at least ``n`` complete lines."""
    deadline = time.monotonic() + timeout_s
    path = run_dir / "events.jsonl"
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= n:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path}: fewer than {n} events after {timeout_s} s")


def event_keys(run_dir: Path) -> Counter:
    return Counter((e.arm, e.prompt_id) for e in read_events(run_dir))


def small_suite(folder: Path, n: int = 6) -> Path:
    """``n`` items of the bundled suite without a JSON Schema, as a suite file in ``folder``: loading the whole
    suite checks 100+ schemas (seconds in every fresh process), which is not what sweep tests are about."""
    from tsglab.suite import bundled_suite_path

    lines = [line for line in bundled_suite_path().read_text(encoding="utf-8").splitlines()
             if line.startswith("{") and '"json_schema"' not in line]
    path = folder / "small.jsonl"
    path.write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    return path
