"""Application factory: resources live in cleanup contexts, one per kind."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from gistcache import __version__
from gistcache.github import GitHubClient
from gistcache.jobs import SearchJobs
from gistcache.keys import ENGINE, GITHUB, HTTP, JOBS, SEARCHES, SERVICE, SESSIONS, SETTINGS
from gistcache.searching import SearchService
from gistcache.service import Clock, GistService, utcnow
from gistcache.settings import Settings
from gistcache.store.engine import create_engine, create_sessionmaker
from gistcache.web.handlers import MAX_BODY_BYTES
from gistcache.web.problems import request_context
from gistcache.web.routes import setup_routes

log = logging.getLogger(__name__)

USER_AGENT = f"gistcache/{__version__}"


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    app = web.Application(middlewares=[request_context], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_github)

    async def _service(app: web.Application) -> AsyncIterator[None]:
        service = GistService(
            app[SESSIONS],
            app[GITHUB],
            cache_ttl=settings.cache_ttl,
            not_found_ttl=settings.not_found_ttl,
            clock=clock,
        )
        searches = SearchService(
            app[SESSIONS],
            app[GITHUB],
            service,
            fetch_concurrency=settings.fetch_concurrency,
            max_file_bytes=settings.max_file_bytes,
        )
        jobs = SearchJobs(
            app[SESSIONS],
            searches,
            workers=settings.search_workers,
            result_ttl=settings.search_result_ttl,
            clock=clock,
        )
        app[SERVICE] = service
        app[SEARCHES] = searches
        app[JOBS] = jobs
        jobs.start()
        yield
        await jobs.stop()
        await service.close()

    app.cleanup_ctx.append(_service)
    setup_routes(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    app[ENGINE] = engine
    app[SESSIONS] = create_sessionmaker(engine)
    log.info("cache database: %s", settings.safe_database_url)
    yield
    await engine.dispose()


async def _github(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    timeout = aiohttp.ClientTimeout(
        total=settings.github_timeout, connect=settings.github_connect_timeout
    )
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[HTTP] = session
        app[GITHUB] = GitHubClient(
            session,
            settings.github_api_url,
            settings.github_token,
            user_agent=USER_AGENT,
            max_pages=settings.github_max_pages,
            raw_hosts=settings.raw_hosts,
            raw_read_timeout=max(settings.github_timeout, 30.0),
        )
        yield
