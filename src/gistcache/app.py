"""Application factory: the middlewares, the service's parts in one cleanup context, the
shutdown that drains the requests, and the routes of every surface. ``serve.py`` runs it
as a process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from gistcache.components import components
from gistcache.domain.clock import Clock, utcnow
from gistcache.mcp.http import setup_mcp
from gistcache.observability.logs import queued
from gistcache.services.jobs import PayerFor
from gistcache.settings import Settings
from gistcache.web.answers import AnswersInFlight
from gistcache.web.api.render import search_json
from gistcache.web.api.routes import setup_routes
from gistcache.web.app_keys import (
    ANSWERS,
    CLOCK,
    GISTS,
    GITHUB,
    JOBS,
    LISTING,
    MANY,
    METRICS,
    PROFILES,
    SEARCHES,
    SESSIONS,
    SETTINGS,
    WATCHES,
    WEBHOOKS,
)
from gistcache.web.ghcompat.app import create_ghcompat
from gistcache.web.ghcompat.handlers import GHCOMPAT_PREFIX
from gistcache.web.http import MAX_BODY_BYTES
from gistcache.web.middleware import front_door, stamp_headers
from gistcache.web.pages.routes import setup_pages
from gistcache.web.ratelimit import ClientGitHubBudget, ClientRateLimit

log = logging.getLogger(__name__)

# after the cancelled requests: what the process may still take to wind down
CANCEL_GRACE = 0.5


class Stopping:
    """When the process was told to stop (``time.monotonic()``; set by the signal handler):
    the shutdown's grace counts from the signal, not from when a busy event loop gets round
    to the shutdown (0.3 to 0.9 s later under load, measured)."""

    def __init__(self) -> None:
        self.signalled_at: float | None = None

    def left(self, seconds: float) -> float:
        """What is left of ``seconds`` counted from the signal (all of it before one)."""
        if self.signalled_at is None:
            return seconds
        return max(0.0, seconds - (time.monotonic() - self.signalled_at))


class InFlight:
    """The requests being handled, so that shutdown can wait for them, then cancel them.

    aiohttp waits for the running handlers itself, but only after the app's
    ``on_shutdown`` has run (``BaseRunner.cleanup``: ``app.shutdown()``, then
    ``Server.shutdown(timeout)``), and only then cancels them. The app's shutdown must
    find the requests finished or cancelled before it stops the job workers and the calls
    to GitHub they share, so it keeps this count of its own."""

    def __init__(self) -> None:
        # filled and emptied by the outermost middleware (web.middleware.front_door)
        self.tasks: set[asyncio.Task[Any]] = set()

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for the running requests; cancel those still running
        and return how many there were."""
        pending = {t for t in self.tasks if not t.done()}
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        return len(pending)


def create_app(
    settings: Settings, *, clock: Clock = utcnow, stopping: Stopping | None = None
) -> web.Application:
    in_flight = InFlight()
    middlewares, payer_for = _middlewares(settings, in_flight)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(stamp_headers)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[ANSWERS] = AnswersInFlight(settings.answers_in_flight_mb * 1024 * 1024)
    # the log's queue is the first part started and the last stopped, so that the
    # shutdown's lines are written
    app.cleanup_ctx.append(_log_queue)
    app.cleanup_ctx.append(_parts(settings, clock, payer_for))
    app.on_shutdown.append(_drain(in_flight, settings.shutdown_timeout, stopping or Stopping()))
    # the Model Context Protocol at /mcp: its transport starts after the parts above
    setup_mcp(app)
    setup_pages(app)  # / and /-/...: before the API's catch-all /{username}
    setup_routes(app)
    # GitHub's own API for gists, under GitHub Enterprise's base path
    app.add_subapp(GHCOMPAT_PREFIX, create_ghcompat())
    return app


def _middlewares(
    settings: Settings, in_flight: InFlight
) -> tuple[list[Middleware], PayerFor | None]:
    """The middlewares, outermost first (the front door: the request counted for the
    shutdown, its id, the cross-site check, problems, metrics and the access log; then
    the client limits, whose refusals it renders), and whom a search job is charged to."""
    middlewares: list[Middleware] = [front_door(in_flight.tasks)]
    if settings.rate_limit is not None:
        limiter = ClientRateLimit(settings.rate_limit, settings.trusted_proxies)
        middlewares.append(limiter.middleware)
    payer_for: PayerFor | None = None
    if settings.client_github_budget is not None:
        budget = ClientGitHubBudget(settings.client_github_budget, settings.trusted_proxies)
        middlewares.append(budget.middleware)
        # a search job is charged to the client that submitted it, on the same ledger
        payer_for = budget.account
    return middlewares, payer_for


async def _log_queue(_app: web.Application) -> AsyncIterator[None]:
    # log lines are formatted and written by a thread, off the event loop
    with queued():
        yield


def _parts(
    settings: Settings, clock: Clock, payer_for: PayerFor | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The service's parts, under the app's keys while it runs, the job workers started."""

    async def parts(app: web.Application) -> AsyncIterator[None]:
        async with components(settings, clock, payer_for=payer_for) as c:
            app[SESSIONS] = c.sessions
            app[METRICS] = c.metrics
            app[GITHUB] = c.github
            app[LISTING] = c.listing
            app[SEARCHES] = c.searches
            app[JOBS] = c.jobs
            app[MANY] = c.many
            app[GISTS] = c.gists
            app[PROFILES] = c.profiles
            app[WATCHES] = c.watches
            app[WEBHOOKS] = c.webhooks
            c.jobs.start(render=search_json)
            if settings.api_tokens:  # without them there are no watches to run
                c.watches.start()
                c.webhooks.start()
            yield

    return parts


def _drain(
    in_flight: InFlight, shutdown_timeout: float, stopping: Stopping
) -> Callable[[web.Application], Awaitable[None]]:
    """The app's shutdown: it runs once the listener is closed, before aiohttp's own
    (much longer) wait."""

    async def drain(app: web.Application) -> None:
        cancelled = await in_flight.drain(stopping.left(shutdown_timeout))
        if cancelled:
            log.warning(
                "cancelled %d request(s) still running after %g s", cancelled, shutdown_timeout
            )
        # a running job goes back to the queue; then the calls to GitHub, tasks of their own
        # shared by requests and jobs, are ended too
        try:
            async with asyncio.timeout(CANCEL_GRACE):
                await app[JOBS].stop()
                await app[WATCHES].stop()
                await app[WEBHOOKS].close()
                await asyncio.gather(app[LISTING].close(), app[SEARCHES].close())
        except TimeoutError:
            log.warning("calls to GitHub did not end within %g s of being cancelled", CANCEL_GRACE)

    return drain
