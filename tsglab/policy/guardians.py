"""Rule-based guardians: runtime checks of an answer that need no model.

A guardian looks at one text and returns a :class:`GuardVerdict`: violated or not, the category of
what it found and the character spans of each finding (what :func:`redact` masks). Every check is a
pure function of the text, takes well under a millisecond on a kilobyte of text, and never raises:
empty, huge, binary-looking or mixed-script text gets a verdict like any other.

``GUARDIANS`` holds one default instance per guardian class:

- ``pii``: e-mail addresses, phone numbers, Chinese resident ids (ISO 7064 MOD 11-2 check digit and a
  real birth date), US social security numbers (SSA area/group/serial rules) and payment card numbers
  (Luhn check digit and a known issuer prefix and length).
- ``secrets``: credential shapes (AWS access key ids, GitHub tokens, OpenAI-style ``sk-`` keys, Slack
  tokens, Google API keys, PEM private keys with a body, JWTs whose header decodes to JSON).
- ``code``: an AST-level check of the Python in the answer for shell, dynamic-code, network and
  file-system-write calls, with import aliases resolved.
- ``sql``: SQL writes, drops, schema changes and grants, found by a tokenizer that skips string
  literals, quoted identifiers and comments.
- ``refusal``: :func:`tsglab.policy.checks.is_refusal`, the executor's own refusal test.
- ``length`` and ``format``: contracts (character bounds; JSON that parses).

What counts as a violation, and what deliberately does not (documentation placeholders such as
``user@example.com``, fictional 555-01xx phone numbers, AWS's published ``…EXAMPLE`` keys, lowercase
"drop table" in prose), is listed in ``docs/enforcement-suite-format.md``.
"""

from __future__ import annotations

import ast
import base64
import binascii
import datetime
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from tsglab.jsoncontract import check_json_contract
from tsglab.policy.checks import is_refusal

__all__ = [
    "GUARDIANS",
    "CodeGuardian",
    "FormatGuardian",
    "GuardVerdict",
    "Guardian",
    "LengthGuardian",
    "PiiGuardian",
    "RefusalGuardian",
    "SecretsGuardian",
    "SqlGuardian",
    "cn_resident_id_valid",
    "luhn_valid",
    "redact",
    "ssn_valid",
]

Span = tuple[int, int]


@dataclass(frozen=True)
class GuardVerdict:
    """One guardian's verdict on one text.

    ``category`` names what was found first in the text (``""`` when clean); ``spans`` are the
    ``(start, end)`` character offsets of every finding, sorted and non-overlapping.
    """

    guardian: str
    violated: bool
    category: str
    spans: tuple[Span, ...]


class Guardian(Protocol):
    """Anything with a ``name`` and a pure ``check(text)``; the built-in guardians are frozen dataclasses."""

    @property
    def name(self) -> str: ...

    def check(self, text: str) -> GuardVerdict: ...


def redact(text: str, verdict: GuardVerdict, mask: str = "[REDACTED]") -> str:
    """Replace every span of ``verdict`` in ``text`` by ``mask`` (spans clipped to the text)."""
    pieces: list[str] = []
    position = 0
    for start, end in _merge((max(0, s), min(len(text), e)) for s, e in verdict.spans):
        if end <= position or start >= end:
            continue
        start = max(start, position)
        pieces.extend((text[position:start], mask))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _verdict(name: str, findings: list[tuple[int, int, str]]) -> GuardVerdict:
    """Verdict from ``(start, end, category)`` findings: the category is the earliest finding's."""
    if not findings:
        return GuardVerdict(name, False, "", ())
    findings.sort()
    return GuardVerdict(name, True, findings[0][2], tuple(_merge((s, e) for s, e, _ in findings)))


# --------------------------------------------------------------------------------------- checksums
# Public so the suite's generator and tests can name the rule; the tests check them against their own
# naive implementations, never against a guardian.

_CN_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CN_ID_CHECK = "10X98765432"  # check character for (weighted sum mod 11) = 0, 1, …, 10
# Years a resident id's birth date may fall in; later dates are not yet anyone's birth date on an id
# checked by this code, and earlier ones predate the id system by decades.
_CN_ID_YEARS = (1900, 2099)


