"""The URLs of GitHub-shaped answers: gistcache's own base as the client reached it,
GitHub's API URLs in bodies rewritten to it (clients such as PyGithub refuse URLs of
another host, and follow them), and ``Link`` headers in GitHub's form."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gistcache.settings import Network
from gistcache.web.failures import InvalidHost
from gistcache.web.ratelimit import is_trusted

# the URLs of other places than the API, left as GitHub wrote them even when they share
# the API's origin (the fake GitHub serves raw files beside its API, as GHES can)
NEVER_REWRITTEN = frozenset({"raw_url", "html_url", "git_pull_url", "git_push_url"})
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{{1,5}})?", re.ASCII)


def _last(request: web.Request, header: str) -> str | None:
    """The value the nearest proxy added: the last of a comma-separated header."""
    values = [
        part.strip() for value in request.headers.getall(header, []) for part in value.split(",")
    ]
    return values[-1] if values and values[-1] else None


def public_origin(request: web.Request, trusted: Sequence[Network]) -> str:
    """gistcache's origin as the client reached it: the request's scheme and ``Host``,
    or, from a trusted proxy, its ``X-Forwarded-Proto`` and ``X-Forwarded-Host``.
    A ``Host`` that is no host name is a 400."""
    scheme = request.scheme
    host = request.headers.get("Host") or request.host
    if request.remote is not None and is_trusted(request.remote, trusted):
        proto = (_last(request, "X-Forwarded-Proto") or "").lower()
        if proto in ("http", "https"):
            scheme = proto
        host = _last(request, "X-Forwarded-Host") or host
    if not _HOST.fullmatch(host):
        raise InvalidHost("the Host header is not a host name")
    return f"{scheme}://{host.lower()}"


class Rewriter:
    """GitHub's API URLs (those under the configured API base, nothing else) turned into
    the same URLs under gistcache's ``/api/v3``."""

    def __init__(self, github_api: str, ours: str) -> None:
        self._api = github_api.rstrip("/")
        self._ours = ours.rstrip("/")

    def url(self, value: str) -> str:
        api = self._api
        if value.startswith(api) and value[len(api) : len(api) + 1] in ("", "/", "?", "{"):
            return self._ours + value[len(api) :]
        return value

    def body(self, value: Any, key: str | None = None) -> Any:
        """A copy of the JSON ``value`` with its API URLs rewritten."""
        if isinstance(value, str):
            return value if key in NEVER_REWRITTEN else self.url(value)
        if isinstance(value, dict):
            return {name: self.body(item, name) for name, item in value.items()}
        if isinstance(value, list):
            return [self.body(item) for item in value]
        return value


def github_link_header(
    base: str, query: Sequence[tuple[str, str]], page: int, last: int
) -> str | None:
    """GitHub's ``Link`` for page ``page`` of ``last``: ``next`` and ``last`` while there is
    a next page, ``first`` and ``prev`` after the first, in that order; None for a list
    of one page. As GitHub does, each target repeats the request's query with ``page``
    changed (added at the end when the request had none)."""
    rels: list[tuple[str, int]] = []
    if page < last:
        rels += [("next", page + 1), ("last", last)]
    if page > 1:
        rels += [("first", 1), ("prev", min(page - 1, last))]
    if not rels:
        return None

    def target(number: int) -> str:
        pairs = [(k, str(number) if k == "page" else v) for k, v in query]
        if not any(k == "page" for k, _ in pairs):
            pairs.append(("page", str(number)))
        return base + "?" + "&".join(f"{k}={quote(v, safe=':')}" for k, v in pairs)

    return ", ".join(f'<{target(number)}>; rel="{rel}"' for rel, number in rels)
