"""Application factory: the service's parts live in one cleanup context; ``serve`` runs
the application on a socket until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Handler

from gistcache.components import components
from gistcache.domain.clock import Clock, utcnow
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
    METRICS,
    PROFILES,
    SEARCHES,
    SESSIONS,
    SETTINGS,
)
from gistcache.web.ghcompat.app import create_ghcompat
from gistcache.web.ghcompat.handlers import GHCOMPAT_PREFIX
from gistcache.web.http import MAX_BODY_BYTES
from gistcache.web.middleware import (
    observe,
    problems,
    request_id,
    same_site_writes,
    stamp_headers,
)
from gistcache.web.pages.routes import setup_pages
from gistcache.web.problems import describe_job_failure
from gistcache.web.protocol import ProblemRunner
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
    """The requests being handled, so that shutdown can wait for them, then cancel them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[object]] = set()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - a handler always runs in a task
            return await handler(request)
        self._tasks.add(task)
        try:
            return await handler(request)
        finally:
            self._tasks.discard(task)

    async def drain(self, grace: float) -> int:
        """Wait up to ``grace`` seconds for the running requests; cancel those still running
        and return how many there were."""
        pending = {t for t in self._tasks if not t.done()}
        if pending and grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            task.cancel()
        return len(pending)


def create_app(
    settings: Settings, *, clock: Clock = utcnow, stopping: Stopping | None = None
) -> web.Application:
    in_flight = InFlight()
    # outermost first: shutdown can find every request, the id names it, observe sees
    # the final answer
    middlewares = [in_flight.middleware, request_id, observe, problems, same_site_writes]
    if settings.rate_limit is not None:
        limiter = ClientRateLimit(settings.rate_limit, settings.trusted_proxies)
        middlewares.append(limiter.middleware)
    payer_for: PayerFor | None = None
    if settings.client_github_budget is not None:
        budget = ClientGitHubBudget(settings.client_github_budget, settings.trusted_proxies)
        middlewares.append(budget.middleware)
        # a search job is charged to the client that submitted it, on the same ledger
        payer_for = budget.account
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(stamp_headers)
    app[SETTINGS] = settings
    app[CLOCK] = clock
    stopping = stopping or Stopping()
    app[ANSWERS] = AnswersInFlight(settings.answers_in_flight_mb * 1024 * 1024)

    async def parts(app: web.Application) -> AsyncIterator[None]:
        async with components(
            settings,
            clock,
            describe_failure=describe_job_failure,
            render_search=search_json,
            payer_for=payer_for,
        ) as c:
            app[SESSIONS] = c.sessions
            app[METRICS] = c.metrics
            app[GITHUB] = c.github
            app[LISTING] = c.listing
            app[SEARCHES] = c.searches
            app[JOBS] = c.jobs
            app[GISTS] = c.gists
            app[PROFILES] = c.profiles
            c.jobs.start()
            yield

    async def log_queue(app: web.Application) -> AsyncIterator[None]:
        # log lines are formatted and written by a thread, off the event loop; the
        # first part started, the last stopped, so that shutdown's lines are written
        with queued():
            yield

    app.cleanup_ctx.append(log_queue)
    app.cleanup_ctx.append(parts)

    async def drain(app: web.Application) -> None:
        # runs once the listener is closed, before aiohttp's own (much longer) wait
        cancelled = await in_flight.drain(stopping.left(settings.shutdown_timeout))
        if cancelled:
            log.warning(
                "cancelled %d request(s) still running after %g s",
                cancelled,
                settings.shutdown_timeout,
            )
        # a running job goes back to the queue; then the calls to GitHub, tasks of their own
        # shared by requests and jobs, are ended too
        try:
            async with asyncio.timeout(CANCEL_GRACE):
                await app[JOBS].stop()
                await asyncio.gather(app[LISTING].close(), app[SEARCHES].close())
        except TimeoutError:
            log.warning("calls to GitHub did not end within %g s of being cancelled", CANCEL_GRACE)

    app.on_shutdown.append(drain)
    setup_pages(app)  # / and /-/...: before the API's catch-all /{username}
    setup_routes(app)
    # GitHub's own API for gists, under GitHub Enterprise's base path
    app.add_subapp(GHCOMPAT_PREFIX, create_ghcompat())
    return app


# aiohttp closes a connection that has not sent a whole request (line and headers) this
# long after it opened or after its last answer, and an idle keep-alive one: web.run_app's
# value. Longer than a load balancer's idle timeout (60 s on most), or the balancer may
# reuse a connection the server is closing.
KEEPALIVE_TIMEOUT = 75.0


def serve(
    app: web.Application,
    sock: socket.socket,
    *,
    loop: asyncio.AbstractEventLoop,
    shutdown_timeout: float,
) -> None:
    """Serve ``app`` on ``sock`` in ``loop`` until ``web.GracefulExit`` is raised in it
    (the command line's signal handler does), as ``web.run_app`` does, but through a
    runner that answers unparsable requests with a problem (web/protocol.py), which
    run_app cannot be given. The loop is closed on the way out."""

    async def serve_until_cancelled() -> None:
        runner = ProblemRunner(
            app,
            handle_signals=False,  # the caller's handler raises GracefulExit in the loop
            # the app's own shutdown waits GISTCACHE_SHUTDOWN_TIMEOUT, then cancels what
            # runs; aiohttp's wait (twice this, before it cancels anything) is a backstop
            shutdown_timeout=shutdown_timeout,
            keepalive_timeout=KEEPALIVE_TIMEOUT,
            access_log=None,
        )
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            await asyncio.Event().wait()  # until cancelled, after a signal
        finally:
            await runner.cleanup()

    asyncio.set_event_loop(loop)
    main = loop.create_task(serve_until_cancelled())
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        # as run_app: the server's own cleanup first (it drains the requests), then
        # whatever task is left
        if not main.done():
            main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(main)
        _cancel_all(loop)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        asyncio.set_event_loop(None)


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