def cn_resident_id_valid(candidate: str) -> bool:
    """True for an 18-character China resident id: region code not starting with 0 or 9, a real
    birth date (YYYYMMDD, years 1900–2099) and the ISO 7064 MOD 11-2 check character (0–9 or X)."""
    if len(candidate) != 18 or not candidate[:17].isascii() or not candidate[:17].isdigit():
        return False
    if candidate[0] in "09":
        return False
    year, month, day = int(candidate[6:10]), int(candidate[10:12]), int(candidate[12:14])
    if not _CN_ID_YEARS[0] <= year <= _CN_ID_YEARS[1]:
        return False
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    total = sum(int(digit) * weight for digit, weight in zip(candidate[:17], _CN_ID_WEIGHTS, strict=True))
    return candidate[17].upper() == _CN_ID_CHECK[total % 11]


def luhn_valid(digits: str) -> bool:
    """True when a string of ASCII digits passes the Luhn (mod 10) check."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# Issuer prefixes (IIN ranges) and the lengths each network issues; a Luhn-valid number outside
# these is far more likely an order or tracking number than a card.
_CARD_NETWORKS: tuple[tuple[str, tuple[tuple[int, int], ...], tuple[int, ...]], ...] = (
    ("visa", ((4, 4),), (13, 16, 19)),
    ("mastercard", ((51, 55), (2221, 2720)), (16,)),
    ("amex", ((34, 34), (37, 37)), (15,)),
    ("discover", ((6011, 6011), (644, 649), (65, 65)), (16, 17, 18, 19)),
    ("jcb", ((3528, 3589),), (16, 17, 18, 19)),
    ("unionpay", ((62, 62),), (16, 17, 18, 19)),
    ("diners", ((300, 305), (36, 36), (38, 39)), (14, 15, 16, 17, 18, 19)),
)


def card_network(digits: str) -> str:
    """The card network whose prefix and length ``digits`` has, or ``""``."""
    for network, ranges, lengths in _CARD_NETWORKS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            width = len(str(low))
            if low <= int(digits[:width]) <= high:
                return network
    return ""


# Numbers the SSA never issues, or voided after they were published (the 1938 wallet card, a 1940s ad).
_SSN_VOIDED = frozenset({"078051120", "219099999"})


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """True for a US SSN the SSA could issue: area not 000, 666 or 900–999; group not 00; serial not 0000."""
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_VOIDED


# --------------------------------------------------------------------------------------------- pii

# Reserved for documentation and testing (RFC 2606 / RFC 6761): an address there reaches no one.
_PLACEHOLDER_DOMAINS = ("example.com", "example.org", "example.net", "example.edu")
_PLACEHOLDER_TLDS = ("example", "test", "invalid", "localhost", "local")

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9._%+\-]{1,64})@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.){1,8}"
    r"([A-Za-z]{2,24}))(?![A-Za-z0-9\-])"
)
# E.164: + country code and subscriber number, 8–15 digits in all, single spaces/dashes between groups.
_E164 = re.compile(r"(?<![0-9A-Za-z+])\+[1-9](?:[ \-]?\d){7,14}(?![0-9A-Za-z])")
# North American numbers: (NXX) NXX-XXXX, NXX-NXX-XXXX, NXX.NXX.XXXX, optional leading 1; separators required.
_NANP = re.compile(
    r"(?<![0-9A-Za-z+\-.])(?:1[ \-.])?(?:\(([2-9]\d\d)\) ?|([2-9]\d\d)([\-. ]))([2-9]\d\d)[\-. ](\d{4})"
    r"(?![0-9A-Za-z]|[\-.]\d)"
)
# Chinese mobile numbers: 1[3-9]X XXXX XXXX, bare or split 3-4-4 by spaces or dashes, optional +86 / 0086.
_CN_MOBILE = re.compile(r"(?<![0-9A-Za-z+])(?:(?:\+86|0086)[ \-]?)?1[3-9]\d(?:[ \-]?\d{4}){2}(?![0-9A-Za-z])")
# Chinese landlines with the area code split off: 010-12345678, (021) 8765 4321, 0755-1234567.
_CN_LANDLINE = re.compile(
    r"(?<![0-9A-Za-z\-.])(?:\(0\d{2,3}\) ?|0\d{2,3}-)[2-9]\d{2,3}[ \-]?\d{4}(?![0-9A-Za-z]|[\-.]\d)"
)
# UK national numbers: 020 7946 0958, 01632 960983, 07700 900123.
_UK = re.compile(r"(?<![0-9A-Za-z\-.])0(?:\d{2} \d{4} \d{4}|\d{4} \d{6}|\d{3} \d{3} \d{4})(?![0-9A-Za-z]|[\-.]\d)")
_CN_ID = re.compile(r"(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])")
_SSN = re.compile(r"(?<![0-9A-Za-z\-])(\d{3})([\- ])(\d{2})\2(\d{4})(?![0-9A-Za-z]|-\d)")
# 13–19 digits, optionally grouped by single spaces or dashes.
_CARD = re.compile(r"(?<![0-9A-Za-z\-.])\d(?:[ \-]?\d){12,18}(?![0-9A-Za-z]|[\-.]\d)")


def _email_findings(text: str) -> Iterator[tuple[int, int, str]]:
    for match in _EMAIL.finditer(text):
        domain, tld = match.group(2).lower(), match.group(3).lower()
        if tld in _PLACEHOLDER_TLDS or any(domain == d or domain.endswith("." + d) for d in _PLACEHOLDER_DOMAINS):
            continue
        if match.group(1).startswith(".") or match.group(1).endswith("."):
            continue
        yield match.start(), match.end(), "email"


def _phone_findings(text: str) -> Iterator[tuple[int, int, str]]:
    for pattern in (_E164, _CN_MOBILE, _CN_LANDLINE, _UK):
        for match in pattern.finditer(text):
            yield match.start(), match.end(), "phone"
    for match in _NANP.finditer(text):
        exchange, line = match.group(4), match.group(5)
        if exchange == "555" and line.startswith("01"):
            continue  # 555-0100 … 555-0199: reserved for fiction
        yield match.start(), match.end(), "phone"


def _number_findings(text: str) -> Iterator[tuple[int, int, str]]:
    for match in _CN_ID.finditer(text):
        if cn_resident_id_valid(match.group()):
            yield match.start(), match.end(), "cn_resident_id"
    for match in _SSN.finditer(text):
        if ssn_valid(match.group(1), match.group(3), match.group(4)):
            yield match.start(), match.end(), "us_ssn"
    for match in _CARD.finditer(text):
        raw = match.group()
        digits = raw.replace(" ", "").replace("-", "")
        if len({char for char in raw if not char.isdigit()}) > 1:
            continue  # mixed separators: a date-time or a list, not a card as people write one
        if luhn_valid(digits) and card_network(digits) and not cn_resident_id_valid(digits):
            yield match.start(), match.end(), "card_number"


def _ascii_digits(text: str) -> str:
    """Full-width digits and letters (０-９, Ａ-Ｚ, ＠) as ASCII, one character for one, so spans stay valid."""
    if text.isascii():
        return text
    return "".join(unicodedata.normalize("NFKC", char) if "\uff01" <= char <= "\uff5e" else char for char in text)


@dataclass(frozen=True)
class PiiGuardian:
    """Personal data in the text: e-mail, phone, China resident id, US SSN, payment card number."""

    name: str = "pii"

    def check(self, text: str) -> GuardVerdict:
        text = _ascii_digits(text)
        findings = [*_email_findings(text), *_phone_findings(text), *_number_findings(text)]
        # a number that is a valid id or card is reported as that, not also as a phone number
        numbers = [(s, e) for s, e, c in findings if c in ("cn_resident_id", "card_number", "us_ssn")]
        findings = [f for f in findings if f[2] != "phone" or not any(s <= f[0] < e for s, e in numbers)]
        return _verdict(self.name, findings)


# ----------------------------------------------------------------------------------------- secrets


def _mixed(body: str, *, upper: bool = True, lower: bool = True, digit: bool = True, distinct: int = 8) -> bool:
    """Random-looking: enough distinct characters and each requested character class present, so that
    placeholders (``ghp_xxxx…``, ``sk-your-key-here``) and words do not pass."""
    return (
        len(set(body)) >= distinct
        and (not upper or any(c.isupper() for c in body))
        and (not lower or any(c.islower() for c in body))
        and (not digit or any(c.isdigit() for c in body))
    )


def _jwt_header_ok(segment: str) -> bool:
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header


_TOKEN_END = r"(?![A-Za-z0-9_\-])"
_SECRET_RULES: tuple[tuple[str, re.Pattern[str], Callable[[re.Match[str]], bool]], ...] = (
    # AWS access key ids are AKIA/ASIA and 16 base-32 characters; AWS's documentation keys end in EXAMPLE
    ("aws_key", re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)([A-Z2-7]{16})(?![A-Za-z0-9])"),
     lambda m: not m.group(1).endswith("EXAMPLE") and _mixed(m.group(1), lower=False, digit=False)),
    ("github_token", re.compile(r"(?<![A-Za-z0-9_])gh[pousr]_([A-Za-z0-9]{36})" + _TOKEN_END),
     lambda m: _mixed(m.group(1), upper=False)),
    ("github_token", re.compile(r"(?<![A-Za-z0-9_])github_pat_([A-Za-z0-9]{22}_[A-Za-z0-9]{59})" + _TOKEN_END),
     lambda m: _mixed(m.group(1), upper=False)),
    ("openai_key", re.compile(r"(?<![A-Za-z0-9_\-])sk-(?:proj-|svcacct-|admin-|ant-api\d\d-)?([A-Za-z0-9_\-]{32,200})"
                              + _TOKEN_END),
     lambda m: _mixed(m.group(1), distinct=12)),
    ("slack_token", re.compile(r"(?<![A-Za-z0-9])xox[abpr]-(?:\d{8,13}-){1,3}([A-Za-z0-9]{24,34})" + _TOKEN_END),
     lambda m: _mixed(m.group(1), upper=False)),
    ("google_api_key", re.compile(r"(?<![A-Za-z0-9_\-])AIza([0-9A-Za-z_\-]{35})" + _TOKEN_END),
     lambda m: _mixed(m.group(1))),
    # the header alone is how documentation talks about keys; a key is there when a body follows
    ("private_key", re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
                               r"\s*((?:[A-Za-z0-9+/=]+\s*){1,400})(?:-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----)?"),
     lambda m: len(re.sub(r"\s", "", m.group(1))) >= 40 and _mixed(m.group(1))),
    ("jwt", re.compile(r"(?<![A-Za-z0-9_\-])(eyJ[A-Za-z0-9_\-]{8,2000})\.eyJ[A-Za-z0-9_\-]{8,4000}"
                       r"\.[A-Za-z0-9_\-]{16,2000}" + _TOKEN_END),
     lambda m: _jwt_header_ok(m.group(1))),
)


@dataclass(frozen=True)
class SecretsGuardian:
    """Credentials in the text, by shape, length and character mix."""

    name: str = "secrets"

    def check(self, text: str) -> GuardVerdict:
        findings = [
            (match.start(), match.end(), category)
            for category, pattern, accept in _SECRET_RULES
            for match in pattern.finditer(text)
            if accept(match)
        ]
        return _verdict(self.name, findings)


# -------------------------------------------------------------------------------------------- code

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_PYTHON_FENCE_LANGS = ("", "python", "py", "python3", "py3", "ipython", "pycon")
_CODE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shell_call", ("os.system", "os.popen", "os.spawn*", "os.exec*", "os.posix_spawn*", "subprocess.*", "pty.spawn",
                    "commands.*")),
    ("dynamic_code", ("eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec", "builtins.compile",
                      "builtins.__import__", "importlib.import_module", "importlib.__import__")),
    ("network", ("socket.*", "requests.*", "urllib.request.*", "urllib.urlopen", "urllib2.*", "urllib3.*",
                 "http.client.*", "httpx.*", "aiohttp.*", "ftplib.*", "smtplib.*", "telnetlib.*", "paramiko.*")),
    ("file_write", ("shutil.rmtree", "shutil.move", "shutil.copy*", "os.remove", "os.unlink", "os.rmdir",
                    "os.removedirs", "os.rename", "os.replace", "os.truncate", "pathlib.Path.unlink",
                    "pathlib.Path.write_text", "pathlib.Path.write_bytes", "pathlib.Path.rmdir")),
)
_BUILTIN_RULE_NAMES = frozenset({"eval", "exec", "compile", "__import__", "open"})
_WRITE_MODE = re.compile(r"[wax+]")


def _rule_category(dotted: str) -> str:
    for category, names in _CODE_RULES:
        for name in names:
            if dotted == name or (name.endswith("*") and dotted.startswith(name[:-1])):
                return category
    return ""


def _python_sources(text: str) -> list[tuple[int, str]]:
    """(offset in text, source) of the Python to check: fenced Python blocks, else the whole text."""
    blocks = [(m.start(2), m.group(2)) for m in _FENCE.finditer(text) if m.group(1).lower() in _PYTHON_FENCE_LANGS]
    if blocks or "```" in text:
        return blocks
    return [(0, text)]


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


class _Names:
    """What each name in a module stands for: import aliases, and builtins the module rebinds."""

    def __init__(self, tree: ast.Module) -> None:
        self.aliases: dict[str, str] = {}
        self.rebound: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.split(".")[0]
                        self.aliases[top] = top
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.rebound.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                self.rebound.add(node.id)
            elif isinstance(node, ast.arg):
                self.rebound.add(node.arg)

    def dotted(self, func: ast.expr) -> str:
        """The qualified name a call's target resolves to ("" when it is not a plain name chain)."""
        parts: list[str] = []
        while isinstance(func, ast.Attribute):
            parts.append(func.attr)
            func = func.value
        if isinstance(func, ast.Call):  # Path("x").write_text(...): the receiver's constructor counts
            inner = self.dotted(func.func)
            if inner.endswith("Path") and parts:
                return "pathlib.Path." + ".".join(reversed(parts))
            return ""
        if not isinstance(func, ast.Name):
            return ""
        name = func.id
        if name in self.aliases:
            base = self.aliases[name]
        elif name in self.rebound:
            return ""  # a local variable or function that shadows a builtin of the same name
        else:
            base = name
        return ".".join([base, *reversed(parts)])


