"""``tsglab`` on the command line: run an experiment, report on runs, install models."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tsglab.errors import RunInterrupted, SpecError, TsglabError


def report_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`tsglab.api.build_report` that a parsed ``report`` command asks for
    (one mapping for the command line and the ``%tsg`` magic, so both honour every option)."""
    from tsglab.report import ProtocolSettings

    settings = ProtocolSettings(strata=tuple(s.strip() for s in args.strata.split(",") if s.strip()),
                                n_resamples=args.resamples, co_correction=not args.no_co,
                                equivalence=args.equivalence)
    return {"vs": args.vs, "baseline_arm": args.baseline, "gateway_arm": args.gateway, "settings": settings,
            "allow_suite_change": args.allow_suite_change, "write": not args.no_write}


def run_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`tsglab.api.run` that a parsed ``run`` command asks for."""
    return {"runs_dir": args.runs_dir, "run_id": args.run_id, "resume": args.resume,
            "overrides": {**parse_overrides(args.overrides), **({"preflight": False} if args.no_preflight else {})},
            "progress": not args.quiet}


def compare_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`tsglab.api.compare` that a parsed ``compare`` command asks for."""
    return {"runs_dir": args.runs_dir, "comparison_id": args.comparison_id,
            "overrides": parse_overrides(args.overrides), "variants": args.variants, "progress": not args.quiet}


def sweep_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`tsglab.api.sweep` that a parsed ``sweep`` command asks for."""
    return {"sweeps_dir": args.sweeps_dir, "executor": args.executor, "workers": args.workers, "dask": args.dask,
            "retry_failed": args.retry_failed, "progress": not args.quiet}


def _sweep(target: str, directory: str | None = None, **options: Any) -> Any:
    """``tsglab sweep FILE [FLAGS]`` runs a sweep; ``tsglab sweep report DIR`` rebuilds its results."""
    from tsglab import api
    from tsglab.errors import InvalidArgument

    if target == "report":
        if directory is None:
            raise InvalidArgument("`tsglab sweep report` needs the sweep directory, e.g. tsglab sweep report "
                                  "runs/sweeps/thresholds.")
        return api.sweep_report(directory)
    if directory is not None:
        raise InvalidArgument(f"`tsglab sweep {target}` takes one sweep file; got a second argument {directory!r}. "
                              "To rebuild a sweep's results write `tsglab sweep report DIR`.")
    return api.sweep(target, **options)


def frontier_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`_frontier` that a parsed ``frontier`` command asks for."""
    return {"grid": args.grid, "out": args.out, "n_resamples": args.resamples, "limit": args.limit}


def _frontier(target: str, spec: str | None = None, *, grid: str | None = None, out: str | None = None,
              n_resamples: int = 1000, limit: int | None = None) -> Any:
    """``tsglab frontier DIR`` computes and writes the frontier of a replay folder or run directory;
    ``tsglab frontier collect SPEC --out DIR`` collects the replay data of a spec first."""
    from tsglab.errors import InvalidArgument
    from tsglab.replay import collect_spec, frontier_report

    if target == "collect":
        if spec is None or out is None:
            raise InvalidArgument("`tsglab frontier collect` needs the spec and --out, e.g. tsglab frontier collect "
                                  "experiments/replay.yaml --out runs/replay.")
        if grid is not None:
            raise InvalidArgument("--grid belongs to `tsglab frontier DIR`, not to `collect`; collect first, then "
                                  "run `tsglab frontier DIR --grid FILE`.")
        return collect_spec(spec, out=out, limit=limit)
    if spec is not None:
        raise InvalidArgument(f"`tsglab frontier {target}` takes one folder; got a second argument {spec!r}. To "
                              "collect replay data write `tsglab frontier collect SPEC --out DIR`.")
    if limit is not None:
        raise InvalidArgument("--limit belongs to `tsglab frontier collect`; drop it here.")
    return frontier_report(target, grid=grid, out=out, n_resamples=n_resamples)


