"""``%load_ext tsglab`` then ``%tsg SUBCOMMAND ...`` (every subcommand of the ``tsglab`` command) or a
``%%tsg run [FLAGS]`` cell whose body is an experiment spec in YAML.

The magic parses its line with the command's own parser and calls the same dispatch table
(:data:`tsglab.cli.COMMANDS`), so every flag means the same in both. It returns the result object
instead of printing. Errors become one-line IPython ``UsageError``s instead of tracebacks; Ctrl-C during a
run ends with one line saying how to resume it. Inside a Jupyter kernel ``%tsg run`` shows the live run
monitor (:mod:`tsglab.jupyter.monitor`, registered by importing this package) instead of tqdm's bar;
``--quiet`` shows nothing. ``%tsg frontier DIR`` computes and writes what ``tsglab frontier DIR`` does and
returns the threshold explorer (:mod:`tsglab.jupyter.threshold_explorer`) over that frontier.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import shlex
import tempfile
from pathlib import Path
from typing import Any

from tsglab.errors import TsglabError

CELL_WHERE = "%%tsg cell"


def help_text() -> str:
    """The full help of ``%tsg``: every subcommand and flag, written by the command's parser."""
    from tsglab.cli import subcommand_parsers

    parts = ["%tsg SUBCOMMAND [ARGS] — the `tsglab` command inside IPython; returns the result object.",
             "%%tsg run [FLAGS] — the cell body is the experiment spec (YAML); errors name the cell line.", ""]
    for name, sub in subcommand_parsers().items():
        sub.prog = f"%tsg {name}"
        parts += [sub.format_help().rstrip(), ""]
    return "\n".join(parts)


def _parse(words: list[str]) -> argparse.Namespace | None:
    """The parsed words, ``None`` after ``--help`` (printed), or a one-line ``UsageError``."""
    from IPython.core.error import UsageError

    from tsglab.cli import build_parser

    stderr, stdout = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
            return build_parser().parse_args(words)
    except SystemExit as exc:  # argparse reports bad arguments (and --help) by exiting; a magic must not
        if exc.code == 0:
            print(stdout.getvalue().replace("usage: tsglab", "usage: %tsg"), end="")
            return None
        message = (stderr.getvalue().strip().splitlines() or ["bad arguments"])[-1].replace("tsglab: error: ", "")
        raise UsageError(f"%tsg: {message} (Usage: %tsg? lists every subcommand and flag)") from None


def _cell_spec(cell: str) -> Path:
    """The cell body as a spec file, named by its content so a resume finds the same file again."""
    digest = hashlib.sha256(cell.encode("utf-8")).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "tsglab-cells"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"cell-{digest}.yaml"
    if not path.is_file():
        path.write_text(cell, encoding="utf-8")
    return path