def _open_writes(call: ast.Call) -> bool:
    mode: ast.expr | None = call.args[1] if len(call.args) > 1 else None
    for keyword in call.keywords:
        if keyword.arg == "mode":
            mode = keyword.value
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) and bool(_WRITE_MODE.search(mode.value))


def _line_starts(source: str) -> list[int]:
    starts = [0]
    starts.extend(match.end() for match in re.finditer(r"\r\n|\r|\n", source))
    return starts


def _char_offset(source: str, starts: list[int], lineno: int, col_bytes: int) -> int:
    """Character offset of (1-based line, UTF-8 byte column), as the AST reports positions."""
    line_start = starts[min(lineno - 1, len(starts) - 1)]
    line = source[line_start:line_start + col_bytes + 1]
    return line_start + len(line.encode("utf-8")[:col_bytes].decode("utf-8", "ignore"))


@dataclass(frozen=True)
class CodeGuardian:
    """Dangerous calls in the Python of an answer (shell, eval/exec, network, file-system writes)."""

    name: str = "code"

    def check(self, text: str) -> GuardVerdict:
        findings: list[tuple[int, int, str]] = []
        for offset, source in _python_sources(text):
            tree = _parse(source)
            if tree is None:
                continue
            names = _Names(tree)
            starts = _line_starts(source)
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                dotted = names.dotted(node.func)
                if dotted in ("open", "io.open", "builtins.open", "codecs.open"):
                    category = "file_write" if _open_writes(node) else ""
                else:
                    category = _rule_category(dotted)
                if category:
                    start = _char_offset(source, starts, node.lineno, node.col_offset)
                    end = _char_offset(source, starts, node.end_lineno or node.lineno,
                                       node.end_col_offset if node.end_col_offset is not None else node.col_offset)
                    findings.append((offset + start, offset + max(end, start + 1), category))
        return _verdict(self.name, findings)


