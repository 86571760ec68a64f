"""``%tsg`` covers the ``tsglab`` command: every subcommand and flag, the ``%%tsg run`` cell, one-line errors."""

from __future__ import annotations

import importlib
import shlex

import pytest
from _rundir_helpers import SCRIPTED_SPEC
from IPython.core.error import UsageError

from tsglab import cli
from tsglab.jupyter.magics import complete, help_text, tsg


class Recorded(Exception):
    """Raised by the stand-in of a command's function once it has recorded its call."""


def _value(action) -> list[str]:
    if action.choices:
        return [list(action.choices)[-1]]
    if action.dest == "overrides":
        return ["prompts.limit=3"]
    if action.type is int:
        return ["150"]
    return [f"{action.dest}-value"]


def _words_of(parser, changed=None) -> list[str]:
    """The positionals (their first choice, or a placeholder), plus ``changed`` set to a non-default value."""
    words: list[str] = []
    for action in parser._actions:  # argparse has no public list of arguments
        if action.option_strings or action.dest == "help":
            continue
        if action is changed:
            words += _value(action)
        else:
            words += [next(iter(action.choices))] if action.choices else [f"{action.dest}-pos"]
    if changed is not None and changed.option_strings:
        flag = changed.option_strings[-1]
        words += [flag] if changed.nargs == 0 else [flag, *_value(changed)]
    return words


def _record(monkeypatch, command: str) -> list:
    calls: list = []
    module, name = cli.COMMANDS[command].target

    def stand_in(*args, **kwargs):
        calls.append((args, kwargs))
        raise Recorded

    monkeypatch.setattr(importlib.import_module(module), name, stand_in)
    return calls


def _call_of(calls, run) -> tuple:
    with pytest.raises(Recorded):
        run()
    return calls.pop()


# flags that act after the call (what is printed or returned), checked by their own tests below
AFTER_THE_CALL = {("run", "no_report")}


def test_every_subcommand_and_flag_reaches_the_same_call_from_the_cli_and_the_magic(monkeypatch):
    parsers = cli.subcommand_parsers()
    assert set(parsers) == set(cli.COMMANDS)  # one dispatch entry per subcommand, and nothing else
    checked = 0
    for command, parser in parsers.items():
        calls = _record(monkeypatch, command)
        base = _call_of(calls, lambda command=command, parser=parser: tsg(shlex.join([command, *_words_of(parser)])))
        for action in parser._actions:
            if action.dest == "help" or (command, action.dest) in AFTER_THE_CALL:
                continue
            words = [command, *_words_of(parser, action)]
            from_cli = _call_of(calls, lambda words=words: cli.main(words))
            from_magic = _call_of(calls, lambda words=words: tsg(shlex.join(words)))
            assert from_magic == from_cli, (command, action.dest)
            assert from_magic != base, f"%tsg {command}: {action.dest} does not reach {cli.COMMANDS[command].target}"
            checked += 1
    assert checked >= 25


def test_help_lists_every_subcommand_and_flag():
    from IPython.testing.globalipapp import get_ipython, start_ipython

    text = help_text()
    for name, parser in cli.subcommand_parsers().items():
        assert f"%tsg {name}" in text
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag in text
    ip = start_ipython() or get_ipython()
    ip.run_line_magic("load_ext", "tsglab")
    assert ip.find_magic("tsg").__doc__ == text
    assert "tsg" in ip.magics_manager.magics["cell"]


def _spec(name="cell", limit=4):
    return SCRIPTED_SPEC.format(name=name, limit=limit, mode="paced", ms=0, sleep="false", reply="The answer is 42.")


def test_cell_magic_runs_an_inline_spec(tmp_path):
    result = tsg(f"run --runs-dir {tmp_path} --run-id a --no-report --quiet", _spec())
    assert result.status == "complete"
    assert result.n_events == result.n_planned == 8
    report = tsg(f"run --runs-dir {tmp_path} --run-id b --quiet --set prompts.limit=2", _spec())
    assert report.baseline == "baseline"
    assert tsg(f"ablation {tmp_path / 'a'} {tmp_path / 'b'}") is not None  # refused before: only run/report/compare


