"""The middlewares every request passes, outermost first: ``request_id`` names the
request, ``observe`` counts it and logs its line, ``problems`` turns any failure into a
problem+json answer, ``same_site_writes`` refuses writes a browser sent from another site
(the client rate limit, in ratelimit.py, runs inside them).

Headers every response carries are set by ``stamp_headers`` when the response is
prepared, so that a streamed answer, whose headers leave before its handler returns,
carries them too."""

from __future__ import annotations

import logging
import re
import secrets
import time
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.observability.logs import log_access
from gistcache.web.app_keys import ERROR_RENDERER, METRICS, RATE_LIMIT_HEADERS, REQUEST_ID, SETTINGS
from gistcache.web.failures import CrossSiteRequest, Renderer
from gistcache.web.ghcompat.links import public_origin
from gistcache.web.problems import (
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
    # a new id: 128 random bits in 32 hex digits, as uuid4().hex but without the object
    request[REQUEST_ID] = offered if _REQUEST_ID_RE.fullmatch(offered) else secrets.token_hex(16)
    return await handler(request)


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the request id, and the client's rate-limit budget."""
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers["X-Request-ID"] = rid
    response.headers.update(request.get(RATE_LIMIT_HEADERS, {}))


def _renderer(request: web.Request) -> Renderer:
    """How the innermost application the request was routed to renders failures."""
    for app in reversed(request.match_info.apps):
        render = app.get(ERROR_RENDERER)
        if render is not None:
            return render
    return problem_response


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one catch-all: any failure becomes a problem, which the sub-application the
    request was routed to renders (problem+json unless it says otherwise); a bug is
    logged with the request id and answered with an opaque 500."""
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


# methods that change nothing: a browser may send them from any site (links, images)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of a request this site's own pages made, or the user did
# (typed, bookmarked): not "same-site" (another subdomain may be anyone's) nor
# "cross-site"
_OWN_FETCH = frozenset({"same-origin", "none"})


@web.middleware
async def same_site_writes(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a write (POST, ...) that a browser sent on another site's behalf: a form or
    a ``text/plain`` fetch any page can make its visitors send (it needs no CORS
    preflight), which would spend this server's GitHub budget and queue jobs in their
    name. Browsers say where a request comes from in ``Sec-Fetch-Site``, older ones in
    ``Origin``; a client that sends neither (curl, scripts, the GitHub libraries) is not
    a browser acting for a page, and is served. (As Go's CrossOriginProtection decides.)"""
    if request.method in SAFE_METHODS or _from_this_site(request):
        return await handler(request)
    raise CrossSiteRequest(
        "a browser sent this request from another site's page: writes are accepted "
        "from this site's own pages and from clients that are not browsers"
    )


def _from_this_site(request: web.Request) -> bool:
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.strip().lower() in _OWN_FETCH
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    # an Origin of "null" (a sandboxed frame, a file) names no site: not this one
    ours = urlsplit(public_origin(request, request.config_dict[SETTINGS].trusted_proxies))
    return urlsplit(origin.strip()).netloc.lower() == ours.netloc


ACCESS_FORMAT = "%s %s route=%s status=%d duration_ms=%.1f request_id=%s cache=%s"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request in the metrics and log one access line for it (the line is
    formatted and written off the event loop: observability.logs.queued)."""
    started = time.perf_counter()
    response = await handler(request)
    resource = request.match_info.route.resource
    # unmatched paths share one label: random URLs must not grow the metrics
    route = resource.canonical if resource is not None else "unmatched"
    duration = time.perf_counter() - started
    cache = response.headers.get("X-Cache")
    metrics = request.app.get(METRICS)
    # any token is a method to aiohttp: unknown ones share a label, as paths do
    method = request.method if request.method in KNOWN_METHODS else "other"
    status = response.status
    if metrics is not None:
        requests, latency = metrics.http_children(method, route, status)
        requests.inc()
        latency.observe(duration)
        if cache is not None:
            metrics.cache_result(cache).inc()
    if access_log.isEnabledFor(logging.INFO):
        rid = request.get(REQUEST_ID)
        path = request.rel_url.raw_path[:200]  # still percent-encoded: no control characters
        duration_ms = round(duration * 1000, 1)
        fields = {
            "request_id": rid,
            "method": request.method,
            "path": path,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "cache": cache,
        }
        log_access(
            access_log,
            ACCESS_FORMAT,
            (request.method, path, route, status, duration_ms, rid, cache or "-"),
            fields,
        )
    return response