# --------------------------------------------------------------------------------------------- sql

_SQL_TOKEN = re.compile(
    r"(?P<skip>--[^\n]*|/\*.*?(?:\*/|\Z)|(?<![A-Za-z0-9])'(?:[^']|'')*(?:'|\Z)|\"[^\"\n]*\"|`[^`\n]*`"
    r"|\$(?P<tag>[A-Za-z_]*)\$.*?(?:\$(?P=tag)\$|\Z))"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_$]*)|(?P<semi>;)|(?P<newline>\n)|(?P<punct>[^\sA-Za-z_])",
    re.DOTALL,
)
_SQL_OBJECTS = frozenset(
    "TABLE DATABASE SCHEMA VIEW INDEX SEQUENCE FUNCTION PROCEDURE TRIGGER USER ROLE COLUMN CONSTRAINT TYPE "
    "MATERIALIZED EXTENSION TABLESPACE".split()
)
_SQL_CREATE_MODIFIERS = frozenset("OR REPLACE TEMP TEMPORARY UNIQUE GLOBAL LOCAL UNLOGGED IF NOT EXISTS".split())
_SQL_PRIVILEGES = frozenset("ALL SELECT INSERT UPDATE DELETE USAGE EXECUTE REFERENCES TRIGGER CREATE CONNECT".split())
_INLINE_CODE = re.compile(r"`([^`\n]+)`")


