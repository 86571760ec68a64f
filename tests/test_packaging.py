"""Packaging: lean core dependencies, optional extras, one version, and a wheel without test helpers.

- library metadata has lower bounds only (the tested versions are pinned in constraints.txt);
- the version is declared once, in tsglab/_version.py;
- the core dependencies are enough: every module of tsglab that no extra owns imports (at module level)
  only the standard library and what a core dependency provides;
- a module an extra owns imports at module level only what the core and that extra provide;
- the wheel ships no stub server, no suite generator, and builds without setuptools deprecations.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import tsglab

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - CI runs 3.11
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "tsglab"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]
EXTRAS: dict[str, list[str]] = PROJECT.get("optional-dependencies", {})

# Modules that exist for one extra. `import tsglab` and the core-only check leave them out (unless a core
# module imports them, which then must work without the extra); each may import its extra at module level.
EXTRA_MODULES = {
    "tsglab.jupyter": "jupyter",  # %tsg magics: IPython
    "tsglab.backends.embedded": "embedded",  # llama_cpp in-process
    "tsglab.backends.ollama_api": "ollama",  # the ollama client, pydantic
    "tsglab.energy._nvml": "nvml",  # pynvml
    "tsglab.servers.launch": "server",  # llama_cpp.server and ollama_proxy, started as processes
}

# version specifiers that cap a dependency from above
CAPPING_OPERATORS = {"<", "<=", "==", "===", "~="}


def all_requirements() -> list[tuple[str, Requirement]]:
    """(where, requirement) for the core list and every extra."""
    listed = [("[project] dependencies", Requirement(r)) for r in PROJECT["dependencies"]]
    for extra, requirements in EXTRAS.items():
        listed += [(f"[project.optional-dependencies] {extra}", Requirement(r)) for r in requirements]
    return listed


def distributions_of(extra: str | None) -> set[str]:
    """Canonical names of the distributions the core (extra=None) or an extra adds, following tsglab[...]."""
    if extra is None:
        return {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    names: set[str] = set()
    for line in EXTRAS[extra]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "tsglab":
            for inner in requirement.extras:
                names |= distributions_of(inner)
        else:
            names.add(canonicalize_name(requirement.name))
    return names


def modules_provided_by(distributions: set[str]) -> set[str]:
    """Top-level import names that the given installed distributions provide."""
    return {module for module, dists in metadata.packages_distributions().items()
            if any(canonicalize_name(d) in distributions for d in dists)}


def allowed_for(extra: str | None) -> set[str]:
    allowed = set(sys.stdlib_module_names) | {"tsglab"} | modules_provided_by(distributions_of(None))
    return allowed if extra is None else allowed | modules_provided_by(distributions_of(extra))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> list[str]:
    """Every module of tsglab on disk (namespace folders included, which pkgutil would skip)."""
    names = {module_name(path) for path in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in path.parts}
    names.discard("tsglab.__main__")  # running it is the command line, not an import
    return sorted(names)


def owning_extra(name: str) -> str | None:
    for prefix, extra in EXTRA_MODULES.items():
        if name == prefix or name.startswith(prefix + "."):
            return extra
    return None


# Runs in a fresh interpreter: every import made *by a module of the given package* must name an allowed
# top-level module, whether it is loaded now or already in sys.modules (pandas loads dateutil; a tsglab
# module importing dateutil itself is still refused). Imports inside functions run only when called, so
# importing each module checks exactly its module-level imports.
GUARD = textwrap.dedent("""
    import builtins, importlib, json, sys, traceback
    package, allowed, modules = sys.argv[1], set(json.loads(sys.argv[2])), json.loads(sys.argv[3])

    def from_package(name):
        return name == package or name.startswith(package + ".")

    def check(importer, name):
        top = name.partition(".")[0]
        if from_package(importer) and top not in allowed:
            raise ImportError(f"{importer} imports {name!r}: neither the standard library nor a dependency "
                              f"allowed here provides {top!r}")

    real_import, real_import_module = builtins.__import__, importlib.import_module

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            check((globals or {}).get("__name__", ""), name)
        return real_import(name, globals, locals, fromlist, level)

    def guarded_import_module(name, package_arg=None):
        if not name.startswith("."):
            check(sys._getframe(1).f_globals.get("__name__", ""), name)
        return real_import_module(name, package_arg)

    builtins.__import__, importlib.import_module = guarded_import, guarded_import_module
    failures = {}
    for module in modules:
        try:
            importlib.import_module(module)
        except BaseException as exc:
            failures[module] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    print(json.dumps(failures))