def parse_overrides(pairs: list[str]) -> dict:
    """``["prompts.limit=20", ...]`` (the ``--set`` values) → ``{"prompts.limit": 20}``.

    Values are read by the spec's strict YAML reader (``true``/``false`` only, no dates, no duplicate keys);
    every error names the ``--set`` it comes from.
    """
    from tsglab.config.yaml_loader import load_yaml

    overrides: dict = {}
    written: dict[str, str] = {}
    for pair in pairs:
        where = f"--set {pair if pair.isprintable() else repr(pair)[1:-1]}"
        if "=" not in pair:
            raise SpecError(f"{where}: --set expects KEY=VALUE (e.g. --set prompts.limit=20); got {pair!r}.")
        key, value = pair.split("=", 1)
        key = key.strip()
        if not key:
            raise SpecError(f"{where}: the key is empty; write the dotted key before '=', e.g. --set prompts.limit=20.")
        if not all(part.strip() for part in key.split(".")):
            raise SpecError(f"{where}: the key {key!r} has an empty part between dots; write e.g. "
                            "--set tiers.light.max_tokens=64.")
        if not value.strip():
            raise SpecError(f"{where}: the value is empty; write a value (null for none, '' for an empty string), "
                            f"e.g. --set {key}=null.")
        if key in overrides:
            raise SpecError(f"{where}: --set {key} is given twice (={written[key]} and ={value}); keep one.")
        written[key] = value
        overrides[key] = load_yaml(value, where)
    return overrides


def _under_delivery(run_dir) -> str:
    """The summary line's warning when the load generator fell short of the planned load (``run.json``)."""
    from tsglab.events import read_manifest
    from tsglab.load.delivery import delivery_warnings

    warnings = delivery_warnings(read_manifest(run_dir))
    return f" — WARNING: under-delivered load: {'; '.join(warnings)}" if warnings else ""


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``tsglab`` command (and of ``%tsg``)."""
    return _parser_and_subcommands()[0]


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """Each subcommand's parser by name, in the order of the help (for ``%tsg?``, completion and tests)."""
    return dict(_parser_and_subcommands()[1].choices)


