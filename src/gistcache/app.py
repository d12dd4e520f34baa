"""Application factory: the service's parts live in one cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gistcache.components import components
from gistcache.keys import GITHUB, JOBS, METRICS, SEARCHES, SERVICE, SESSIONS, SETTINGS
from gistcache.services.listing import Clock, utcnow
from gistcache.settings import Settings
from gistcache.web.api.routes import setup_routes
from gistcache.web.http import MAX_BODY_BYTES
from gistcache.web.middleware import observe, problems, request_id, stamp_headers
from gistcache.web.problems import describe_job_failure
from gistcache.web.ratelimit import ClientRateLimit, parse_limit, parse_networks


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    # outermost first: the id names the request, observe sees the final answer
    middlewares = [request_id, observe, problems]
    if settings.rate_limit:
        limiter = ClientRateLimit(
            parse_limit(settings.rate_limit), parse_networks(settings.trusted_proxies)
        )
        middlewares.append(limiter.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app.on_response_prepare.append(stamp_headers)
    app[SETTINGS] = settings

    async def parts(app: web.Application) -> AsyncIterator[None]:
        async with components(settings, clock, describe_failure=describe_job_failure) as c:
            app[SESSIONS] = c.sessions
            app[METRICS] = c.metrics
            app[GITHUB] = c.github
            app[SERVICE] = c.listing
            app[SEARCHES] = c.searches
            app[JOBS] = c.jobs
            c.jobs.start()
            yield

    app.cleanup_ctx.append(parts)
    setup_routes(app)
    return app
