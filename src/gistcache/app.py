"""Application factory: the service's parts live in one cleanup context."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gistcache.components import components
from gistcache.keys import GITHUB, JOBS, METRICS, SEARCHES, SERVICE, SESSIONS, SETTINGS
from gistcache.services.listing import Clock, utcnow
from gistcache.settings import Settings
from gistcache.web.handlers import MAX_BODY_BYTES
from gistcache.web.problems import request_context
from gistcache.web.ratelimit import ClientRateLimit, parse_limit, parse_networks
from gistcache.web.render import render_search
from gistcache.web.routes import setup_routes


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    middlewares = [request_context]
    if settings.rate_limit:
        limiter = ClientRateLimit(
            parse_limit(settings.rate_limit), parse_networks(settings.trusted_proxies)
        )
        middlewares.append(limiter.middleware)
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings

    async def parts(app: web.Application) -> AsyncIterator[None]:
        async with components(settings, clock, render_search=render_search) as c:
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
