"""Problems (RFC 9457): the errors a client can act on, how domain failures map to them,
and their problem+json rendering."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gistcache.services.failures import Failure, describe
from gistcache.web.app_keys import REQUEST_ID

PROBLEM_TYPE = "application/problem+json"


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


# the HTTP status of each kind of failure
STATUS = {
    "internal-error": 500,
    "search-timeout": 504,
    "searches-busy": 503,
    "too-many-jobs": 429,
    "job-queue-full": 503,
    "answers-busy": 503,
    "invalid-pattern": 400,
    "user-not-found": 404,
    "gist-not-found": 404,
    "github-rate-limited": 503,
    "github-budget-spent": 429,
    "github-reserve": 503,
    "github-timeout": 504,
    "github-unavailable": 502,
    "database-unavailable": 503,
}


def problem_for(exc: BaseException) -> Problem | None:
    """The problem a failure means to a client, or None for a bug."""
    if isinstance(exc, Problem):
        return exc
    failure = describe(exc)
    return None if failure is None else failure_problem(failure)


def failure_problem(failure: Failure) -> Problem:
    """The problem a described failure means to a client."""
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
    extra = {"field": failure.field} if failure.field is not None else {}
    return Problem(
        STATUS[failure.kind], failure.kind, failure.title, failure.detail, headers=headers, **extra
    )


def internal_error(detail: str) -> Problem:
    """The opaque problem of a bug: nothing internal reaches the client."""
    return Problem(500, "internal-error", "Internal Server Error", detail)


def problem_response(request: web.Request, problem: Problem) -> web.Response:
    body = {**problem.to_json(), "instance": request.path}
    request_id = request.get(REQUEST_ID)
    if request_id:
        body["request_id"] = request_id
    return web.Response(
        status=problem.status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_TYPE,
        headers=problem.headers,
    )


def from_http_exception(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (no such route, method not allowed, ...) as problems."""
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status, "http-error")
    detail = {
        404: "no such resource",
        405: "this method is not allowed here",
    }.get(exc.status, exc.reason)
    return Problem(exc.status, slug, exc.reason, detail, headers=headers)
