"""``tsglab`` on the command line: run an experiment, report on runs, install models."""

from __future__ import annotations

import argparse
import sys

from tsglab.errors import SpecError, TsglabError


def report_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :func:`tsglab.api.build_report` that a parsed ``report`` command asks for
    (one mapping for the command line and the ``%tsg`` magic, so both honour every option)."""
    from tsglab.report import ProtocolSettings

    settings = ProtocolSettings(strata=tuple(s.strip() for s in args.strata.split(",") if s.strip()),
                                n_resamples=args.resamples, co_correction=not args.no_co,
                                equivalence=args.equivalence)
    return {"vs": args.vs, "baseline_arm": args.baseline, "gateway_arm": args.gateway, "settings": settings,
            "allow_suite_change": args.allow_suite_change, "write": not args.no_write}


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

    models = sub.add_parser("models", help="embedded models")
    models.add_argument("action", choices=["install", "list"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from tsglab import api

    try:
        if args.command == "run":
            result = api.run(args.spec, runs_dir=args.runs_dir, run_id=args.run_id, resume=args.resume,
                             overrides={**parse_overrides(args.overrides),
                                        **({"preflight": False} if args.no_preflight else {})},
                             progress=not args.quiet)
            print(f"run {result.run_id}: {result.status}, {result.n_events}/{result.n_planned} requests "
                  f"in {result.run_dir}{_under_delivery(result.run_dir)}")
            if not args.no_report:
                print(api.build_report(result.run_dir))
        elif args.command == "report":
            report = api.build_report(args.run, **report_options(args))
            print(report)
            if args.no_write:
                print("Not written (--no-write): no file was created or changed.")
        elif args.command == "import-legacy":
            from tsglab.legacy import import_legacy

            imported = import_legacy(args.dir, runs_dir=args.runs_dir, strict=not args.allow_mismatch,
                                     overwrite=args.force)
            for legacy_run in imported:
                print(f"run {legacy_run.run_id}: arms {', '.join(legacy_run.arms)} "
                      f"({sum(legacy_run.n_events.values())} events) in {legacy_run.run_dir}")
            for legacy_run in imported:
                print(f"\n{legacy_run}")
        elif args.command == "ablation":
            from tsglab.report import build_ablation
            from tsglab.report.render import to_markdown

            table = build_ablation(args.runs, write_to=args.runs[0])
            print(to_markdown(table, title="Ablations"))
        elif args.command == "compare":
            from tsglab.report.render import to_markdown

            table = api.compare(args.file, runs_dir=args.runs_dir, comparison_id=args.comparison_id,
                                   overrides=parse_overrides(args.overrides), variants=args.variants,
                                   progress=not args.quiet)
            print(to_markdown(table, title="Framework comparison"))
        elif args.command == "models":
            from tsglab.backends.models import MODELS, install_models, resolve_model

            if args.action == "install":
                for name, path in install_models().items():
                    print(f"{name}: {path}")
            else:
                for name, info in MODELS.items():
                    try:
                        where = str(resolve_model(name))
                    except TsglabError as exc:
                        where = f"not installed — {exc}"
                    print(f"{name}: {info.description}\n    {where}")
    except TsglabError as exc:
        print(f"tsglab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        # the runner has said which run is incomplete and how to resume it; SIGTERM (which the runner turns into
        # KeyboardInterrupt("SIGTERM")) exits as a terminated process would, 128 + 15
        return 143 if str(exc) == "SIGTERM" else 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
