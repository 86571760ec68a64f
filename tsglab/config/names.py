"""Names that become file or directory names: run ids, spec names, comparison names and variant names.

A name is one path component under the runs dir, never a path: it must not contain ``/``, ``\\``, ``..`` or
a control character, must start with a letter or a digit (no hidden ``.name``, no ``-name`` read as an
option), and is at most :data:`MAX_NAME_LENGTH` characters (a run id adds a 16-character timestamp to a
spec name, and a file system allows 255 bytes per component). Checking the text alone is not enough
against symlinks: the runner also checks that every path it writes resolves inside the runs dir
(:func:`tsglab.load.rundir.inside`).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from tsglab.errors import SpecError

__all__ = ["MAX_NAME_LENGTH", "check_name"]

MAX_NAME_LENGTH = 100


def check_name(value: Any, *, key: str, where: str) -> str:
    """``value`` if it is a plain name; else a :class:`~tsglab.errors.SpecError` naming ``where``, the
    ``key``, the value and the rule it breaks."""
    if isinstance(value, (dt.date, dt.datetime)):
        raise SpecError(f"{where}: {key} must be text; got a date ({value.isoformat()}), which is how YAML reads "
                        f"an unquoted date. quote it: {key}: '{value.isoformat()}'.")
    if not isinstance(value, str):
        raise SpecError(f"{where}: {key} must be text; got {type(value).__name__} ({value!r}). quote it in YAML, "
                        f"e.g. {key}: '{value}'.")
    problem = _problem(value)
    if problem:
        raise SpecError(f"{where}: {key} {value!r} {problem}; choose a plain name (letters, digits, '-', '_', "
                        "'.'), e.g. 'quickstart-2'. It names a directory under the runs dir, never a path.")
    return value


def _problem(name: str) -> str:
    if not name:
        return "is empty"
    if "/" in name or "\\" in name:
        separator = "/" if "/" in name else "\\"
        return f"contains '{separator}' (a path separator)"
    if ".." in name:
        return "contains '..' (a parent directory)"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        return "contains a control character"
    if not name[0].isalnum():
        return f"must start with a letter or digit (not {name[0]!r}: a hidden file or an option)"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long; a name has at most {MAX_NAME_LENGTH} characters"
    return ""
