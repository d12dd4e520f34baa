"""RFC 9457 problem details, and the middlewares that turn every failure into one."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy import exc as sa_exc

from gistcache.github import GitHubNotFound, GitHubRateLimited, GitHubTimeout, GitHubUnavailable
from gistcache.service import UserNotFound

log = logging.getLogger("gistcache.web")
access_log = logging.getLogger("gistcache.access")

PROBLEM_TYPE = "application/problem+json"
REQUEST_ID = web.RequestKey("request_id", str)
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)


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


def problem_response(request: web.Request, problem: Problem) -> web.Response:
    body: dict[str, Any] = {
        "type": f"urn:gistcache:problem:{problem.slug}",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
        **problem.extra,
    }
    request_id = request.get(REQUEST_ID)
    if request_id:
        body["request_id"] = request_id
    return web.Response(
        status=problem.status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_TYPE,
        headers=problem.headers,
    )


def _from_exception(exc: BaseException) -> Problem | None:
    if isinstance(exc, Problem):
        return exc
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


def _from_http_exception(exc: web.HTTPException) -> Problem:
    headers = {}
    if isinstance(exc, web.HTTPMethodNotAllowed):
        headers["Allow"] = ", ".join(sorted(exc.allowed_methods))
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status, "http-error")
    detail = {
        404: "no such resource",
        405: "this method is not allowed here",
    }.get(exc.status, exc.reason)
    return Problem(exc.status, slug, exc.reason, detail, headers=headers)


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id (the client's ``X-Request-ID`` if sane), log one line for it,
    and render any failure as a problem; nothing internal reaches the client."""
    offered = request.headers.get("X-Request-ID", "")
    request_id = offered if _REQUEST_ID_RE.fullmatch(offered) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            exc.headers["X-Request-ID"] = request_id
            raise
        response = problem_response(request, _from_http_exception(exc))
    except Exception as exc:
        problem = _from_exception(exc)
        if problem is None:
            log.exception(
                "unhandled error in %s %s [%s]",
                request.method,
                request.rel_url.raw_path,
                request_id,
            )
            problem = Problem(
                500, "internal-error", "Internal Server Error", "an unexpected error occurred"
            )
        elif problem.status in (502, 503, 504):
            log.warning("%s %s [%s]: %s", request.method, request.rel_url.raw_path, request_id, exc)
        response = problem_response(request, problem)
    response.headers["X-Request-ID"] = request_id
    route = request.match_info.route.resource
    access_log.info(
        "%s %s route=%s status=%d duration_ms=%.1f request_id=%s cache=%s",
        request.method,
        request.rel_url.raw_path[:200],  # still percent-encoded: no control characters
        route.canonical if route is not None else "-",
        response.status,
        (time.perf_counter() - started) * 1000,
        request_id,
        response.headers.get("X-Cache", "-"),
    )
    return response
