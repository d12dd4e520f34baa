"""Problems (RFC 9457): the errors a client can act on, and how domain failures map to
them. Shared by the HTTP layer and the search jobs, which store a failed job's problem."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import exc as sa_exc

from gistcache.domain.errors import PatternError, SearchesBusy, SearchTimeout, UserNotFound
from gistcache.github.client import (
    GitHubNotFound,
    GitHubRateLimited,
    GitHubTimeout,
    GitHubUnavailable,
)


class Problem(Exception):
    """An error a client can act on; rendered as problem+json by the middleware."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {
            "type": f"urn:gistcache:problem:{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Problem:
        known = {"type", "title", "status", "detail"}
        return cls(
            int(body["status"]),
            str(body["type"]).rsplit(":", 1)[-1],
            str(body["title"]),
            str(body["detail"]),
            **{k: v for k, v in body.items() if k not in known},
        )


def problem_for(exc: BaseException) -> Problem | None:
    """The problem a domain failure means to a client, or None for a bug."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, SearchTimeout):
        return Problem(504, "search-timeout", "Search took too long", str(exc))
    if isinstance(exc, SearchesBusy):
        return Problem(
            503,
            "searches-busy",
            "Too many searches",
            "as many searches as allowed are running; retry shortly, or submit a job "
            '("async": true), which waits its turn',
            headers={"Retry-After": "2"},
        )
    if isinstance(exc, PatternError):
        return Problem(400, "invalid-pattern", "Invalid pattern", str(exc), field="pattern")
    if isinstance(exc, UserNotFound | GitHubNotFound):
        return Problem(404, "user-not-found", "User not found", "GitHub has no user by this login")
    if isinstance(exc, GitHubRateLimited):
        return Problem(
            503,
            "github-rate-limited",
            "GitHub rate limit reached",
            "GitHub's API rate limit is exhausted and nothing is cached for this request",
            headers={"Retry-After": str(exc.retry_after)},
        )
    if isinstance(exc, GitHubTimeout):
        return Problem(504, "github-timeout", "GitHub timed out", "GitHub did not answer in time")
    if isinstance(exc, GitHubUnavailable):
        return Problem(502, "github-unavailable", "GitHub failed", str(exc))
    if _is_database_outage(exc):
        return Problem(
            503,
            "database-unavailable",
            "Database unavailable",
            "the cache database is not answering; try again shortly",
            headers={"Retry-After": "5"},
        )
    return None


def _is_database_outage(exc: BaseException) -> bool:
    """A lost or unreachable database, as opposed to a bug in a statement."""
    if isinstance(exc, sa_exc.DBAPIError):
        return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError) or (
            exc.connection_invalidated
        )
    # pool exhausted, refused or unresolvable host, connect timeout
    return isinstance(exc, sa_exc.TimeoutError | OSError | TimeoutError)
