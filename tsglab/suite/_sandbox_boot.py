"""Bootstrap of a sandboxed check: this file is run as a script (``python -I -S -B``) in a fresh temp dir.

It is not imported by tsglab. It reads one line from stdin (``<nonce> <result fd>``), applies the
resource limits given on its command line, installs an audit hook that refuses the network,
subprocesses and writes outside the temp dir, then executes ``_program.py``
(the check program built by :mod:`tsglab.suite._code`) with the helpers below in its namespace. The
verdict is one line, ``<nonce> PASS`` or ``<nonce> FAIL <reason>``, written to the result descriptor;
the answer's own output goes to a bounded buffer, never to that descriptor.
"""

from __future__ import annotations

import ast
import io
import os
import resource
import sys
from typing import Any

_BLOCKED_EVENTS = frozenset({
    "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.kill", "os.killpg", "pty.spawn", "sys.addaudithook",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "ctypes.call_function", "mmap.__new__",
    "os.chdir", "os.fchdir", "os.chroot", "os.setuid", "os.putenv", "os.unsetenv", "webbrowser.open",
    "urllib.Request", "sqlite3.enable_load_extension", "sqlite3.load_extension",
})
_PATH_EVENTS = frozenset({
    "os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
    "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move", "os.chflags",
})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_STDOUT_LIMIT = 65536


