"""Checks that run the answer: Python against test cases, a regex against strings, SQL against SQLite.

Each scorer pulls the code out of the answer (markdown fences first, then the answer itself), builds a
check program and runs it in :mod:`tsglab.suite.sandbox`. Verdicts are cached by program text (the
same answer to the same item is run once) and are deterministic: the programs draw no random numbers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from tsglab.suite._format import SuiteItem
from tsglab.suite.sandbox import SandboxResult, run_sandboxed

# Longest answer we run; anything longer is truncated (a model's code answer is a few KiB at most).
MAX_CODE_CHARS = 20_000
_FENCE = re.compile(r"(?:^|\n)[ \t]*(```|~~~)[ \t]*([A-Za-z0-9_+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*\1[ \t]*(?=\n|$)|\Z)",
                    re.DOTALL)
_INLINE = re.compile(r"`([^`\n]+)`")
_PY_START = re.compile(r"^(?:def |class |import |from |async def |@|lambda\b|[A-Za-z_]\w*\s*=|print\(|for |with |"
                       r"if |while |try:|[A-Za-z_][\w.]*\(|\[)")
_SQL_START = re.compile(r"\b(?:SELECT|UPDATE|WITH|INSERT|DELETE)\b", re.IGNORECASE)
_PY_LANGS = {"", "python", "py", "python3", "pycon"}
_SQL_LANGS = {"", "sql", "sqlite", "sqlite3", "postgresql", "mysql"}


# -------------------------------------------------------------------------------------------- extraction


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every fenced block (```` ``` ```` or ``~~~``); an unclosed fence runs to the end."""
    return [(match.group(2).casefold(), match.group(3)) for match in _FENCE.finditer(text)]


def extract_python(text: str, entry: str = "") -> str:
    """The Python code of an answer: the first fenced block that compiles and defines ``entry``, else the
    first that compiles, else the answer from its first code-looking line (prose after the code dropped)."""
    text = text[:MAX_CODE_CHARS]
    blocks = [body for lang, body in fenced_blocks(text) if lang in _PY_LANGS]
    candidates = blocks or _unfenced_python(text)
    compiling = [code for code in candidates if _compiles(code)]
    for code in compiling:
        if not entry or re.search(rf"\b{re.escape(entry)}\b", code) or code.lstrip().startswith("lambda"):
            return code
    if compiling:
        return compiling[0]
    return candidates[0] if candidates else text


def _unfenced_python(text: str) -> list[str]:
    lines = text.strip("\n").splitlines()
    starts = [index for index, line in enumerate(lines) if _PY_START.match(line)]
    candidates = [text.strip()]
    if starts:
        body = lines[starts[0]:]
        candidates.append("\n".join(body))
        # prose after the code: drop trailing lines until what is left compiles
        candidates.extend("\n".join(body[:end]) for end in range(len(body) - 1, 0, -1))
    return [_strip_prompt_markers(code) for code in candidates]


def _strip_prompt_markers(code: str) -> str:
    lines = code.splitlines()
    if lines and all(line.startswith((">>> ", "... ")) or not line.strip() for line in lines if line.strip()) and any(
            line.startswith(">>> ") for line in lines):
        return "\n".join(line[4:] for line in lines if line.startswith((">>> ", "... ")))
    return code


