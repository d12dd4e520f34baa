"""Build the service's parts from settings, for the web app and the command line alike."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from gistcache import __version__
from gistcache.domain.clock import Clock, utcnow
from gistcache.github.client import GitHubClient
from gistcache.observability.metrics import Metrics
from gistcache.services.contents import ContentFetcher
from gistcache.services.delivery import WebhookSender
from gistcache.services.gists import GistReader
from gistcache.services.jobs import PayerFor, SearchJobs
from gistcache.services.listing import ListingService
from gistcache.services.many import ManySearch
from gistcache.services.members import OrgMembers
from gistcache.services.memory import ContentMemory
from gistcache.services.profiles import UserProfiles
from gistcache.services.retention import ContentBudget
from gistcache.services.search import SearchService
from gistcache.services.shared_block import SharedBlock
from gistcache.services.watches import WatchService
from gistcache.services.webhooks import WebhookPolicy
from gistcache.settings import Settings
from gistcache.store.bound import SiteStore
from gistcache.store.engine import Sessions, create_engine, create_sessionmaker
from gistcache.store.sites import Site

log = logging.getLogger(__name__)

USER_AGENT = f"gistcache/{__version__}"


@dataclass(frozen=True)
class Components:
    engine: AsyncEngine
    sessions: Sessions
    metrics: Metrics
    github: GitHubClient
    listing: ListingService
    searches: SearchService
    jobs: SearchJobs
    gists: GistReader
    profiles: UserProfiles  # GitHub's users, for /api/v3
    watches: WatchService
    webhooks: WebhookSender
    many: ManySearch  # one pattern over several users' gists, or an organisation's


@contextlib.asynccontextmanager
async def components(
    settings: Settings,
    clock: Clock = utcnow,
    *,
    payer_for: PayerFor | None = None,
) -> AsyncIterator[Components]:
    """Everything a request needs; closed in reverse order (job workers are not started:
        they need the web layer's JSON of a result, which ``SearchJobs.start`` takes; nor is
    the watches' poller, which the application starts when API tokens are set)."""
    metrics = Metrics()
    engine = create_engine(settings.database_url)
    log.info("cache database: %s", settings.safe_database_url)
    timeout = aiohttp.ClientTimeout(
        total=settings.github_timeout, connect=settings.github_connect_timeout
    )
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            sessions = create_sessionmaker(engine)
            github = _github(http, settings, metrics)
            site = Site(sessions, settings.github_api_url)
            store = SiteStore(sessions, site)
            listing = ListingService(
                store,
                github,
                cache_ttl=settings.cache_ttl,
                not_found_ttl=settings.not_found_ttl,
                memory_bytes=settings.memory_cache_mb * 1024 * 1024,
                clock=clock,
            )
            content_memory = ContentMemory(settings.content_memory_mb * 1024 * 1024)
            # GraphQL's rate limit is a budget apart from REST's: its block is shared apart
            graphql_block = SharedBlock(store, "graphql:" + github.credential, clock)
            contents = _contents(sessions, github, settings, clock, content_memory, graphql_block)
            gists = GistReader(
                sessions, listing, contents, github, site, not_found_ttl=settings.not_found_ttl
            )
            profiles = UserProfiles(
                store, github, listing, cache_ttl=settings.cache_ttl, clock=clock
            )
            searches = SearchService(
                sessions,
                listing,
                contents,
                site,
                timeout=settings.search_timeout,
                max_searches=settings.max_searches,
                content_memory=content_memory,
                max_answer_bytes=settings.max_answer_bytes,
            )
            members = OrgMembers(store, github, cache_ttl=settings.cache_ttl, clock=clock)
            many = ManySearch(
                searches,
                members.members,
                cost_of=listing.requests_needed,
                available=lambda: _available(github),
            )
            jobs = SearchJobs(
                store,
                searches,
                many=many,
                workers=settings.search_workers,
                result_ttl=settings.search_result_ttl,
                lease_seconds=settings.search_job_lease,
                max_per_client=settings.max_jobs_per_client,
                max_queued=settings.max_queued_jobs,
                clock=clock,
                metrics=metrics,
                payer_for=payer_for,
            )
            watches = WatchService(
                store,
                searches,
                clock=clock,
                metrics=metrics,
                members_of=members.members,
                event_ttl=settings.watch_event_ttl,
            )
            webhooks = WebhookSender(
                store,
                WebhookPolicy(settings.webhook_allow),
                retry_for=settings.webhook_retry_for,
                clock=clock,
                metrics=metrics,
            )
            try:
                yield Components(
                    engine,
                    sessions,
                    metrics,
                    github,
                    listing,
                    searches,
                    jobs,
                    gists,
                    profiles,
                    watches,
                    webhooks,
                    many,
                )
            finally:
                await webhooks.close()
                await watches.stop()
                await jobs.stop()
                await searches.close()
                await profiles.close()
                await listing.close()
    finally:
        await engine.dispose()


def _available(github: GitHubClient) -> tuple[int, int] | None:
    """What GitHub's rate limit has left for users not cached (its remaining requests less
    the reserve kept for cached users) and the seconds until it resets; None while it is
    not known in the current window."""
    known = github.rate_limit
    reserve = github.reserve()
    if known is None or reserve is None or known.reset is None:
        return None
    wait = max(1, math.ceil(known.reset.timestamp() - time.time()))
    return max(0, known.remaining - reserve), wait


def _github(http: aiohttp.ClientSession, settings: Settings, metrics: Metrics) -> GitHubClient:
    return GitHubClient(
        http,
        settings.github_api_url,
        settings.github_token,
        user_agent=USER_AGENT,
        max_pages=settings.github_max_pages,
        raw_hosts=settings.raw_hosts,
        raw_read_timeout=max(settings.github_timeout, 30.0),
        retries=settings.github_retries,
        reserve_percent=settings.github_reserve_percent,
        graphql=settings.graphql,
        metrics=metrics,
    )


def _contents(
    sessions: Sessions,
    github: GitHubClient,
    settings: Settings,
    clock: Clock,
    memory: ContentMemory,
    graphql_block: SharedBlock,
) -> ContentFetcher:
    """The fetcher of files' contents, within the budget of the bytes kept."""
    budget = ContentBudget(
        sessions,
        total_bytes=settings.content_cache_mb * 1024 * 1024,
        search_bytes=settings.search_download_mb * 1024 * 1024,
        clock=clock,
        memory=memory,
    )
    return ContentFetcher(
        sessions,
        github,
        clock=clock,
        fetch_concurrency=settings.fetch_concurrency,
        max_file_bytes=settings.max_file_bytes,
        budget=budget,
        graphql_block=graphql_block,
    )
