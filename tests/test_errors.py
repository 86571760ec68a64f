"""One exception tree (tsglab.errors) and one field vocabulary for the result objects of tsglab.stats."""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import inspect
import pkgutil
import warnings
from pathlib import Path

import numpy as np
import pytest

import tsglab
import tsglab.errors
import tsglab.stats
from tsglab.errors import InvalidArgument, InvalidArgumentType, TsglabError, TsglabWarning

PACKAGE_DIR = Path(tsglab.__file__).parent
ERRORS_FILE = PACKAGE_DIR / "errors.py"
STATS_DIR = PACKAGE_DIR / "stats"
# A class whose base is named like this is an exception or a warning even when the base cannot be resolved
# (a third-party import that is not installed here): the heuristic errs towards flagging.
EXCEPTION_SUFFIXES = ("Error", "Exception", "Warning")


def _error_classes() -> list[type]:
    return [obj for obj in vars(tsglab.errors).values()
            if inspect.isclass(obj) and obj.__module__ == tsglab.errors.__name__]


def test_every_class_in_errors_derives_from_the_tsglab_roots():
    classes = _error_classes()
    assert len(classes) >= 20, [c.__name__ for c in classes]  # the tree, not an empty module
    # RunInterrupted is a KeyboardInterrupt on purpose: `except Exception` (and `except TsglabError`) must not
    # swallow a Ctrl-C; it is the one root outside TsglabError/TsglabWarning
    roots = (TsglabError, TsglabWarning, tsglab.errors.RunInterrupted)
    strays = [c.__name__ for c in classes if not issubclass(c, roots)]
    assert strays == [], f"classes in tsglab.errors outside TsglabError/TsglabWarning: {strays}"
    assert issubclass(tsglab.errors.RunInterrupted, KeyboardInterrupt)
    assert not issubclass(tsglab.errors.RunInterrupted, Exception)
    assert issubclass(TsglabError, Exception)
    assert issubclass(TsglabWarning, UserWarning)


@pytest.mark.parametrize("name", ["ServerStartError", "LegacyFormatError", "LegacyMismatchError", "EnergyError",
                                  "MeterUnavailable", "InvalidArgument", "InvalidArgumentType"])
def test_moved_and_new_classes_live_in_errors(name):
    cls = getattr(tsglab.errors, name)
    assert cls.__module__ == "tsglab.errors"
    assert issubclass(cls, TsglabError)


def test_old_import_paths_still_give_the_same_classes():
    from tsglab.energy._errors import EnergyError, MeterUnavailable
    from tsglab.legacy import LegacyFormatError as PackageLegacyFormatError
    from tsglab.legacy._reader import LegacyFormatError, LegacyMismatchError
    from tsglab.servers.launch import ServerStartError

    assert PackageLegacyFormatError is LegacyFormatError is tsglab.errors.LegacyFormatError
    assert LegacyMismatchError is tsglab.errors.LegacyMismatchError
    assert ServerStartError is tsglab.errors.ServerStartError
    assert EnergyError is tsglab.errors.EnergyError
    assert MeterUnavailable is tsglab.errors.MeterUnavailable


def test_invalid_argument_is_caught_as_value_error_and_its_type_twin_as_type_error():
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(InvalidArgument, TsglabError)
    assert issubclass(InvalidArgumentType, TypeError)
    assert issubclass(InvalidArgumentType, InvalidArgument)


# -- no exception class outside errors.py -------------------------------------------------------


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name → dotted path it was imported from (``from a.b import C as D`` gives D → a.b.C).

    tsglab uses absolute imports only; a relative one is left out and its names fall back to the
    suffix heuristic."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:  # import a.b as c: c is a.b
                    names[alias.asname] = alias.name
                else:  # import a.b: the local name is a
                    head = alias.name.split(".")[0]
                    names[head] = head
    return names


