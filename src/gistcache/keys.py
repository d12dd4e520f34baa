"""Every ``web.AppKey`` of the application, in one place."""

from __future__ import annotations

from aiohttp import ClientSession, web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from gistcache.github import GitHubClient
from gistcache.jobs import SearchJobs
from gistcache.searching import SearchService
from gistcache.service import GistService
from gistcache.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
HTTP = web.AppKey("http", ClientSession)
GITHUB = web.AppKey("github", GitHubClient)
SERVICE = web.AppKey("service", GistService)
SEARCHES = web.AppKey("searches", SearchService)
JOBS = web.AppKey("jobs", SearchJobs)