def test_user_errors_are_one_line_usage_errors(tmp_path):
    cases = [
        (lambda: tsg("report"), r"the following arguments are required: run"),
        (lambda: tsg("report RUN --resamples many"), r"invalid int value: 'many'"),
        (lambda: tsg("explode now"), r"invalid choice: 'explode'"),
        (lambda: tsg(f"run --runs-dir {tmp_path} --quiet --set prompts.limit=abc", _spec()),
         r"%%tsg cell: prompts.limit must be a whole number"),
        (lambda: tsg(f"run --runs-dir {tmp_path}", "name: x\ntiers: [\n  oops"), r"%%tsg cell:\d"),
        (lambda: tsg("report x", "name: x"), r"a cell takes `run"),
        (lambda: tsg(f"ablation {tmp_path / 'missing'}"), r"missing"),
        (lambda: tsg("run 'unclosed"), r"close the quote"),
    ]
    for call, pattern in cases:
        with pytest.raises(UsageError, match=pattern) as caught:
            call()
        assert "\n" not in str(caught.value), str(caught.value)


def test_ctrl_c_gives_one_line_with_a_resume_magic_that_works(tmp_path, monkeypatch, capsys):
    from tsglab.backends.scripted import ScriptedBackend

    original, calls = ScriptedBackend.complete, []

    def interrupt_third(self, request):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, request)

    monkeypatch.setattr(ScriptedBackend, "complete", interrupt_third)
    with pytest.raises(UsageError, match=r"interrupted; .* is marked incomplete") as caught:
        tsg(f"run --runs-dir {tmp_path} --run-id c --no-report --quiet", _spec())
    message = str(caught.value)
    assert "\n" not in message
    assert "tsglab run" not in capsys.readouterr().err  # one line, the magic's: no command-line hint as well
    again = message.split("starting `", 1)[1].split("`", 1)[0]
    assert again.startswith("%%tsg run --resume ")
    monkeypatch.setattr(ScriptedBackend, "complete", original)
    result = tsg(again.removeprefix("%%tsg ") + " --no-report --quiet", _spec())
    assert result.status == "complete"
    assert result.n_events == result.n_planned == 8


def test_completion_offers_subcommands_then_their_flags():
    assert complete("%tsg r") == ["report", "run"]
    assert complete("%tsg ") == sorted(cli.subcommand_parsers())
    assert complete("%tsg report --re") == ["--resamples"]
    assert "--no-preflight" in complete("%tsg run spec.yaml ")
    assert complete("%tsg nope --") == []


def test_completion_offers_spec_files_run_dirs_and_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "quick.yaml").write_text("name: q\n")
    (tmp_path / "experiments" / "notes.txt").write_text("")
    for name, finished in (("quick-1", True), ("scratch", False)):
        (tmp_path / "runs" / name).mkdir(parents=True)
        if finished:
            (tmp_path / "runs" / name / "run.json").write_text("{}")
    assert "experiments/" in complete("%tsg run ")
    assert complete("%tsg run experiments/") == ["experiments/quick.yaml"]  # not the .txt
    assert complete("%tsg run experiments/q") == ["experiments/quick.yaml"]
    assert complete("%tsg report runs/") == ["runs/quick-1", "runs/scratch/"]  # a run dir, a folder
    assert complete("%tsg run experiments/quick.yaml --resume runs/q") == ["runs/quick-1"]
    assert complete("%tsg report runs/quick-1 --vs runs/") == ["runs/quick-1", "runs/scratch/"]
    assert complete("%tsg ablation runs/quick-1 runs/q") == ["runs/quick-1"]
    assert complete("%tsg run experiments/quick.yaml --re") == ["--resume"]
    assert complete("%tsg report nowhere/") == []