def _parser_and_subcommands() -> tuple[argparse.ArgumentParser, Any]:
    parser = argparse.ArgumentParser(prog="tsglab", description="LLM routing experiments with an auditable protocol.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment spec and record every request")
    run.add_argument("spec", help="experiment spec (YAML), e.g. experiments/quickstart.yaml")
    run.add_argument("--runs-dir", default="runs")
    run.add_argument("--run-id", default=None)
    run.add_argument("--resume", metavar="RUN_DIR", default=None, help="continue an incomplete run")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a spec value, e.g. --set prompts.limit=20")
    run.add_argument("--no-report", action="store_true", help="do not print the report at the end")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-preflight", action="store_true",
                     help="skip the check of every tier's server and model before the run (spec: preflight: false)")

    rep = sub.add_parser("report", help="print and write the report of a run")
    rep.add_argument("run", help="run directory, e.g. runs/quickstart-20261122-101500")
    rep.add_argument("--vs", default=None, metavar="RUN",
                     help="take the baseline arm from another run; the report goes to <run>--vs--<RUN>/, "
                          "never into either run's own files")
    rep.add_argument("--allow-suite-change", action="store_true",
                     help="with --vs: pair runs of different suite versions, only on prompts whose texts match")
    rep.add_argument("--baseline", default="baseline", help="baseline arm name (default: baseline)")
    rep.add_argument("--gateway", default=None, help="gateway arm name (default: the first other arm)")
    rep.add_argument("--strata", default="task", help="pre-treatment strata keys, comma-separated (default: task)")
    rep.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    rep.add_argument("--no-co", action="store_true", help="ablation C: Family B on raw instead of CO latency")
    rep.add_argument("--equivalence", action="store_true", help="Family A as TOST instead of non-inferiority")
    rep.add_argument("--no-write", action="store_true",
                     help="print the report without writing its files (tables, figures, metrics) anywhere")

    abl = sub.add_parser("ablation", help="one row per arm of the given runs: cost, r_costly, retries, P50, P95 CO")
    abl.add_argument("runs", nargs="+", help="run directories")

    legacy = sub.add_parser("import-legacy", help="convert the paper's legacy bench output into tsglab runs")
    legacy.add_argument("dir", help="folder of <mode>_<YYYYmmdd_HHMMSS>_events.jsonl / _summary.json files")
    legacy.add_argument("--runs-dir", default="runs")
    legacy.add_argument("--force", action="store_true", help="replace run directories that exist already")
    legacy.add_argument("--allow-mismatch", action="store_true",
                        help="import even when a legacy summary value is not reproduced (the row is flagged)")

    cmp_ = sub.add_parser("compare", help="the same suite and policy on several serving backends, side by side")
    cmp_.add_argument("file", help="comparison file, e.g. experiments/backends.yaml")
    cmp_.add_argument("--runs-dir", default="runs")
    cmp_.add_argument("--id", dest="comparison_id", default=None, help="folder name under --runs-dir")
    cmp_.add_argument("--variant", dest="variants", action="append", default=None, help="run only this variant")
    cmp_.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                      help="override a value of the base spec, e.g. --set prompts.limit=10")
    cmp_.add_argument("--quiet", action="store_true", help="no progress bar")

    swp = sub.add_parser("sweep", help="run a sweep file's points (cached, resumable), or `sweep report DIR`")
    swp.add_argument("file", metavar="FILE", help="sweep file, e.g. experiments/thresholds.sweep.yaml; or the word "
                                                  "`report` followed by the sweep directory to rebuild its results")
    swp.add_argument("dir", nargs="?", default=None, metavar="DIR", help="after `report`: the sweep directory")
    swp.add_argument("--executor", choices=["seq", "pool", "dask"], default="seq",
                     help="seq (one after another), pool (local processes) or dask (Dask distributed)")
    swp.add_argument("--workers", type=int, default=None, help="worker processes of pool or dask")
    swp.add_argument("--dask", default=None, metavar="ADDR",
                     help="a Dask scheduler, e.g. tcp://10.0.0.5:8786 (default: a LocalCluster on 127.0.0.1)")
    swp.add_argument("--sweeps-dir", default="runs/sweeps", help="where sweep directories go (default: runs/sweeps)")
    swp.add_argument("--retry-failed", action="store_true", help="run failed points again")
    swp.add_argument("--quiet", action="store_true", help="no line per point")

    fr = sub.add_parser("frontier", help="cost-quality frontier with CIs from replay data, or `frontier collect SPEC`")
    fr.add_argument("target", metavar="DIR", help="replay folder (replay.npz / replay.jsonl) or run directory; or "
                                                  "the word `collect` followed by a spec")
    fr.add_argument("spec", nargs="?", default=None, metavar="SPEC", help="after `collect`: the experiment spec")
    fr.add_argument("--grid", default=None, metavar="FILE",
                    help="grid file (YAML: base: {policy params}, grid: {param: [values]}); default: thresholds x "
                         "floors x fast lane x repair x upgrades")
    fr.add_argument("--out", default=None, metavar="DIR", help="output folder (default: DIR/frontier); for collect: "
                                                               "where the replay data go")
    fr.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    fr.add_argument("--limit", type=int, default=None, help="collect: at most this many prompts (prompts.limit)")

    models = sub.add_parser("models", help="embedded models")
    models.add_argument("action", choices=["install", "list"])
    return parser, sub


def _models(action: str) -> dict[str, str]:
    """``tsglab models install|list``: model name → installed path (install) or description and where (list)."""
    from tsglab.backends.models import MODELS, install_models, resolve_model

    if action == "install":
        return {name: str(path) for name, path in install_models().items()}
    listing = {}
    for name, info in MODELS.items():
        try:
            where = str(resolve_model(name))
        except TsglabError as exc:
            where = f"not installed — {exc}"
        listing[name] = f"{info.description}\n    {where}"
    return listing


def _run_text(result: Any, args: argparse.Namespace) -> str:
    from tsglab import api

    line = (f"run {result.run_id}: {result.status}, {result.n_events}/{result.n_planned} requests "
            f"in {result.run_dir}{_under_delivery(result.run_dir)}")
    return line if args.no_report else f"{line}\n{api.build_report(result.run_dir)}"


def _run_value(result: Any, args: argparse.Namespace) -> Any:
    from tsglab import api

    return result if args.no_report else api.build_report(result.run_dir)


