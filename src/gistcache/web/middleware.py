"""The middleware every request passes first, in one layer: ``front_door`` counts the
request among those running (for the shutdown's drain), names it (its id), refuses a
write a browser sent from another site, turns any failure into a problem answer, and
counts and logs the answer. One layer, not one per concern: each layer is a coroutine and
a partial aiohttp calls through on every request, which the cached list (a few
microseconds of its own) paid five times over (docs/performance.md). The client rate
limit and GitHub budget (ratelimit.py) run inside it.

Headers every response carries are set by ``stamp_headers`` when the response is
prepared, so that a streamed answer, whose headers leave before its handler returns,
carries them too."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

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


def front_door(running: set[asyncio.Task[Any]]) -> Middleware:
    """The one outermost middleware; ``running`` holds the tasks of the requests being
    handled while they are (``app.InFlight``)."""

    @web.middleware
    async def front(request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is not None:  # always: a handler runs in a task
            running.add(task)
        try:
            request[REQUEST_ID] = _request_id(request)
            started = time.perf_counter()
            try:
                if request.method not in SAFE_METHODS and not _from_this_site(request):
                    raise CrossSiteRequest(CROSS_SITE_DETAIL)
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = _renderer(request)(request, from_http_exception(exc))
            except Exception as exc:
                response = _problem(request, exc)
            except asyncio.CancelledError:
                # the client went away (aiohttp cancels its handler) or shutdown cancelled
                # the request: still one access line and one count, as nginx's 499
                _observe(request, CLIENT_CLOSED, None, time.perf_counter() - started)
                raise
            duration = time.perf_counter() - started
            _observe(request, response.status, response.headers.get("X-Cache"), duration)
            return response
        finally:
            if task is not None:
                running.discard(task)

    return front


def _request_id(request: web.Request) -> str:
    """The client's ``X-Request-ID`` if sane, else a new one."""
    offered = request.headers.get("X-Request-ID")
    if offered is not None and _REQUEST_ID_RE.fullmatch(offered):
        return offered
    return _new_ids.take()


class _NewIds:
    """New request ids: 128 random bits each in 32 hex digits (as ``uuid4().hex``), from
    the operating system's random source as ``secrets.token_hex`` draws them, but
    ``BATCH`` at a time: one ``getrandom`` call per batch, not one per request (a
    cached list's answer is a few microseconds of its own). A forked child draws anew,
    never its parent's ids."""

    BATCH = 256

    def __init__(self) -> None:
        self._ids: list[str] = []
        os.register_at_fork(after_in_child=self._ids.clear)

    def take(self) -> str:
        if not self._ids:
            drawn = secrets.token_hex(16 * self.BATCH)
            self._ids += [drawn[i : i + 32] for i in range(0, len(drawn), 32)]
        return self._ids.pop()


_new_ids = _NewIds()


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the request id, and the client's rate-limit budget."""
    rid = request.get(REQUEST_ID)
    if rid is not None:
        response.headers["X-Request-ID"] = rid
    limits = request.get(RATE_LIMIT_HEADERS)
    if limits:
        response.headers.update(limits)


def _renderer(request: web.Request) -> Renderer:
    """How the innermost application the request was routed to renders failures."""
    for app in reversed(request.match_info.apps):
        render = app.get(ERROR_RENDERER)
        if render is not None:
            return render
    return problem_response


def _problem(request: web.Request, exc: Exception) -> web.StreamResponse:
    """The one catch-all: any failure becomes a problem, which the sub-application the
    request was routed to renders (problem+json unless it says otherwise); a bug is
    logged with the request id and answered with an opaque 500."""
    rid, path = request.get(REQUEST_ID), request.rel_url.raw_path
    problem = problem_for(exc)
    if problem is None:  # called in the except clause: the traceback is logged
        log.exception("unhandled error in %s %s [%s]", request.method, path, rid)
        problem = internal_error("an unexpected error occurred")
    elif problem.status in (502, 503, 504):
        log.warning("%s %s [%s]: %s", request.method, path, rid, exc)
    return _renderer(request)(request, problem)


# methods that change nothing: a browser may send them from any site (links, images)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values of a request this site's own pages made, or the user did
# (typed, bookmarked): not "same-site" (another subdomain may be anyone's) nor
# "cross-site"
_OWN_FETCH = frozenset({"same-origin", "none"})


# A write (POST, ...) that a browser sent on another site's behalf is refused: a form or
# a ``text/plain`` fetch any page can make its visitors send (it needs no CORS
# preflight), which would spend this server's GitHub budget and queue jobs in their
# name. Browsers say where a request comes from in ``Sec-Fetch-Site``, older ones in
# ``Origin``; a client that sends neither (curl, scripts, the GitHub libraries) is not
# a browser acting for a page, and is served. (As Go's CrossOriginProtection decides.)
CROSS_SITE_DETAIL = (
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


# the status told of a request whose handler was cancelled before it answered (nginx's)
CLIENT_CLOSED = 499
ACCESS_FORMAT = "%s %s route=%s status=%d duration_ms=%.1f request_id=%s cache=%s"


def _observe(request: web.Request, status: int, cache: str | None, duration: float) -> None:
    """Count the request in the metrics and log one access line for it (the line is
    formatted and written off the event loop: observability.logs.queued)."""
    resource = request.match_info.route.resource
    # unmatched paths share one label: random URLs must not grow the metrics
    route = resource.canonical if resource is not None else "unmatched"
    metrics = request.app.get(METRICS)
    # any token is a method to aiohttp: unknown ones share a label, as paths do
    method = request.method if request.method in KNOWN_METHODS else "other"
    if metrics is not None:
        metrics.http.answered(method, route, status, cache, duration)
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