def _compiles(code: str) -> bool:
    try:
        compile(code, "<answer>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return bool(code.strip())


def extract_sql(text: str) -> str:
    """The SQL of an answer: the first fenced SQL block, else an inline `code` span, else from the first
    SELECT/UPDATE/WITH/INSERT/DELETE to the first semicolon."""
    text = text[:MAX_CODE_CHARS]
    for lang, body in fenced_blocks(text):
        if lang in _SQL_LANGS and _SQL_START.search(body):
            return body.strip()
    for match in _INLINE.finditer(text):
        if _SQL_START.match(match.group(1).strip()):
            return match.group(1).strip()
    start = _SQL_START.search(text)
    if start is None:
        return text.strip()
    rest = text[start.start():]
    end = rest.find(";")
    return (rest if end < 0 else rest[: end + 1]).strip()


_STRING_LITERAL = re.compile(r"""(?:\b[rR]|\b)?(?P<q>["'])(?P<body>(?:\\.|(?!(?P=q)).)*)(?P=q)""")


def extract_regex(text: str) -> str:
    """The one regular expression of an answer: the first code (fence or inline span) or, without code,
    the first non-blank line; a string literal in it (``r"..."``) or ``/.../`` delimiters are unwrapped.

    Only one candidate is taken, so listing several patterns does not get a hedge credited."""
    text = text[:MAX_CODE_CHARS]
    blocks = [body for _, body in fenced_blocks(text)]
    inline = [match.group(1) for match in _INLINE.finditer(text)]
    if blocks:
        lines = [line for line in blocks[0].splitlines() if line.strip()]
        # in a code block the pattern is the string literal a line compiles or assigns, else the first line
        code = next((line for line in lines if _STRING_LITERAL.search(line) and ("re." in line or "=" in line)),
                    lines[0] if lines else "")
    elif inline:
        code = inline[0]
    else:
        code = next((line for line in text.splitlines() if line.strip()), "")
    code = code.strip()
    literal = _STRING_LITERAL.search(code)
    if literal and ("re." in code or "=" in code or code[:1] in "rR\"'"):
        body = literal.group("body")
        raw = code[literal.start():literal.start() + 1] in "rR"
        return body if raw else body.encode("utf-8").decode("unicode_escape", "replace")
    if len(code) > 2 and code[0] == "/" and "/" in code[1:]:
        return code[1: code.rindex("/")]
    return code


# ---------------------------------------------------------------------------------------------- scoring


@functools.lru_cache(maxsize=4096)
def _run(program: str, files: tuple[tuple[str, str], ...]) -> SandboxResult:
    return run_sandboxed(program, files=dict(files))


def _verdict(result: SandboxResult, what: str) -> tuple[float, str]:
    if result.passed:
        return 1.0, f"{what}: passed"
    return 0.0, f"{what}: {result.detail}"


def python_program(check: Mapping[str, Any], code: str) -> str:
    """The check program of a ``python_tests`` item: setup, the answer (run by ``run_answer``), the tests."""
    entry = check.get("entry", "")
    lines = [check.get("setup", ""), f"answer = run_answer(globals(), {code!r}, {entry!r})"]
    if entry:
        lines.append(f"assert {entry!r} in globals(), 'the answer does not define {entry}'")
    return "\n".join([*lines, check["tests"], ""])


def regex_program(check: Mapping[str, Any], pattern: str) -> str:
    return "\n".join([
        "import re",
        f"pattern = re.compile({pattern!r})",
        f"for text in {check['positives']!r}:",
        "    assert pattern.fullmatch(text), f'does not match {text!r}'",
        f"for text in {check['negatives']!r}:",
        "    assert not pattern.fullmatch(text), f'matches {text!r}, which it should not'",
        "",
    ])


def sql_program(check: Mapping[str, Any], sql: str) -> str:
    probe = check.get("probe", "")
    return "\n".join([
        f"expected = run_sql({check['setup']!r}, {check['gold']!r}, {probe!r})",
        f"actual = run_sql({check['setup']!r}, {sql!r}, {probe!r})",
        (f"assert same_rows(expected, actual, {bool(check.get('ordered'))!r}), "
         "f'result differs from the gold query: {len(actual)} rows {actual[:3]!r} vs {len(expected)} rows "
         "{expected[:3]!r}'"),
        "",
    ])


def program_for(item: SuiteItem, text: str) -> tuple[str, dict[str, str], str]:
    """``(program, files, what)`` that checks ``text`` for a run-check item."""
    check = item.check
    kind = check["kind"]
    if kind == "python_tests":
        code = extract_python(text, check.get("entry", ""))
        return python_program(check, code), dict(check.get("files", {})), "tests"
    if kind == "regex_tests":
        return regex_program(check, extract_regex(text)), {}, "regex cases"
    return sql_program(check, extract_sql(text)), {}, "sql result"


def score_run_check(item: SuiteItem, text: str) -> tuple[float, str]:
    if not text.strip():
        return 0.0, "empty answer"
    program, files, what = program_for(item, text)
    return _verdict(_run(program, tuple(sorted(files.items()))), what)