""")


def import_under_guard(package: str, allowed: set[str], modules: list[str], *, path: Path | None = None) -> dict:
    env = None if path is None else {**os.environ, "PYTHONPATH": str(path)}
    proc = subprocess.run([sys.executable, "-c", GUARD, package, json.dumps(sorted(allowed)), json.dumps(modules)],
                          capture_output=True, text=True, timeout=300, env=env, cwd=path or ROOT)
    assert proc.returncode == 0, f"the import guard crashed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---- (a) no upper caps in library metadata; constraints.txt pins them all


def test_library_metadata_has_no_upper_caps():
    capped = [f"{where}: {str(req)!r} ({spec.operator})" for where, req in all_requirements()
              for spec in req.specifier if spec.operator in CAPPING_OPERATORS]
    assert not capped, (
        "pyproject.toml caps dependencies from above, which stops users' resolvers from taking fixes: "
        f"{capped}. Keep a lower bound (>=) there and pin the tested version in constraints.txt.")


def test_self_referencing_extras_exist():
    for where, requirement in all_requirements():
        if canonicalize_name(requirement.name) == "tsglab":
            unknown = requirement.extras - set(EXTRAS)
            assert not unknown, f"pyproject.toml {where}: {str(requirement)!r} names unknown extras {unknown}"


def test_constraints_pin_every_dependency_within_its_bounds():
    pins = {}
    for number, line in enumerate((ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            specs = [spec.operator for spec in requirement.specifier]
            assert specs == ["=="], (f"constraints.txt line {number}: {line!r} is not an exact pin; write "
                                     f"name==version (tools/ci/freeze_constraints.py writes the file)")
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    for where, requirement in all_requirements():
        name = canonicalize_name(requirement.name)
        if name == "tsglab":
            continue
        assert name in pins, (f"{where}: {requirement.name} is not pinned in constraints.txt; install it and run "
                              f".venv/bin/python tools/ci/freeze_constraints.py")
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {where} {str(requirement)!r}")


# ---- (b) one source for the version


def test_version_is_declared_once():
    assert "version" not in PROJECT, "pyproject.toml: [project] sets `version`; tsglab/_version.py is the source"
    assert "version" in PROJECT.get("dynamic", []), "pyproject.toml: list `version` in [project] `dynamic`"
    attr = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "tsglab._version.__version__"
    assert metadata.version("tsglab") == tsglab.__version__, (
        f"installed metadata says {metadata.version('tsglab')}, tsglab.__version__ is {tsglab.__version__}: "
        f"reinstall (make setup)")
    assigning = sorted(str(path.relative_to(ROOT)) for path in PACKAGE_DIR.rglob("*.py")
                       if any(isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__"
                                                                   for t in node.targets)
                              for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))))
    assert assigning == ["tsglab/_version.py"], f"__version__ is assigned in {assigning}; only _version.py may"


# ---- (c) the core dependencies are enough for every module no extra owns


def test_extra_module_list_is_current():
    modules = set(package_modules())
    for prefix, extra in EXTRA_MODULES.items():
        assert prefix in modules, f"EXTRA_MODULES names {prefix}, which no longer exists: update the list"
        assert extra in EXTRAS, f"EXTRA_MODULES says {prefix} belongs to extra {extra!r}, not in pyproject.toml"


def test_core_dependencies_suffice_for_every_module_outside_the_extras():
    core_modules = [name for name in package_modules() if owning_extra(name) is None]
    failures = import_under_guard("tsglab", allowed_for(None), core_modules)
    by_error: dict[str, list[str]] = {}
    for module, error in failures.items():  # one bad import fails every module above it: group them
        by_error.setdefault(error, []).append(module)
    assert not failures, (
        "with only the standard library and the core dependencies "
        f"({sorted(distributions_of(None))}), modules fail to import:\n"
        + "\n".join(f"  {error}\n    (importing {', '.join(modules)})" for error, modules in by_error.items())
        + "\nImport optional libraries inside the function that needs them, or add the module to an extra "
          "(EXTRA_MODULES here) or the library to [project] dependencies.")


def test_the_import_guard_refuses_a_module_level_import_outside_the_core(tmp_path):
    # the check above is only as good as its guard: a probe package with the mistakes it must catch
    probe = tmp_path / "probe_pkg"
    probe.mkdir()
    (probe / "__init__.py").write_text("")
    (probe / "bad.py").write_text("import numpy\nimport statsmodels.api\n")
    (probe / "cached.py").write_text("import dateutil  # already loaded by pandas, still not a core dependency\n")
    (probe / "good.py").write_text("import json\nimport numpy as np\nfrom scipy import stats\n")
    (probe / "lazy.py").write_text("def fit():\n    import statsmodels.api\n")
    (probe / "dynamic.py").write_text("import importlib\nimportlib.import_module('lifelines')\n")
    modules = ["pandas", "probe_pkg.bad", "probe_pkg.cached", "probe_pkg.good", "probe_pkg.lazy", "probe_pkg.dynamic"]
    failures = import_under_guard("probe_pkg", allowed_for(None), modules, path=tmp_path)
    assert set(failures) == {"probe_pkg.bad", "probe_pkg.cached", "probe_pkg.dynamic"}, failures
    assert "'statsmodels.api'" in failures["probe_pkg.bad"]
    assert "'dateutil'" in failures["probe_pkg.cached"]


# ---- (d) an extra's modules need nothing beyond the core and that extra


def module_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of the imports that run when the module is imported."""
    found: list[tuple[int, str]] = []

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import):
                found.extend((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.append((node.lineno, node.module))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue  # runs when called
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)  # the body is for type checkers only
            else:  # if/try/with/class bodies run at import
                for field in ("body", "orelse", "finalbody", "handlers"):
                    inner = getattr(node, field, None)
                    if isinstance(inner, list):
                        visit([n for n in inner if isinstance(n, ast.stmt)] +
                              [s for h in inner if isinstance(h, ast.ExceptHandler) for s in h.body])

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return found


@pytest.mark.parametrize(("prefix", "extra"), sorted(EXTRA_MODULES.items()))
def test_an_extras_modules_import_only_the_core_and_that_extra(prefix, extra):
    base = PACKAGE_DIR.parent / prefix.replace(".", "/")
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    allowed = allowed_for(extra)
    outside = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in files
               for line, name in module_level_imports(path) if name.partition(".")[0] not in allowed]
    assert not outside, (f"modules of extra {extra!r} import at module level what neither the core nor "
                         f"tsglab[{extra}] ({sorted(distributions_of(extra))}) provides: {outside}")