def _resolve(dotted: str) -> object | None:
    """The object at a dotted path, importing the longest importable module prefix; None if unknown."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _is_exception_base(base: ast.expr, imported: dict[str, str], local_exceptions: set[str]) -> bool:
    text = ast.unparse(base)
    head, _, rest = text.partition(".")
    if not rest and head in local_exceptions:
        return True
    if not rest and isinstance(getattr(builtins, head, None), type):
        return issubclass(getattr(builtins, head), BaseException)
    dotted = f"{imported[head]}.{rest}".rstrip(".") if head in imported else None
    resolved = _resolve(dotted) if dotted else None
    if isinstance(resolved, type):
        return issubclass(resolved, BaseException)
    return text.rsplit(".", 1)[-1].endswith(EXCEPTION_SUFFIXES)


def _exception_classes_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported = _imported_names(tree)
    found: list[str] = []
    local: set[str] = set()
    # ast.walk is breadth-first, so a local base class defined earlier at module level is seen first
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(_is_exception_base(b, imported, local) for b in node.bases):
            local.add(node.name)
            found.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno} {node.name}")
    return found


def test_the_ast_check_finds_exception_classes():
    # the detector itself must be able to fail: it flags a builtin, a tsglab and a local-derived base
    source = ("from tsglab.errors import TsglabError as Base\nclass A(ValueError): pass\nclass B(Base): pass\n"
              "class C(B): pass\nclass D(object): pass\nclass E(Protocol): pass\n")
    tree = ast.parse(source)
    imported = _imported_names(tree)
    local: set[str] = set()
    flagged = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(_is_exception_base(b, imported, local) for b in node.bases):
            local.add(node.name)
            flagged.append(node.name)
    assert flagged == ["A", "B", "C"]


def test_no_exception_or_warning_class_outside_errors_py():
    offenders = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if path != ERRORS_FILE:
            offenders += _exception_classes_in(path)
    assert offenders == [], f"define these in tsglab/errors.py and import them where they were: {offenders}"


# -- no bare ValueError / TypeError in tsglab.stats -----------------------------------------------


def _bare_raises(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(target, ast.Name) and target.id in ("ValueError", "TypeError"):
                hits.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno} raise {target.id}")
    return hits


def test_stats_raises_no_bare_value_or_type_error():
    files = sorted(STATS_DIR.rglob("*.py"))
    assert len(files) > 5
    hits = [hit for path in files for hit in _bare_raises(path)]
    assert hits == [], f"raise InvalidArgument (or InvalidArgumentType) from tsglab.errors instead: {hits}"


RNG = np.random.default_rng(20261201)
SERIES = RNG.exponential(100.0, size=60)
PAIRED = RNG.uniform(0.0, 1.0, size=40)

BAD_CALLS = [
    (lambda: tsglab.stats.harrell_davis(SERIES, 1.5), r"`q` must lie strictly between 0 and 1; got 1\.5"),
    (lambda: tsglab.stats.sample_quantile([1.0, np.nan], 0.5), r"`x` contains 1 NaN"),
    (lambda: tsglab.stats.bootstrap_quantile_ci(SERIES, method="auto"), r"`method` must be one of .*got 'auto'"),
    (lambda: tsglab.stats.bootstrap_quantile_ci(SERIES, confidence=95), r"`confidence` must lie strictly .*got 95"),
    (lambda: tsglab.stats.km_quantile([1.0, 2.0], [True]), r"`time` and `censored` must have the same length"),
    (lambda: tsglab.stats.slo_cap_quantile(SERIES, SERIES > 150, cap_ms=0), r"`cap_ms` must be a finite positive"),
    (lambda: tsglab.stats.paired_noninferiority(PAIRED, PAIRED[:10], margin=0.1), r"`gateway` and `baseline` must"),
    (lambda: tsglab.stats.paired_tost(PAIRED, PAIRED, low=0.1, high=-0.1), r"`low` must be below `high`"),
    (lambda: tsglab.stats.benjamini_hochberg([0.2, 3.0]), r"`p_values` must lie in \[0, 1\].*got 3\.0"),
    (lambda: tsglab.stats.binomial_gate(5, 3), r"`failures` must be <= `n`; got failures=5, n=3"),
    (lambda: tsglab.stats.quality_noninferiority(PAIRED, PAIRED, alpha=0.7), r"`alpha` must be in \(0, 0\.5\)"),
    (lambda: tsglab.stats.quantile_ci(SERIES, confidence=1.0), r"`confidence` must be in \(0, 1\); got 1\.0"),
    (lambda: tsglab.stats.serial_correlation_check(SERIES, lags=0), r"`lags` must be an integer in"),
    (lambda: tsglab.stats.backfill_co(SERIES, period_ms=-1.0), r"`period_ms` must be a finite number > 0"),
    (lambda: tsglab.stats.co_latency_ms([1.5], [2.5]), r"`intended_ns` must hold integer monotonic nanoseconds"),
    (lambda: tsglab.stats.ResamplePlan(10, method="bootstrap"), r"`method` must be one of .*got 'bootstrap'"),
    (lambda: tsglab.stats.TDigest(compression=1.0), r"`compression` must be a finite number"),
    (lambda: tsglab.stats.sample_size_paired(1.0, margin=-0.1), r"`margin` must be >= 0; got -0\.1"),
]


@pytest.mark.parametrize(("call", "match"), BAD_CALLS)
def test_bad_arguments_raise_invalid_argument_that_is_a_value_error(call, match):
    with pytest.raises(InvalidArgument, match=match) as info:
        call()
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TsglabError)


def test_wrong_argument_types_raise_invalid_argument_type_that_is_a_type_error():
    with pytest.raises(TypeError, match=r"`other` must be a TDigest; got dict") as info:
        tsglab.stats.TDigest().merge({})
    assert isinstance(info.value, InvalidArgumentType)
    with pytest.raises(InvalidArgument, match=r"`state` must be a dict"):
        tsglab.stats.TDigest.from_dict([1, 2])


# -- one field vocabulary ------------------------------------------------------------------------


def _stats_dataclasses() -> dict[str, type]:
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(tsglab.stats.__path__, prefix="tsglab.stats."):
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__:
                found[obj.__name__] = obj
    return found


def test_no_result_field_is_spelled_pvalue():
    classes = _stats_dataclasses()
    assert len(classes) >= 15
    bad = [f"{name}.{f.name}" for name, cls in classes.items() for f in dataclasses.fields(cls)
           if f.name.replace("_", "") in ("pvalue", "pval") and f.name != "p_value"]
    assert bad == [], f"rename to `p_value`: {bad}"


def test_confidence_fields_are_interval_coverages_and_alpha_fields_test_levels():
    for name, cls in _stats_dataclasses().items():
        fields = {f.name for f in dataclasses.fields(cls)}
        if "confidence" in fields:  # the coverage of an interval the object carries
            assert {"ci_low", "ci_high"} <= fields, name
        if "alpha" in fields:  # the level of a test whose outcome the object carries
            assert fields & {"p_value", "passed", "significant", "method", "decision"}, name


_SERIES = np.random.default_rng(7).exponential(100.0, size=150)
_CENSORED = _SERIES > 250
_G = np.random.default_rng(8).uniform(0.0, 1.0, size=60)
_B = np.random.default_rng(9).uniform(0.0, 1.0, size=60)

RESULT_FACTORIES = {
    "BlockLength": lambda: tsglab.stats.optimal_block_length(_SERIES),
    "SerialCorrelation": lambda: tsglab.stats.serial_correlation_check(_SERIES),
    "BootstrapCI": lambda: tsglab.stats.bootstrap_quantile_ci(_SERIES, n_resamples=200),
    "BootstrapChoice": lambda: tsglab.stats.choose_bootstrap(_SERIES),
    "KaplanMeierCurve": lambda: tsglab.stats.kaplan_meier(_SERIES, _CENSORED),
    "KMQuantile": lambda: tsglab.stats.km_quantile(_SERIES, _CENSORED),
    "SLOCapQuantile": lambda: tsglab.stats.slo_cap_quantile(_SERIES, _CENSORED, cap_ms=250.0),
    "CensoringSummary": lambda: tsglab.stats.censoring_summary(_SERIES, _CENSORED, cap_ms=250.0),
    "NonInferiority": lambda: tsglab.stats.paired_noninferiority(_G, _B, margin=0.1, n_resamples=200),
    "Equivalence": lambda: tsglab.stats.paired_tost(_G, _B, low=-0.1, high=0.1, n_resamples=200),
    "MultipleTestResult": lambda: tsglab.stats.benjamini_hochberg([0.01, 0.2, np.nan]),
    "BinomialGate": lambda: tsglab.stats.binomial_gate(1, 500),
    "BinomialCI": lambda: tsglab.stats.clopper_pearson(3, 40),
    "BinomialLimits": lambda: tsglab.stats.clopper_pearson_limits([0, 3], [10, 40]),
    "QualityTest": lambda: tsglab.stats.quality_noninferiority(_G, _B, margin=0.1),
    "QuantileCI": lambda: tsglab.stats.quantile_ci(_SERIES, n_resamples=200),
    "QuantileRatioTest": lambda: tsglab.stats.quantile_ratio_test(_SERIES[:120], _SERIES[30:], n_resamples=200),
}
# Fields left out of to_frame() on purpose: the B resampled estimates are not a summary value.
FRAME_EXCLUDED = {"BootstrapCI": {"draws"}}


def test_every_result_with_to_frame_has_a_factory_here():
    with_frame = {name for name, cls in _stats_dataclasses().items() if hasattr(cls, "to_frame")}
    assert with_frame == set(RESULT_FACTORIES), "add the new result class to RESULT_FACTORIES"


@pytest.mark.parametrize("name", sorted(RESULT_FACTORIES))
def test_to_frame_columns_are_the_field_names(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TsglabWarning)
        result = RESULT_FACTORIES[name]()
    assert type(result).__name__ == name
    fields = [f.name for f in dataclasses.fields(result) if f.name not in FRAME_EXCLUDED.get(name, set())]
    columns = list(result.to_frame().columns)
    assert sorted(columns) == sorted(fields), f"{name}: columns {columns} vs fields {fields}"
