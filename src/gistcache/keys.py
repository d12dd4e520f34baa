"""Every ``web.AppKey`` of the application, in one place."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gistcache.github import GitHubClient
from gistcache.jobs import SearchJobs
from gistcache.metrics import Metrics
from gistcache.searching import SearchService
from gistcache.service import GistService
from gistcache.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
GITHUB = web.AppKey("github", GitHubClient)
SERVICE = web.AppKey("service", GistService)
SEARCHES = web.AppKey("searches", SearchService)
JOBS = web.AppKey("jobs", SearchJobs)
METRICS = web.AppKey("metrics", Metrics)
