"""Per-client limits (abuse protection): the request-count limit (``GISTCACHE_RATE_LIMIT``,
with the ``limits`` library) and the budget of GitHub API requests a client may cause
(``GISTCACHE_CLIENT_GITHUB_BUDGET``, kept in ``web/budget.py``).

The client is the peer address, or, when the peer is a trusted proxy, the last
address in ``X-Forwarded-For`` that is not itself a trusted proxy; its bucket is the
address normalised, an IPv6 one widened to its /64 (``client_key``). The ``RateLimit-*``
headers are kept on the request; every answer to it carries them (web/middleware.py).
The GitHub budget is what the GitHub-compatible API reports in GitHub's ``x-ratelimit-*``
headers and ``GET /api/v3/rate_limit``, as GitHub reports its own: API requests.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler
from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from gistcache.github.errors import ClientBudgetSpent
from gistcache.github.gate import PAYER
from gistcache.settings import Network
from gistcache.web.app_keys import GITHUB_ACCOUNT, RATE_LIMIT_HEADERS
from gistcache.web.budget import ClientAccount, GitHubLedger
from gistcache.web.failures import SharedRefreshStopped, TooManyRequests

# liveness, readiness and metrics must answer whatever a client does
EXEMPT_PATHS = frozenset({"/ping", "/healthz", "/readyz", "/metrics"})
# answers that tell the client its budget without spending any of it (as GitHub's does)
FREE_PATHS = frozenset({"/api/v3/rate_limit"})


# the block an IPv6 client is taken to hold: providers hand a subscriber (and clouds a
# host) at least a /64, so any address in it is the same client to the limits
IPV6_CLIENT_PREFIX = 64


def client_key(address: str) -> str:
    """The bucket of the client at ``address``: one per IPv4 address, one per IPv6 /64.
    Every spelling of an address is one key (``::1``, ``0::1``; an IPv4-mapped IPv6
    address is its IPv4 one); something that is no address is kept as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        block = ipaddress.IPv6Network((int(ip), IPV6_CLIENT_PREFIX), strict=False)
        return str(block)
    return str(ip)


def is_trusted(address: str, networks: Sequence[Network]) -> bool:
    """Whether ``address`` is in one of the trusted proxies' ``networks``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack listener's view of an IPv4 proxy
    return any(ip in network for network in networks)


def client_of(request: web.Request, trusted: Sequence[Network]) -> str:
    """The client's bucket (``client_key``) of the request's address."""
    return client_key(_address_of(request, trusted))


def _address_of(request: web.Request, trusted: Sequence[Network]) -> str:
    peer = request.remote or "unknown"
    if not is_trusted(peer, trusted):
        return peer
    forwarded = [
        part.strip()
        for value in request.headers.getall("X-Forwarded-For", [])
        for part in value.split(",")
    ]
    for address in reversed(forwarded):
        try:
            ipaddress.ip_address(address)
        except ValueError:
            return peer  # a mangled header: trust nothing in it
        if not is_trusted(address, trusted):
            return address
    return peer


class ClientRateLimit:
    """At most so many requests a window from one client, whatever they cost."""

    def __init__(self, limit: RateLimitItem, trusted_proxies: Sequence[Network] = ()) -> None:
        self._limit = limit
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._trusted = tuple(trusted_proxies)

    def client_of(self, request: web.Request) -> str:
        return client_of(request, self._trusted)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        client = self.client_of(request)
        free = request.path in FREE_PATHS
        allowed = free or await self._limiter.hit(self._limit, client)
        stats = await self._limiter.get_window_stats(self._limit, client)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        request[RATE_LIMIT_HEADERS] = {
            "RateLimit-Limit": str(self._limit.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            raise TooManyRequests(
                f"at most {self._limit.amount} requests per {self._limit.get_expiry()} s "
                "are allowed from one client",
                retry_after=max(1, reset),
            )
        return await handler(request)


class ClientGitHubBudget:
    """At most so many GitHub API requests a window caused by one client: each request's
    GitHub requests are charged to its client's account (``github.gate.PAYER``), and
    one that would go past it fails with ClientBudgetSpent (a ``429``)."""

    def __init__(self, limit: RateLimitItem, trusted_proxies: Sequence[Network] = ()) -> None:
        self.ledger = GitHubLedger(limit)
        self._trusted = tuple(trusted_proxies)

    def account(self, client: str) -> ClientAccount:
        """``client``'s account: what its requests, and the search jobs it submitted,
        are charged to."""
        return ClientAccount(self.ledger, client)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        account = self.account(client_of(request, self._trusted))
        request[GITHUB_ACCOUNT] = account
        charged = PAYER.set(account)
        try:
            return await handler(request)
        except ClientBudgetSpent as exc:
            if exc.payer is account:
                raise
            # the refresh this request joined was another client's, stopped by its budget
            raise SharedRefreshStopped(
                "the refresh of this list that another request had started was stopped; try again",
                retry_after=1,
            ) from exc
        finally:
            PAYER.reset(charged)
