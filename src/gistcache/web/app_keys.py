"""Every ``web.AppKey`` (and ``web.RequestKey``) of the application, in one place."""

from __future__ import annotations

from aiohttp import web

from gistcache.domain.clock import Clock
from gistcache.github.client import GitHubClient
from gistcache.observability.metrics import Metrics
from gistcache.services.delivery import WebhookSender
from gistcache.services.gists import GistReader
from gistcache.services.jobs import SearchJobs
from gistcache.services.listing import ListingService
from gistcache.services.many import ManySearch
from gistcache.services.profiles import UserProfiles
from gistcache.services.search import SearchService
from gistcache.services.watches import WatchService
from gistcache.settings import Settings
from gistcache.store.engine import Sessions
from gistcache.web.answers import AnswersInFlight
from gistcache.web.budget import ClientAccount
from gistcache.web.failures import Renderer
from gistcache.web.pages.assets import Assets

SETTINGS = web.AppKey("settings", Settings)
SESSIONS = web.AppKey("sessions", Sessions)
GITHUB = web.AppKey("github", GitHubClient)
LISTING = web.AppKey("listing", ListingService)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")  # what every handler reads the time from
SEARCHES = web.AppKey("searches", SearchService)
JOBS = web.AppKey("jobs", SearchJobs)
MANY = web.AppKey("many", ManySearch)  # searches of several users' gists
GISTS = web.AppKey("gists", GistReader)
PROFILES = web.AppKey("profiles", UserProfiles)  # GitHub's users, for /api/v3
WATCHES = web.AppKey("watches", WatchService)
WEBHOOKS = web.AppKey("webhooks", WebhookSender)  # watches' webhook deliveries
METRICS = web.AppKey("metrics", Metrics)
ASSETS = web.AppKey("assets", Assets)  # the page's static files
ANSWERS = web.AppKey("answers", AnswersInFlight)  # the bytes large answers hold meanwhile

# how a (sub-)application renders the failures the root's problems middleware catches on
# its routes: problem+json when it names none
ERROR_RENDERER: web.AppKey[Renderer] = web.AppKey("error_renderer")

# per request, set by the middlewares and read when the response is prepared
REQUEST_ID = web.RequestKey("request_id", str)
RATE_LIMIT_HEADERS = web.RequestKey("rate_limit_headers", dict[str, str])
# the client's account of GitHub API requests (when GISTCACHE_CLIENT_GITHUB_BUDGET is on)
GITHUB_ACCOUNT = web.RequestKey("github_account", ClientAccount)
