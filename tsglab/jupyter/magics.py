"""``%load_ext tsglab`` then ``%tsg run SPEC`` / ``%tsg report RUN``: thin shells over :mod:`tsglab.api`."""

from __future__ import annotations

import argparse
import shlex

from tsglab.errors import TsglabError

USAGE = ("%tsg run SPEC [--runs-dir DIR] [--run-id ID] [--resume RUN_DIR] [--set KEY=VALUE ...]\n"
         "%tsg report RUN [--vs RUN] [--baseline ARM] [--gateway ARM]")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would sys.exit(); a magic must raise UsageError
        raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
    from tsglab.cli import build_parser

    parser = build_parser()
    parser.__class__ = _Parser
    for action in parser._subparsers._group_actions:  # make sub-parsers raise too
        for sub in action.choices.values():
            sub.__class__ = _Parser
    return parser


def tsg(line: str):
    """Run ``%tsg`` with the same arguments as the ``tsglab`` command; returns the result object."""
    from IPython.core.error import UsageError

    from tsglab import api
    from tsglab.cli import _parse_set

    try:
        args = _parser().parse_args(shlex.split(line))
    except ValueError as exc:
        raise UsageError(f"{exc}. Usage:\n{USAGE}") from None
    try:
        if args.command == "run":
            result = api.run(args.spec, runs_dir=args.runs_dir, run_id=args.run_id, resume=args.resume,
                             overrides=_parse_set(args.overrides), progress=not args.quiet)
            return result if args.no_report else api.report(result.run_dir)
        if args.command == "report":
            return api.report(args.run, vs=args.vs, baseline_arm=args.baseline, gateway_arm=args.gateway)
        raise UsageError(f"%tsg supports 'run' and 'report'. Usage:\n{USAGE}")
    except TsglabError as exc:
        raise UsageError(str(exc)) from None


def load_ipython_extension(ipython) -> None:
    ipython.register_magic_function(tsg, magic_kind="line", magic_name="tsg")
