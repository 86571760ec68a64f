"""Write constraints.txt: the exact versions CI tests, for everything tsglab and its extras pull in.

Run it in the set-up virtual environment after changing dependencies (``.venv/bin/python
tools/ci/freeze_constraints.py``). It reads the installed versions from ``pip freeze`` and keeps the
distributions reachable from tsglab's own requirements (core and every extra), following each
installed distribution's requirements with their environment markers evaluated here. What else the
venv holds (the model packages, which the Makefile pins itself; tools installed by hand) is left out.

pip has no command for "the dependency closure of what is installed" (pip-compile would resolve afresh
from the index, which is not what CI tested), hence this short walk over installed metadata.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
HEADER = """\
# Versions CI tests (Python {python}), for tsglab's dependencies and all its extras, transitive ones
# included. `make setup` installs with `-c constraints.txt`; library metadata in pyproject.toml keeps
# lower bounds only. Regenerate after a dependency change: .venv/bin/python tools/ci/freeze_constraints.py
"""


def _requirements(dist_name: str, extras: set[str]) -> list[Requirement]:
    """Requirements of an installed distribution that apply here with the given extras."""
    wanted = []
    for line in metadata.requires(dist_name) or []:
        requirement = Requirement(line)
        if requirement.marker is None:
            wanted.append(requirement)
            continue
        # a requirement applies if its marker holds for no extra (core) or for one of the requested extras
        environments = [{**default_environment(), "extra": extra} for extra in sorted(extras) or [""]]
        if any(requirement.marker.evaluate(env) for env in environments):
            wanted.append(requirement)
    return wanted


def dependency_closure(root: str = "tsglab") -> set[str]:
    """Canonical names of every installed distribution that ``root[all extras]`` needs."""
    all_extras = set(metadata.metadata(root).get_all("Provides-Extra") or [])
    seen: set[str] = set()
    pending: list[tuple[str, set[str]]] = [(root, all_extras)]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), frozenset(extras))
        if key in expanded:
            continue
        expanded.add(key)
        try:
            requirements = _requirements(name, extras)
        except metadata.PackageNotFoundError:
            sys.exit(f"{name} is required (via tsglab's extras) but not installed here: run `make setup` first.")
        for requirement in requirements:
            seen.add(canonicalize_name(requirement.name))
            pending.append((requirement.name, set(requirement.extras)))
    seen.discard(canonicalize_name(root))
    return seen


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=ROOT / "constraints.txt")
    args = parser.parse_args(argv)
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    needed = dependency_closure()
    pins = {}
    for line in frozen:
        name, sep, version = line.partition("==")
        if sep and canonicalize_name(name) in needed:
            pins[canonicalize_name(name)] = f"{canonicalize_name(name)}=={version.strip()}"
    missing = sorted(needed - set(pins))
    if missing:
        sys.exit(f"pip freeze has no exact version for {missing} (installed from a URL or a path?); "
                 f"install them from the package index, then run this again.")
    python = ".".join(map(str, sys.version_info[:2]))
    args.output.write_text(HEADER.format(python=python) + "\n".join(pins[name] for name in sorted(pins)) + "\n",
                           encoding="utf-8")
    print(f"{args.output}: {len(pins)} pins")


if __name__ == "__main__":
    main()
