"""Every ``web.AppKey`` (and ``web.RequestKey``) of the application, in one place."""

from __future__ import annotations

from aiohttp import web

from gistcache.github.client import GitHubClient
from gistcache.observability.metrics import Metrics
from gistcache.services.jobs import SearchJobs
from gistcache.services.listing import GistService
from gistcache.services.search import SearchService
from gistcache.settings import Settings
from gistcache.store.engine import Sessions
from gistcache.web.pages.assets import Assets

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", Sessions)
GITHUB = web.AppKey("github", GitHubClient)
SERVICE = web.AppKey("service", GistService)
SEARCHES = web.AppKey("searches", SearchService)
JOBS = web.AppKey("jobs", SearchJobs)
METRICS = web.AppKey("metrics", Metrics)
ASSETS = web.AppKey("assets", Assets)  # the page's static files

# per request, set by the middlewares and read when the response is prepared
REQUEST_ID = web.RequestKey("request_id", str)
RATE_LIMIT_HEADERS = web.RequestKey("rate_limit_headers", dict[str, str])
