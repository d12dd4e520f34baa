"""RFC 9457 problem details, and the middlewares that turn every failure into one."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.errors import Problem, problem_for
from gistcache.keys import METRICS

log = logging.getLogger("gistcache.web")
access_log = logging.getLogger("gistcache.access")

PROBLEM_TYPE = "application/problem+json"
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REQUEST_ID = web.RequestKey("request_id", str)
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)


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
        problem = problem_for(exc)
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
    resource = request.match_info.route.resource
    # unmatched paths share one label: random URLs must not grow the metrics
    route = resource.canonical if resource is not None else "unmatched"
    duration = time.perf_counter() - started
    metrics = request.app.get(METRICS)
    if metrics is not None:
        # any token is a method to aiohttp: unknown ones share a label, as paths do
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.http_requests.labels(method, route, str(response.status)).inc()
        metrics.http_latency.labels(method, route).observe(duration)
        cache = response.headers.get("X-Cache")
        if cache is not None:
            metrics.cache_results.labels(cache).inc()
    fields = {
        "request_id": request_id,
        "method": request.method,
        "path": request.rel_url.raw_path[:200],  # still percent-encoded: no control characters
        "route": route,
        "status": response.status,
        "duration_ms": round(duration * 1000, 1),
        "cache": response.headers.get("X-Cache"),
    }
    access_log.info(
        "%s %s route=%s status=%d duration_ms=%.1f request_id=%s cache=%s",
        fields["method"],
        fields["path"],
        route,
        response.status,
        fields["duration_ms"],
        request_id,
        fields["cache"] or "-",
        extra={"fields": fields},
    )
    return response
