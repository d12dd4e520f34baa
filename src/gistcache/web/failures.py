"""The HTTP status of every kind of failure (one table, checked complete by a test), the
``Problem`` every renderer draws, and the failures the web layer finds itself, before or
beside any use case."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from gistcache.domain.errors import FailureKind

STATUS: dict[FailureKind, int] = {
    FailureKind.INVALID_USERNAME: 400,
    FailureKind.INVALID_QUERY: 400,
    FailureKind.INVALID_BODY: 400,
    FailureKind.INVALID_PATTERN: 400,
    FailureKind.INVALID_JSON: 400,
    FailureKind.BODY_TOO_LARGE: 413,
    FailureKind.MALFORMED_REQUEST: 400,
    FailureKind.INVALID_HOST: 400,
    FailureKind.CROSS_SITE_REQUEST: 403,
    FailureKind.UNAUTHORIZED: 401,
    FailureKind.FORBIDDEN: 403,
    FailureKind.NOT_FOUND: 404,
    FailureKind.METHOD_NOT_ALLOWED: 405,
    # aiohttp's own refusals other than 404 and 405 keep the status aiohttp gave them
    # (web.problems.from_http_exception): this is the one they have in the document
    FailureKind.HTTP_ERROR: 400,
    FailureKind.USER_NOT_FOUND: 404,
    FailureKind.GIST_NOT_FOUND: 404,
    FailureKind.SEARCH_NOT_FOUND: 404,
    FailureKind.SEARCH_NOT_FINISHED: 409,
    FailureKind.NOT_CACHED: 404,
    FailureKind.WATCH_NOT_FOUND: 404,
    FailureKind.TOO_MANY_REQUESTS: 429,
    FailureKind.GITHUB_BUDGET_SPENT: 429,
    FailureKind.GITHUB_COST: 429,
    FailureKind.SHARED_REFRESH_STOPPED: 503,
    FailureKind.TOO_MANY_JOBS: 429,
    FailureKind.JOB_QUEUE_FULL: 503,
    FailureKind.SEARCHES_BUSY: 503,
    FailureKind.ANSWERS_BUSY: 503,
    FailureKind.SEARCH_TIMEOUT: 504,
    FailureKind.GITHUB_RATE_LIMITED: 503,
    FailureKind.GITHUB_RESERVE: 503,
    FailureKind.GITHUB_TIMEOUT: 504,
    FailureKind.GITHUB_UNAVAILABLE: 502,
    FailureKind.DATABASE_UNAVAILABLE: 503,
    FailureKind.NOT_READY: 503,
    FailureKind.INTERNAL_ERROR: 500,
}


@dataclass(frozen=True, slots=True)
class Problem:
    """A failure as an HTTP answer tells it: what every renderer draws."""

    status: int
    kind: FailureKind
    title: str
    detail: str
    retry_after: int | None = None  # seconds worth waiting before trying again
    members: Mapping[str, Any] = field(default_factory=dict)  # RFC 9457's extensions
    allow: Sequence[str] = ()  # the methods the resource takes (a 405's)

    @property
    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.allow:
            headers["Allow"] = ", ".join(sorted(self.allow))
        if self.kind is FailureKind.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Bearer realm="gistcache"'
        return headers

    def to_json(self) -> dict[str, Any]:
        return {
            "type": f"urn:gistcache:problem:{self.kind}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.members,
        }


# how a (sub-)application draws a problem: problem+json, the page's HTML, GitHub's shape
Renderer = Callable[[web.Request, Problem], web.Response]


class WebFailure(Exception):
    """A failure of the web layer's own: its words (``detail``), how long to wait
    before trying again, and the ``members`` its problem adds (RFC 9457 extensions)."""

    kind: ClassVar[FailureKind]
    title: ClassVar[str]

    def __init__(self, detail: str, *, retry_after: int | None = None, **members: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.members = members


class MalformedJSON(WebFailure):
    kind = FailureKind.INVALID_JSON
    title = "Malformed JSON"


class BodyTooLarge(WebFailure):
    kind = FailureKind.BODY_TOO_LARGE
    title = "Request body too large"


class InvalidHost(WebFailure):
    """The ``Host`` header (or a trusted proxy's ``X-Forwarded-Host``) is no host name."""

    kind = FailureKind.INVALID_HOST
    title = "Bad Request"


class CrossSiteRequest(WebFailure):
    """A browser sent a write on another site's behalf."""

    kind = FailureKind.CROSS_SITE_REQUEST
    title = "Cross-site request"


class TooManyRequests(WebFailure):
    """The client sent more requests than it may in a window."""

    kind = FailureKind.TOO_MANY_REQUESTS
    title = "Too many requests"


class SharedRefreshStopped(WebFailure):
    """The refresh a request joined was another client's, stopped by that client's
    budget of GitHub requests."""

    kind = FailureKind.SHARED_REFRESH_STOPPED
    title = "Try again"


class SearchNotFound(WebFailure):
    kind = FailureKind.SEARCH_NOT_FOUND
    title = "No such search"


class SearchNotFinished(WebFailure):
    kind = FailureKind.SEARCH_NOT_FINISHED
    title = "Search not finished"


class NotCached(WebFailure):
    """What is asked for is read from the cache alone, and the cache has none of it."""

    kind = FailureKind.NOT_CACHED
    title = "Not cached"


class NotReady(WebFailure):
    """The server should get no traffic yet (its database does not take writes)."""

    kind = FailureKind.NOT_READY
    title = "Not ready"


class Unauthorized(WebFailure):
    """The watches API was asked without ``Authorization: Bearer <token>``."""

    kind = FailureKind.UNAUTHORIZED
    title = "API token required"


class Forbidden(WebFailure):
    """The bearer token given is none of ``GISTCACHE_API_TOKENS``."""

    kind = FailureKind.FORBIDDEN
    title = "Unknown API token"


class WatchesOff(WebFailure):
    """No API token is configured: the watches API is not there."""

    kind = FailureKind.NOT_FOUND
    title = "Not Found"


class WatchNotFound(WebFailure):
    """No watch by this id for this token (another token's is not there for it), or a
    feed token that is not the watch's."""

    kind = FailureKind.WATCH_NOT_FOUND
    title = "No such watch"