def _report_text(report: Any, args: argparse.Namespace) -> str:
    return f"{report}\nNot written (--no-write): no file was created or changed." if args.no_write else str(report)


def _legacy_text(imported: Any, args: argparse.Namespace) -> str:
    lines = [f"run {r.run_id}: arms {', '.join(r.arms)} ({sum(r.n_events.values())} events) in {r.run_dir}"
             for r in imported]
    return "\n".join(lines + [f"\n{r}" for r in imported])


def _markdown(title: str) -> Callable[[Any, argparse.Namespace], str]:
    def text(table: Any, args: argparse.Namespace) -> str:
        from tsglab.report.render import to_markdown

        return to_markdown(table, title=title)
    return text


def _unchanged(result: Any, args: argparse.Namespace) -> Any:
    return result


@dataclass(frozen=True)
class Command:
    """One subcommand: the function it calls (looked up when called, by module and name), the arguments a
    parsed command line gives it, what the command line prints and what the ``%tsg`` magic returns."""

    target: tuple[str, str]
    arguments: Callable[[argparse.Namespace], tuple[list, dict]]
    text: Callable[[Any, argparse.Namespace], str]
    value: Callable[[Any, argparse.Namespace], Any] = _unchanged
    #: the command line's exit status for a result that did not raise (a sweep with failed points: 1)
    exit_status: Callable[[Any], int] = lambda result: 0

    def function(self) -> Callable[..., Any]:
        module, name = self.target
        return getattr(importlib.import_module(module), name)


COMMANDS: dict[str, Command] = {
    "run": Command(("tsglab.api", "run"), lambda a: ([a.spec], run_options(a)), _run_text, _run_value),
    "report": Command(("tsglab.api", "build_report"), lambda a: ([a.run], report_options(a)), _report_text),
    "ablation": Command(("tsglab.report", "build_ablation"), lambda a: ([a.runs], {"write_to": a.runs[0]}),
                        _markdown("Ablations")),
    "import-legacy": Command(("tsglab.legacy", "import_legacy"),
                             lambda a: ([a.dir], {"runs_dir": a.runs_dir, "strict": not a.allow_mismatch,
                                                  "overwrite": a.force}), _legacy_text),
    "compare": Command(("tsglab.api", "compare"), lambda a: ([a.file], compare_options(a)),
                       lambda result, a: str(result)),
    "sweep": Command(("tsglab.cli", "_sweep"), lambda a: ([a.file, a.dir], sweep_options(a)),
                     lambda result, a: str(result), exit_status=lambda result: int(
                         "failed" in getattr(result, "statuses", {}).values())),
    "frontier": Command(("tsglab.cli", "_frontier"), lambda a: ([a.target, a.spec], frontier_options(a)),
                        lambda result, a: repr(result) if a.target != "collect" else
                        f"replay data: {result.n_prompts} prompts x {len(result.ladder)} tiers, coverage "
                        f"{result.coverage()} in {a.out}"),
    "models": Command(("tsglab.cli", "_models"), lambda a: ([a.action], {}),
                      lambda listing, a: "\n".join(f"{name}: {what}" for name, what in listing.items())),
}
"""The dispatch table of the command line and of ``%tsg``: one entry per subcommand of :func:`build_parser`."""


def call(args: argparse.Namespace) -> Any:
    """Call the function of a parsed command with the arguments its flags ask for; returns its result."""
    command = COMMANDS[args.command]
    positional, keywords = command.arguments(args)
    return command.function()(*positional, **keywords)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        result = call(args)
        print(command.text(result, args))
    except TsglabError as exc:
        print(f"tsglab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # a run says which directory is incomplete and how to resume it (RunInterrupted); SIGTERM (which the
        # runner turns into KeyboardInterrupt) exits as a terminated process would, 128 + 15
        if isinstance(exc, RunInterrupted):
            print(f"\n{exc}", file=sys.stderr)
            return 143 if exc.terminated else 130
        return 143 if str(exc) == "SIGTERM" else 130
    return command.exit_status(result)


if __name__ == "__main__":
    raise SystemExit(main())
