"""Where relative paths point: the project root, not the process's working directory.

A notebook's kernel starts in the notebook's folder (``notebooks/``) when JupyterLab opens it, and in
whatever folder papermill is told; the command line runs wherever the shell is. A path such as
``experiments/quickstart.yaml`` must mean the same file in all three, so the notebooks resolve every
relative path they are given against one root:

1. the directory named by the environment variable ``TSGLAB_PROJECT_ROOT``, when it is set;
2. otherwise the nearest directory at or above the working directory that holds an ``experiments/``
   folder and a ``pyproject.toml`` naming the ``tsglab`` project (a checkout of this repository).

Absolute paths (and ``~``) pass through unchanged and need no root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tsglab.errors import InvalidArgument

__all__ = ["PROJECT_ROOT_ENV", "project_root", "resolve_path"]

PROJECT_ROOT_ENV = "TSGLAB_PROJECT_ROOT"

# the [project] table's name line; a checkout of another project with an experiments/ folder is not ours
_PROJECT_NAME = re.compile(r'^name\s*=\s*["\']tsglab["\']\s*$', re.MULTILINE)


def _is_project_root(folder: Path) -> bool:
    pyproject = folder / "pyproject.toml"
    if not (folder / "experiments").is_dir() or not pyproject.is_file():
        return False
    try:
        return _PROJECT_NAME.search(pyproject.read_text(encoding="utf-8")) is not None
    except (OSError, UnicodeDecodeError):
        return False


def project_root() -> Path:
    """The directory relative paths are read from (the rule is in the module docstring).

    Raises :class:`~tsglab.errors.InvalidArgument` with the fix when ``TSGLAB_PROJECT_ROOT`` names no
    directory, or when no tsglab checkout encloses the working directory.
    """
    configured = os.environ.get(PROJECT_ROOT_ENV, "")
    if configured:
        root = Path(configured).expanduser()
        if not root.is_dir():
            raise InvalidArgument(f"{PROJECT_ROOT_ENV}={configured!r} is not a directory; set it to the tsglab "
                                  "checkout (the folder holding experiments/ and pyproject.toml) or unset it.")
        return root.resolve()
    start = Path.cwd().resolve()
    for folder in (start, *start.parents):
        if _is_project_root(folder):
            return folder
    raise InvalidArgument(f"no tsglab project root at or above {start} (a folder holding experiments/ and the "
                          f"tsglab pyproject.toml); work inside the checkout or set {PROJECT_ROOT_ENV}=/path/to/it.")


def resolve_path(path: str | os.PathLike) -> Path:
    """``path`` as an absolute path: absolute paths and ``~`` unchanged, relative ones under
    :func:`project_root`. The file need not exist."""
    candidate = Path(path).expanduser()
    if candidate.is_absolute():
        return candidate
    return project_root() / candidate