@dataclass(frozen=True)
class _SqlToken:
    kind: str  # word | semi | newline | punct
    text: str
    start: int
    end: int


def _sql_tokens(text: str, offset: int) -> list[_SqlToken]:
    tokens = []
    for match in _SQL_TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        if match.group("skip") is not None:
            continue
        if kind == "tag":
            continue
        tokens.append(_SqlToken(kind, match.group(), offset + match.start(), offset + match.end()))
    return tokens


def _sql_statement_category(words: list[str]) -> str:
    """Category of a statement that starts with ``words`` (upper-cased), or "" when read-only or not SQL."""
    words = _join_qualified(words)
    if not words:
        return ""
    head, rest = words[0], words[1:]
    if head == "DROP" and rest and rest[0] in _SQL_OBJECTS:
        return "sql_drop"
    if head == "TRUNCATE" and rest and _is_name(rest[0]) and rest[0] != "OF":
        return "sql_drop"
    if head == "DELETE" and len(rest) >= 2 and rest[0] == "FROM" and _is_name(rest[1]):
        return "sql_write"
    if (head in ("INSERT", "REPLACE", "MERGE") and len(rest) >= 3 and rest[0] == "INTO" and _is_name(rest[1])
            and any(word in ("(", "VALUES", "SELECT", "DEFAULT", "SET", "USING") for word in rest[2:4])):
        return "sql_write"
    if head == "UPDATE" and len(rest) >= 2 and _is_name(rest[0]) and (
        rest[1] == "SET" or (len(rest) >= 3 and rest[2] == "SET" and _is_name(rest[1]))
    ):
        return "sql_write"
    if head in ("ALTER", "CREATE"):
        objects = [word for word in rest[:6] if word not in _SQL_CREATE_MODIFIERS]
        if objects and objects[0] in _SQL_OBJECTS and len(objects) >= 2:
            return "sql_schema"
    if head in ("GRANT", "REVOKE") and rest and rest[0] in _SQL_PRIVILEGES and "ON" in rest and (
        "TO" in rest or "FROM" in rest
    ):
        return "sql_grant"
    return ""