# ---- the wheel


def test_wheel_builds_cleanly_without_test_helpers(tmp_path):
    # build from a copy: a build writes build/ and egg-info next to the sources, and others share this tree
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(PACKAGE_DIR, source / "tsglab", ignore=shutil.ignore_patterns("__pycache__", "*.nb[ci]"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(tmp_path / "dist"),
                           str(source)], capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"pip wheel failed:\n{output[-6000:]}"
    deprecations = [line for line in output.splitlines() if "DeprecationWarning" in line or "deprecated" in line]
    assert not deprecations, f"the build warns of deprecations: {deprecations}"
    (wheel,) = (tmp_path / "dist").glob("tsglab-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        meta = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    # every data file in the package (the bundled suite, committed JSON Schemas) needs a package-data glob
    data_files = sorted(str(path.relative_to(ROOT)) for path in PACKAGE_DIR.rglob("*")
                        if path.is_file() and path.suffix not in {".py", ".pyc", ".nbi", ".nbc"}
                        and "__pycache__" not in path.parts)
    assert "tsglab/suite/data/bundled.jsonl" in data_files
    missing = [name for name in data_files if name not in names]
    assert not missing, f"the wheel lacks {missing}: add a glob to [tool.setuptools.package-data] in pyproject.toml"
    shipped_helpers = [n for n in names if n.endswith(("servers/stub.py", "_generate.py")) or n.startswith("tests/")]
    assert not shipped_helpers, f"the wheel ships test/tool helpers: {shipped_helpers}"
    assert f"Version: {tsglab.__version__}\n" in meta
    assert "License-Expression: Apache-2.0\n" in meta
