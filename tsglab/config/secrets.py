"""Secrets: what must never be written to a run directory, a log or a message, and how it is removed.

Two tools, both plain functions of text (this module sits at the bottom of the layers and imports
nothing from tsglab but the errors):

- redaction of *configuration values* before they are stored: :func:`redact_url` replaces the user
  info of an endpoint (``http://user:PASSWORD@host`` → ``http://<redacted>@host``) and the values of
  credential-like query parameters; :func:`redact_options` replaces the values of credential-like
  keys (``api_key``, ``Authorization``, ``token``, ``password``...) in nested option mappings.
- scrubbing of *server text* before it reaches an event or a message: a :class:`Scrubber` knows the
  secrets of one endpoint (the API key, the ``Authorization`` values sent, the URL's user info and
  its Basic-auth encoding) and replaces every occurrence; :meth:`Scrubber.message` also replaces any
  ``Authorization: …`` or ``Bearer …`` value, known or not, in error messages.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "Scrubber", "is_secret_key", "redact_options", "redact_url", "url_secrets"]

REDACTED = "<redacted>"
#: a secret shorter than this is not scrubbed from text (replacing every "a" would destroy the text)
MIN_SECRET_LEN = 4

_SECRET_KEY = re.compile(r"(?i)(api[-_]?key|apikey|auth|token|secret|passw(or)?d|credential|cookie|signature)")
_AUTH_VALUE = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token)\s+)?([^\s\"',;<>}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9\-._~+/]{8,}=*)")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@\"'<>]+@")


def is_secret_key(key: str) -> bool:
    """Whether an option or query key names a credential (``api_key``, ``X-Auth-Token``, ``password``...)."""
    return bool(_SECRET_KEY.search(key))


def redact_url(url: str) -> str:
    """``url`` with its user info and the values of credential-like query parameters replaced by
    :data:`REDACTED`; anything that is not a URL with a scheme comes back unchanged."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_key(k) for k, _ in pairs):
            query = urlencode([(k, REDACTED if is_secret_key(k) else v) for k, v in pairs], safe="<>")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_options(value: Any) -> Any:
    """A copy of ``value`` (nested mappings and lists) with the values of credential-like keys redacted
    and URLs with user info redacted."""
    if isinstance(value, Mapping):
        return {k: (REDACTED if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                    else redact_options(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_options(v) for v in value)
    if isinstance(value, str):
        return redact_url(value)
    return value


def url_secrets(url: str | None) -> list[str]:
    """What of ``url`` must not be shown: the user info, its parts (decoded and not), the Basic-auth
    encoding a client sends for it, and credential-like query values."""
    if not url or "://" not in url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found: list[str] = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, _, password = userinfo.partition(":")
        plain = f"{unquote(user)}:{unquote(password)}"
        found += [userinfo, plain, user, unquote(user), password, unquote(password), quote(unquote(password), safe=""),
                  base64.b64encode(plain.encode()).decode()]
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if is_secret_key(k)]
    return [s for s in found if s]


class Scrubber:
    """Removes known secrets from text. Build one per endpoint with :meth:`for_endpoint`.

    ``scrubber(text)`` replaces the known secrets only (safe on answers: nothing else changes);
    ``scrubber.message(text)`` also redacts any ``Authorization`` / ``Bearer`` value and URL user info
    (for error messages and excerpts of server text).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = {s for s in secrets if isinstance(s, str) and len(s) >= MIN_SECRET_LEN and s != REDACTED}
        # longest first, so a key is not half-replaced by a shorter secret it contains
        self.secrets: tuple[str, ...] = tuple(sorted(unique, key=len, reverse=True))

    @classmethod
    def for_endpoint(cls, *, api_key: str | None = None, url: str | None = None,
                     headers: Mapping[str, str] | None = None) -> Scrubber:
        found = [api_key or "", *url_secrets(url)]
        for name, value in (headers or {}).items():
            if is_secret_key(str(name)) and value:
                found += [str(value), str(value).split(" ", 1)[-1]]
        return cls(found)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __repr__(self) -> str:
        return f"Scrubber({len(self.secrets)} secret(s))"

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def message(self, text: str) -> str:
        text = self(text)
        text = _AUTH_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{REDACTED}", text)
        text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        return _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)

    def contains_secret(self, text: str) -> bool:
        return any(secret in text for secret in self.secrets)
