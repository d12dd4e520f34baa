"""The middlewares every request passes, outermost first: ``request_id`` names the
request, ``observe`` counts it and logs its line, ``problems`` turns any failure into a
problem+json answer (the client rate limit, in ratelimit.py, runs inside it).

Headers every response carries are set by ``stamp_headers`` when the response is
prepared, so that a streamed answer, whose headers leave before its handler returns,
carries them too."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.keys import ERROR_RENDERER, METRICS, RATE_LIMIT_HEADERS, REQUEST_ID
from gistcache.web.problems import (
    Problem,
    from_http_exception,
    internal_error,
    problem_for,
    problem_response,
)

log = logging.getLogger("gistcache.web")
access_log = logging.getLogger("gistcache.access")

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}", re.ASCII)


@web.middleware
async def request_id(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give each request an id: the client's ``X-Request-ID`` if sane, else a new one."""
    offered = request.headers.get("X-Request-ID", "")
    request[REQUEST_ID] = offered if _REQUEST_ID_RE.fullmatch(offered) else uuid.uuid4().hex
    return await handler(request)


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the request id, and the client's rate-limit budget."""
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers["X-Request-ID"] = rid
    response.headers.update(request.get(RATE_LIMIT_HEADERS, {}))


def _renderer(request: web.Request) -> Callable[[web.Request, Problem], web.Response]:
    """How the innermost application the request was routed to renders failures."""
    for app in reversed(request.match_info.apps):
        render = app.get(ERROR_RENDERER)
        if render is not None:
            return render
    return problem_response


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render any failure as a problem (or as the sub-application answering the request
    renders its failures); nothing internal reaches the client."""
    render = _renderer(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return render(request, from_http_exception(exc))
    except Exception as exc:
        rid = request.get(REQUEST_ID)
        problem = problem_for(exc)
        if problem is None:
            log.exception(
                "unhandled error in %s %s [%s]", request.method, request.rel_url.raw_path, rid
            )
            problem = internal_error("an unexpected error occurred")
        elif problem.status in (502, 503, 504):
            log.warning("%s %s [%s]: %s", request.method, request.rel_url.raw_path, rid, exc)
        return render(request, problem)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request in the metrics and log one access line for it."""
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    # unmatched paths share one label: random URLs must not grow the metrics
    route = resource.canonical if resource is not None else "unmatched"
    duration = time.perf_counter() - started
    cache = response.headers.get("X-Cache")
    metrics = request.app.get(METRICS)
    if metrics is not None:
        # any token is a method to aiohttp: unknown ones share a label, as paths do
        method = request.method if request.method in KNOWN_METHODS else "other"
        metrics.http_requests.labels(method, route, str(response.status)).inc()
        metrics.http_latency.labels(method, route).observe(duration)
        if cache is not None:
            metrics.cache_results.labels(cache).inc()
    rid = request.get(REQUEST_ID)
    fields = {
        "request_id": rid,
        "method": request.method,
        "path": request.rel_url.raw_path[:200],  # still percent-encoded: no control characters
        "route": route,
        "status": response.status,
        "duration_ms": round(duration * 1000, 1),
        "cache": cache,
    }
    access_log.info(
        "%s %s route=%s status=%d duration_ms=%.1f request_id=%s cache=%s",
        fields["method"],
        fields["path"],
        route,
        response.status,
        fields["duration_ms"],
        rid,
        cache or "-",
        extra={"fields": fields},
    )
    return response