def _join_qualified(words: list[str]) -> list[str]:
    """``schema . table`` as one name, so qualified names read like plain ones."""
    joined: list[str] = []
    for word in words:
        if joined and (word == "." or joined[-1].endswith(".")) and _is_name(joined[-1].rstrip(".")):
            joined[-1] += word
        else:
            joined.append(word)
    return joined


def _is_name(word: str) -> bool:
    return bool(word) and (word[0].isalpha() or word[0] == "_")


def _sql_code_regions(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(code regions, prose regions) with their offsets: fenced blocks and inline `code` are code."""
    code: list[tuple[int, str]] = []
    prose: list[tuple[int, str]] = []
    position = 0
    for match in _FENCE.finditer(text):
        prose.append((position, text[position:match.start()]))
        code.append((match.start(2), match.group(2)))
        position = match.end()
    prose.append((position, text[position:]))
    inline_prose: list[tuple[int, str]] = []
    for offset, chunk in prose:
        cursor = 0
        for match in _INLINE_CODE.finditer(chunk):
            inline_prose.append((offset + cursor, chunk[cursor:match.start()]))
            code.append((offset + match.start(1), match.group(1)))
            cursor = match.end()
        inline_prose.append((offset + cursor, chunk[cursor:]))
    return code, inline_prose


@dataclass(frozen=True)
class SqlGuardian:
    """SQL that changes data, schema or permissions; SELECT-only SQL is clean.

    In code (fenced blocks, inline backticks) keywords match in any case. In prose a statement counts
    when its first keyword is upper-case or it ends with ``;`` on its line, so "drop table salt" in a
    sentence is prose and ``drop table users;`` is SQL.
    """

    name: str = "sql"

    def check(self, text: str) -> GuardVerdict:
        findings: list[tuple[int, int, str]] = []
        code, prose = _sql_code_regions(text)
        for regions, in_code in ((code, True), (prose, False)):
            for offset, chunk in regions:
                findings.extend(self._statements(_sql_tokens(chunk, offset), in_code=in_code))
        return _verdict(self.name, findings)

    @staticmethod
    def _statements(tokens: list[_SqlToken], *, in_code: bool) -> Iterator[tuple[int, int, str]]:
        for index, token in enumerate(tokens):
            if token.kind != "word" or token.text.upper() not in (
                "DROP", "TRUNCATE", "DELETE", "INSERT", "REPLACE", "MERGE", "UPDATE", "ALTER", "CREATE", "GRANT",
                "REVOKE",
            ):
                continue
            words: list[str] = []
            end = token.end
            terminated = False
            for following in tokens[index:]:
                if following.kind == "semi":
                    end, terminated = following.end, True
                    break
                if following.kind == "newline" and not in_code:
                    break
                if following.kind == "newline":
                    continue
                words.append(following.text.upper() if following.kind == "word" else following.text)
                end = following.end
                if len(words) > 64:
                    break
            category = _sql_statement_category(words)
            if category and (in_code or token.text.isupper() or terminated):
                yield token.start, end, category


# ---------------------------------------------------------------------------------- refusal, length


@dataclass(frozen=True)
class RefusalGuardian:
    """A refusal at the start of the answer (the executor's :func:`~tsglab.policy.checks.is_refusal`)."""

    name: str = "refusal"

    def check(self, text: str) -> GuardVerdict:
        if is_refusal(text):
            return GuardVerdict(self.name, True, "refusal", ((0, len(text)),) if text else ())
        return GuardVerdict(self.name, False, "", ())


@dataclass(frozen=True)
class LengthGuardian:
    """A length contract on the stripped answer: at least ``min_chars``, at most ``max_chars`` characters."""

    name: str = "length"
    min_chars: int = 1
    max_chars: int = 8000

    def __post_init__(self) -> None:
        if not 0 <= self.min_chars <= self.max_chars:
            raise ValueError(f"LengthGuardian needs 0 <= min_chars <= max_chars; got min_chars={self.min_chars}, "
                             f"max_chars={self.max_chars}. Pass bounds in that order.")

    def check(self, text: str) -> GuardVerdict:
        length = len(text.strip())
        if length < self.min_chars:
            return GuardVerdict(self.name, True, "too_short", ())
        if length > self.max_chars:
            start = len(text) - len(text.lstrip()) + self.max_chars
            return GuardVerdict(self.name, True, "too_long", ((start, len(text)),))
        return GuardVerdict(self.name, False, "", ())


@dataclass(frozen=True)
class FormatGuardian:
    """A format contract: for ``task="json"`` the answer must hold JSON that parses (and meets
    ``json_schema`` when given), the executor's own JSON contract; other tasks have no format rule."""

    name: str = "format"
    task: str = "json"
    json_schema: dict | None = None

    def check(self, text: str) -> GuardVerdict:
        if self.task != "json":
            return GuardVerdict(self.name, False, "", ())
        try:
            ok = check_json_contract(text, self.json_schema).ok
        except RecursionError:  # nesting deeper than the parser goes is not a usable JSON answer
            ok = False
        return GuardVerdict(self.name, not ok, "" if ok else "json_contract", ())


GUARDIANS: dict[str, Guardian] = {
    "pii": PiiGuardian(),
    "secrets": SecretsGuardian(),
    "code": CodeGuardian(),
    "sql": SqlGuardian(),
    "refusal": RefusalGuardian(),
    "length": LengthGuardian(),
    "format": FormatGuardian(),
}
