"""Layering rules that import-linter (make test, stage 3) cannot express: imports of private *names*.

import-linter sees modules; ``from tsglab.cli import _parse_set`` imports a public module and a private
name. Every module of tsglab may import ``_``-prefixed names only from its own package (the first level
below ``tsglab``); dunders such as ``__version__`` are public.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tsglab

ROOT = Path(tsglab.__file__).parent


def _package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _private_name_imports(source: str, module: str) -> list[str]:
    """``module.name`` of every ``_``-prefixed name ``source`` imports from another tsglab package."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ImportFrom) or not node.module or not node.module.startswith("tsglab"):
            continue
        if _package_of(node.module) == _package_of(module):
            continue
        found += [f"{node.lineno}: {node.module}.{alias.name}" for alias in node.names
                  if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        yield path, ".".join(parts)


def test_no_module_imports_a_private_name_of_another_package():
    offenders = {module: hits for path, module in _modules()
                 if (hits := _private_name_imports(path.read_text(encoding="utf-8"), module))}
    assert offenders == {}


def test_the_check_finds_a_private_name_import_and_allows_its_own_package():
    source = ("from tsglab.cli import _parse_set\nfrom tsglab.report.frame import events_frame\n"
              "from tsglab.report.tables import _quietly\nfrom tsglab._version import __version__\n")
    assert _private_name_imports(source, "tsglab.report.run_report") == ["1: tsglab.cli._parse_set"]
    assert _private_name_imports(source, "tsglab.jupyter.magics") == ["1: tsglab.cli._parse_set",
                                                                       "3: tsglab.report.tables._quietly"]


@pytest.mark.parametrize("package", ["backends", "config", "events", "load", "policy", "report", "stats", "suite"])
def test_every_package_has_an_init_with_its_public_names(package):
    init = ROOT / package / "__init__.py"
    assert init.is_file()
    module = __import__(f"tsglab.{package}", fromlist=["__all__"])
    assert list(module.__all__) == sorted(module.__all__, key=str)
    for name in module.__all__:
        assert hasattr(module, name), f"tsglab.{package}.__all__ names {name!r}, which it does not define"