def _run_dirs(runs_dir: str) -> set[Path]:
    root = Path(runs_dir)
    return {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def _interrupted(args: argparse.Namespace, before: set[Path], cell: str | None) -> str:
    """The one line for a Ctrl-C during ``%tsg run``: which run is incomplete and the magic that continues it."""
    new = sorted(_run_dirs(args.runs_dir) - before)
    run_dir = args.resume or (str(new[-1]) if new else None)
    if run_dir is None:
        return "%tsg run: interrupted before the run directory was created; nothing was recorded."
    sets = " ".join(f"--set {shlex.quote(pair)}" for pair in args.overrides)
    if cell is not None:
        again = f"%%tsg run --resume {shlex.quote(str(run_dir))}"
        again += f" {sets}" if sets else ""
        return (f"%tsg run: interrupted; {run_dir} is marked incomplete. Continue it with the same cell "
                f"starting `{again}`.")
    again = f"%tsg run {shlex.quote(args.spec)} --resume {shlex.quote(str(run_dir))}" + (f" {sets}" if sets else "")
    return f"%tsg run: interrupted; {run_dir} is marked incomplete. Continue it with `{again}`."


def tsg(line: str, cell: str | None = None) -> Any:
    from IPython.core.error import UsageError

    from tsglab.cli import COMMANDS, call

    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%tsg: cannot split the line ({exc}); close the quote.") from None
    if cell is not None:
        if not words or words[0] != "run":
            raise UsageError("%%tsg: a cell takes `run [FLAGS]` on its first line and the spec (YAML) below it; "
                             f"got {line.strip()!r}.")
        spec_path = _cell_spec(cell)
        words = ["run", str(spec_path), *words[1:]]
    args = _parse(words)
    if args is None:
        return None
    before = _run_dirs(args.runs_dir) if args.command == "run" else set()
    try:
        result = COMMANDS[args.command].value(call(args), args)
        if args.command == "frontier" and args.target != "collect":
            return _frontier_explorer(result, args)
        return result
    except TsglabError as exc:
        message = " ".join(str(exc).split("\n"))
        if cell is not None:
            message = message.replace(str(spec_path), CELL_WHERE)
        raise UsageError(message) from None
    except KeyboardInterrupt:
        if args.command != "run":
            raise UsageError(f"%tsg {args.command}: interrupted.") from None
        raise UsageError(_interrupted(args, before, cell)) from None


def _frontier_explorer(result: Any, args: argparse.Namespace) -> Any:
    """``%tsg frontier DIR``: what ``tsglab frontier DIR`` computes and writes, shown as the threshold explorer
    (:mod:`tsglab.jupyter.threshold_explorer`) over the same data, frontier and resamples."""
    from tsglab.jupyter.threshold_explorer import ThresholdExplorer

    return ThresholdExplorer(args.target, frontier=result.frontier)


# what a positional argument or a flag's value names, per subcommand: a spec/comparison file, run dirs, a folder
# ("replay": a replay folder or a run directory)
_POSITIONAL = {"run": "yaml", "compare": "yaml", "sweep": "yaml", "report": "run", "ablation": "run",
               "import-legacy": "dir", "frontier": "replay"}
_FLAG_VALUES = {"--resume": "run", "--vs": "run", "--runs-dir": "dir", "--sweeps-dir": "dir", "--grid": "yaml",
                "--out": "dir"}
_REPLAY_FILES = ("run.json", "replay.npz", "replay.jsonl")


def _complete_path(typed: str, want: str) -> list[str]:
    """Entries under the folder ``typed`` points into that start with its last part: folders (with a
    trailing ``/``, to go on typing), run directories (folders holding ``run.json``, without the slash)
    when ``want`` is ``"run"``, run directories and replay folders (``replay.npz`` or ``replay.jsonl``)
    when ``want`` is ``"replay"``, and YAML files when ``want`` is ``"yaml"``."""
    folder, slash, stem = typed.rpartition("/")
    base = Path(folder + slash or ".").expanduser()
    if not base.is_dir():
        return []
    out = []
    for entry in sorted(base.iterdir()):
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
            continue
        text = f"{folder}{slash}{entry.name}"
        if entry.is_dir():
            done = (want == "run" and (entry / "run.json").is_file()) or (
                want == "replay" and any((entry / name).is_file() for name in _REPLAY_FILES))
            out.append(text if done else text + "/")
        elif want == "yaml" and entry.suffix in (".yaml", ".yml"):
            out.append(text)
    return out


def complete(line: str) -> list[str]:
    """Tab completion after ``%tsg``: the subcommands; then, for the subcommand written, its flags (after
    ``-``), spec and comparison files, run directories (``report``, ``ablation``, ``--resume``, ``--vs``),
    replay folders and run directories (``frontier``; or the word ``collect`` and then a spec) and folders."""
    from tsglab.cli import subcommand_parsers

    parsers = subcommand_parsers()
    words = line.split()
    if words and words[0].lstrip("%") == "tsg":
        words = words[1:]
    typed = "" if line.endswith((" ", "\t")) or not words else words[-1]
    if len(words) == 0 or (len(words) == 1 and typed):
        return sorted(name for name in parsers if name.startswith(typed))
    parser = parsers.get(words[0])
    if parser is None:
        return []
    flags = {flag for flag in parser.format_help().replace(",", " ").replace("[", " ").split() if flag.startswith("--")}
    flags = {flag for flag in flags if flag.strip("]") == flag}
    done = words[1:-1] if typed else words[1:]  # the words before the one being typed
    if done and done[-1] in _FLAG_VALUES:
        return _complete_path(typed, _FLAG_VALUES[done[-1]])
    if typed.startswith("-"):
        return sorted(flag for flag in flags if flag.startswith(typed))
    given = [w for i, w in enumerate(done) if not w.startswith("-") and (i == 0 or done[i - 1] not in _FLAG_VALUES)]
    want = _POSITIONAL.get(words[0])
    if words[0] == "frontier" and given == ["collect"]:  # `frontier collect SPEC`
        return _complete_path(typed, "yaml")
    if want is not None and (not given or words[0] == "ablation"):
        extra = ["collect"] if words[0] == "frontier" and "collect".startswith(typed) and "/" not in typed else []
        return extra + _complete_path(typed, want)
    return sorted(flag for flag in flags if flag.startswith(typed))


def load_ipython_extension(ipython) -> None:
    tsg.__doc__ = help_text()
    ipython.set_hook("complete_command", lambda _shell, event: complete(event.line), str_key="%tsg")
    ipython.register_magic_function(tsg, magic_kind="line_cell", magic_name="tsg")
