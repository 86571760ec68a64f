"""``%load_ext tsglab`` then ``%tsg run SPEC`` / ``%tsg report RUN``: thin shells over :mod:`tsglab.api`.

The magic takes exactly the arguments of the ``tsglab`` command (same parser); errors become one-line
IPython ``UsageError``s instead of tracebacks.
"""

from __future__ import annotations

import contextlib
import io
import shlex

from tsglab.errors import TsglabError

USAGE = ("%tsg run SPEC [--runs-dir DIR] [--run-id ID] [--resume RUN_DIR] [--set KEY=VALUE ...]\n"
         "%tsg report RUN [--vs RUN [--allow-suite-change]] [--baseline ARM] [--gateway ARM] [--no-write] ...\n"
         "%tsg compare FILE [--variant NAME ...] [--set KEY=VALUE ...]")


def tsg(line: str):
    """Run ``%tsg`` with the same arguments as the ``tsglab`` command; returns the result object."""
    from IPython.core.error import UsageError

    from tsglab import api
    from tsglab.cli import build_parser, parse_overrides, report_options

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = build_parser().parse_args(shlex.split(line))
    except SystemExit:  # argparse reports bad arguments by exiting; a magic must not
        message = (stderr.getvalue().strip().splitlines() or ["bad arguments"])[-1]
        raise UsageError(f"{message}\nUsage:\n{USAGE}") from None
    try:
        if args.command == "run":
            result = api.run(args.spec, runs_dir=args.runs_dir, run_id=args.run_id, resume=args.resume,
                             overrides=parse_overrides(args.overrides), progress=not args.quiet)
            return result if args.no_report else api.build_report(result.run_dir)
        if args.command == "report":
            return api.build_report(args.run, **report_options(args))
        if args.command == "compare":
            return api.compare(args.file, runs_dir=args.runs_dir, comparison_id=args.comparison_id,
                               overrides=parse_overrides(args.overrides), variants=args.variants,
                               progress=not args.quiet)
        raise UsageError(f"%tsg supports 'run', 'report' and 'compare'.\nUsage:\n{USAGE}")
    except TsglabError as exc:
        raise UsageError(str(exc)) from None


def load_ipython_extension(ipython) -> None:
    ipython.register_magic_function(tsg, magic_kind="line", magic_name="tsg")
