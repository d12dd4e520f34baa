"""Problems (RFC 9457): a failure as an HTTP answer tells it, its status from the one
table (``web.failures.STATUS``), and its problem+json body and rendering."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gistcache.domain.errors import FailureKind
from gistcache.services.failures import Failure, describe
from gistcache.web.app_keys import REQUEST_ID
from gistcache.web.failures import STATUS, Problem

PROBLEM_TYPE = "application/problem+json"


def failure_problem(failure: Failure) -> Problem:
    """The problem a described failure is to a client."""
    return Problem(
        STATUS[failure.kind],
        failure.kind,
        failure.title,
        failure.detail,
        failure.retry_after,
        failure.members,
    )


def problem_for(exc: BaseException) -> Problem | None:
    """The problem a failure means to a client, or None for a bug."""
    failure = describe(exc)
    return None if failure is None else failure_problem(failure)


def internal_error(detail: str) -> Problem:
    """The opaque problem of a bug: nothing internal reaches the client."""
    kind = FailureKind.INTERNAL_ERROR
    return Problem(STATUS[kind], kind, "Internal Server Error", detail)


def problem_body(request: web.Request, problem: Problem) -> dict[str, Any]:
    """The problem's JSON for this request: where it happened and the request's id."""
    body = {**problem.to_json(), "instance": request.path}
    request_id = request.get(REQUEST_ID)
    if request_id:
        body["request_id"] = request_id
    return body


def problem_response(request: web.Request, problem: Problem) -> web.Response:
    """The problem as problem+json: the renderer of every application that names none."""
    return web.Response(
        status=problem.status,
        body=json.dumps(problem_body(request, problem)).encode(),
        content_type=PROBLEM_TYPE,
        headers=problem.headers,
    )


def from_http_exception(exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (no such route, method not allowed, ...) as problems, with
    the status aiohttp gave them."""
    allow = tuple(exc.allowed_methods) if isinstance(exc, web.HTTPMethodNotAllowed) else ()
    if exc.status == 404:
        kind, detail = FailureKind.NOT_FOUND, "no such resource"
    elif exc.status == 405:
        kind, detail = FailureKind.METHOD_NOT_ALLOWED, "this method is not allowed here"
    else:
        kind, detail = FailureKind.HTTP_ERROR, exc.reason
    return Problem(exc.status, kind, exc.reason, detail, allow=allow)