class _BoundedOutput(io.TextIOBase):
    """Keeps the first 64 KiB the answer prints; the rest is counted and dropped."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self.size < _STDOUT_LIMIT:
            self.parts.append(text[: _STDOUT_LIMIT - self.size])
        self.size += len(text)
        return len(text)

    def getvalue(self) -> str:
        return "".join(self.parts)


def _install_guard(root: str) -> None:
    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True
        full = os.path.realpath(os.fsdecode(path))
        return full == root or full.startswith(root + os.sep)

    def guard(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = (*args, None, None, None)[:3]
            writing = (isinstance(mode, str) and any(ch in mode for ch in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing outside the temp dir is refused ({path!r})")
        elif event.startswith(("socket.", "ssl.")):
            raise PermissionError(f"sandbox: the network is disabled ({event})")
        elif event in _BLOCKED_EVENTS or event.startswith(("os.exec", "os.spawn")):
            raise PermissionError(f"sandbox: {event} is refused")
        elif event in _PATH_EVENTS:
            for value in args:
                if isinstance(value, (str, bytes, os.PathLike)) and not inside(value):
                    raise PermissionError(f"sandbox: {event} outside the temp dir is refused ({value!r})")
        elif event == "import" and args and str(args[0]).split(".")[0] in {"ctypes", "_ctypes", "socket", "_socket"}:
            raise PermissionError(f"sandbox: importing {args[0]} is refused")

    sys.addaudithook(guard)


def _limit(cpu_s: int, memory_mb: int, file_mb: int) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_mb << 20, file_mb << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


# ------------------------------------------------------------------------------- helpers for programs


class _Answer:
    """What running the answer left behind: its printed output, its last value and the values it bound."""

    def __init__(self) -> None:
        self.stdout = ""
        self.last: Any = None
        self.values: list[Any] = []


def run_answer(namespace: dict[str, Any], source: str, entry: str = "") -> _Answer:
    """Execute the answer in ``namespace``; a bare expression (a lambda) is bound to ``entry``."""
    tree = ast.parse(source, "<answer>")
    before = set(namespace)
    result = _Answer()
    last_expr = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last_statement = tree.body.pop()
        assert isinstance(last_statement, ast.Expr)
        last_expr = ast.Expression(last_statement.value)
    captured = _BoundedOutput()
    real_stdout = sys.stdout
    sys.stdout = captured
    try:
        exec(compile(tree, "<answer>", "exec"), namespace)
        if last_expr is not None:
            result.last = eval(compile(last_expr, "<answer>", "eval"), namespace)
    finally:
        sys.stdout = real_stdout
        result.stdout = captured.getvalue()
    if entry and entry not in namespace and callable(result.last):
        namespace[entry] = result.last
    bound = [name for name in namespace if name not in before and not name.startswith("__")]
    result.values = [namespace[name] for name in bound]
    if result.last is not None:
        result.values.append(result.last)
    elif bound and isinstance(tree.body[-1] if tree.body else None, (ast.Assign, ast.AnnAssign)):
        result.last = namespace[bound[-1]]
    return result


def run_sql(setup: str, statements: str, probe: str = "", deadline_steps: int = 2_000_000) -> list[tuple[Any, ...]]:
    """Run ``statements`` on a fresh in-memory SQLite database built by ``setup``; return the rows.

    The rows are those of ``probe`` when given (a query run afterwards, for UPDATE answers), else of the
    last statement that returned rows. ATTACH, DETACH and PRAGMA are refused.
    """
    import sqlite3

    connection = sqlite3.connect(":memory:")
    connection.executescript(setup)
    steps = [0]

    def progress() -> int:
        steps[0] += 1
        return 1 if steps[0] > deadline_steps // 1000 else 0

    def authorize(action: int, *_: Any) -> int:
        refused = (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA)
        return sqlite3.SQLITE_DENY if action in refused else sqlite3.SQLITE_OK

    connection.set_authorizer(authorize)
    connection.set_progress_handler(progress, 1000)
    rows: list[tuple[Any, ...]] | None = None
    for statement in split_sql(statements):
        cursor = connection.execute(statement)
        if cursor.description is not None:
            rows = [tuple(row) for row in cursor.fetchall()]
    if probe:
        connection.set_authorizer(None)
        rows = [tuple(row) for row in connection.execute(probe).fetchall()]
    if rows is None:
        raise AssertionError("the SQL returned no rows (no query among the statements)")
    return rows


def split_sql(script: str) -> list[str]:
    """Complete statements of ``script`` (semicolons inside strings kept), blanks dropped."""
    import sqlite3

    statements, current = [], ""
    for piece in script.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \n\t;"):
                statements.append(current.strip())
            current = ""
    if current.strip(" \n\t;"):
        statements.append(current.strip().rstrip(";"))
    return statements


def same_rows(expected: list[tuple[Any, ...]], actual: list[tuple[Any, ...]], ordered: bool) -> bool:
    """Result sets equal as lists (``ordered``) or multisets, allowing any order of the columns."""
    import itertools

    if len(expected) != len(actual):
        return False
    if not expected:
        return True
    width = len(expected[0])
    if any(len(row) != width for row in actual):
        return False
    for order in itertools.permutations(range(width)) if width <= 5 else [tuple(range(width))]:
        permuted = [tuple(row[i] for i in order) for row in actual]
        if (permuted == expected) if ordered else (sorted(map(repr, permuted)) == sorted(map(repr, expected))):
            return True
    return False


def main() -> None:
    cpu_s, memory_mb, file_mb = (int(value) for value in sys.argv[1:4])
    nonce, fd_text = sys.stdin.readline().split()
    result = os.fdopen(int(fd_text), "w", encoding="utf-8")
    root = os.path.realpath(os.getcwd())
    with open("_program.py", encoding="utf-8") as handle:
        program = handle.read()
    os.remove("_program.py")
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdin = io.StringIO("")
    sys.stdout = sys.stderr = _BoundedOutput()
    sys.dont_write_bytecode = True
    os.environ.clear()
    _limit(cpu_s, memory_mb, file_mb)
    namespace: dict[str, Any] = {
        "__name__": "__check__", "run_answer": run_answer, "run_sql": run_sql, "same_rows": same_rows,
    }
    _install_guard(root)
    try:
        exec(compile(program, "<check>", "exec"), namespace)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and MemoryError are verdicts too
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        result.write(f"{nonce} FAIL {message}\n")
    else:
        result.write(f"{nonce} PASS\n")
    result.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
